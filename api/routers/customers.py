"""``/v1/customers`` (staff): customers are created explicitly, with the email address their
notices go to and the language they are written in; a token, an order or a complaint then names
one that exists."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlmodel import select

from api.deps import SessionDep, StaffPrincipal
from api.pages import Cursor, Limit, Order, Page, filtered, page_of
from api.schemas.accounts import CustomerBody, CustomerOut
from api.scopes import scoped
from orchestrator.core import accounts
from orchestrator.core.models import Customer

router = APIRouter(prefix="/v1/customers", tags=["customers"], dependencies=[scoped("customers")])


def customer_out(customer: Customer) -> CustomerOut:
    return CustomerOut(id=customer.id or 0, name=customer.name, email=customer.email, language=customer.language,
                       created_at=customer.created_at)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CustomerOut)
def create_customer(body: CustomerBody, session: SessionDep, staff: StaffPrincipal) -> CustomerOut:
    """A new customer; a name taken already is a 409, a malformed email or name a 422 (nothing
    is recorded then)."""
    return customer_out(accounts.create_customer(session, body.name, body.email, body.language, str(staff)))


@router.get("", response_model=Page[CustomerOut])
def list_customers(
    session: SessionDep, _staff: StaffPrincipal,
    name: Annotated[str | None, Query(max_length=accounts.NAME_MAX)] = None,
    language: Annotated[str | None, Query(max_length=8)] = None,
    since: Annotated[datetime | None, Query(description="created from this instant on (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="created before this instant")] = None,
    limit: Limit = 50, cursor: Cursor = None, order: Order = "desc",
) -> Page[CustomerOut]:
    """Customers, the newest first, a page at a time."""
    query = filtered(select(Customer), ((Customer.name, name), (Customer.language, language)), Customer.created_at,
                     since, until)
    rows, after = page_of(session, query, (Customer.id,), cursor, limit, order)
    return Page[CustomerOut](items=[customer_out(c) for c in rows], next=after)
