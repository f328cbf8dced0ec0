"""Who may see what (R7-confidential): a customer sees only their own resources, and anything
else is answered exactly as if it did not exist."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlmodel import Session, SQLModel, select
from sqlmodel.sql.expression import SelectOfScalar

from orchestrator.core.auth import Principal
from orchestrator.core.errors import Forbidden, InvalidRequest, NotFound
from orchestrator.core.models import ApiToken, Customer, Invoice, Job, Vps


def _valid_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


Q = TypeVar("Q", bound=SelectOfScalar[Any])
R = TypeVar("R", bound=SQLModel)


def sees(principal: Principal, customer_id: int | None) -> bool:
    """Staff see every customer's records; a customer only their own."""
    return principal.is_staff or (customer_id is not None and customer_id == principal.customer_id)


def visible(session: Session, model: type[R], record_id: str, principal: Principal, what: str) -> R:
    """The record ``record_id`` of ``model`` (which has a ``customer_id``) if the principal sees it;
    NotFound otherwise, the same answer whether it does not exist or is another customer's."""
    record = session.get(model, record_id) if _valid_uuid(record_id) else None
    if record is None or not sees(principal, getattr(record, "customer_id", None)):
        raise NotFound(f"no {what} {record_id[:64]!r}")
    return record


def owned(query: Q, customer_column: Any, principal: Principal) -> Q:
    """A listing narrowed to the principal's own records (staff see everyone's)."""
    return query if principal.is_staff else query.where(customer_column == principal.customer_id)


def listed_customer(principal: Principal, customer_id: int | None) -> int | None:
    """Whose records a list shows: a customer's own (naming another customer, even themself, is
    staff's filter: Forbidden); for staff the customer filtered on, None for everyone's."""
    if principal.is_staff:
        return customer_id
    if customer_id is not None:
        raise Forbidden("customer_id is a staff filter: a customer sees only their own records")
    if principal.customer_id is None:
        raise Forbidden("this token belongs to no customer")
    return principal.customer_id


def visible_vps(session: Session, principal: Principal, vps_id: str) -> Vps:
    return visible(session, Vps, vps_id, principal, "VPS")


def visible_job(session: Session, principal: Principal, job_id: str) -> Job:
    job = session.get(Job, job_id) if _valid_uuid(job_id) else None
    if job is not None:
        vps = session.get(Vps, job.vps_id) if job.vps_id else None
        if not sees(principal, vps.customer_id if vps else None):
            job = None
    if job is None:
        raise NotFound(f"no job {job_id[:64]!r}")
    return job


def owner_for_create(session: Session, principal: Principal, customer: str | None) -> int:
    """Customers order for themselves; staff order on behalf of a named customer."""
    if not principal.is_staff:
        if customer is not None:
            raise Forbidden("a customer orders only for themselves; leave 'customer' out")
        if principal.customer_id is None:
            raise Forbidden("this token belongs to no customer")
        return principal.customer_id
    if not customer:
        raise InvalidRequest("staff must name the 'customer' the VPS is for")
    record = session.exec(select(Customer).where(Customer.name == customer)).first()
    if record is None or record.id is None:
        raise InvalidRequest(f"no customer named {customer[:100]!r}")
    return record.id


def visible_invoice(session: Session, principal: Principal, invoice_id: str) -> Invoice:
    """R7-confidential: another customer's invoice is as absent as a missing one."""
    return visible(session, Invoice, invoice_id, principal, "invoice")


def visible_token(session: Session, principal: Principal, token_id: int) -> ApiToken:
    """A token as the principal may see it: staff any, a customer their own; another customer's
    (or staff's) token is as absent as a missing one."""
    record = session.get(ApiToken, token_id)
    if record is None or not sees(principal, record.customer_id):
        raise NotFound(f"no token {token_id}")
    return record
