"""Customers: created explicitly (by support over the API, or ``vpsctl customer create``), with the
email address their notices go to and the language they are written in.  Nothing creates one on
the side: a token, an order or a complaint names a customer that exists."""

from __future__ import annotations

import re

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from orchestrator.core.errors import Conflict, InvalidRequest
from orchestrator.core.models import Audit, Customer

LANGUAGES = ("fr", "en")  # the languages notices are written in (orchestrator/notify/email/<language>/)
NAME_MAX, EMAIL_MAX = 100, 254  # the columns' lengths
# One address, no spaces or line breaks (it becomes a mail header), a dot in its domain.
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def _check_name(name: str) -> str:
    """A customer's name as it will be kept: trimmed, printable, and never only digits (routes
    take a customer's name or id, so a name made of digits would read as an id)."""
    name = name.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise InvalidRequest(f"a customer's name has 1 to {NAME_MAX} characters")
    if not name.isprintable():
        raise InvalidRequest("a customer's name has no control characters or line breaks")
    if name.isdigit():
        raise InvalidRequest("a customer's name is not only digits (it would read as a customer id)")
    return name


def _check_email(email: str) -> str:
    email = email.strip()
    if len(email) > EMAIL_MAX or not EMAIL.fullmatch(email):
        raise InvalidRequest(f"{email[:EMAIL_MAX]!r} is not an email address (name@example.com)")
    return email


def _check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise InvalidRequest(f"language is one of {', '.join(LANGUAGES)} (the languages of the notices), "
                             f"not {language[:20]!r}")
    return language


def create_customer(session: Session, name: str, email: str, language: str, actor: str) -> Customer:
    """Record a new customer in the caller's transaction (audited as ``customer.created`` by
    ``actor``).  Bad input is refused before anything is recorded; a name taken is a Conflict."""
    customer = Customer(name=_check_name(name), email=_check_email(email), language=_check_language(language))
    if session.exec(select(Customer).where(Customer.name == customer.name)).first() is not None:
        raise Conflict(f"a customer named {customer.name!r} exists already")
    try:
        with session.begin_nested():  # a concurrent creation of the same name loses here, cleanly
            session.add(customer)
    except IntegrityError:
        raise Conflict(f"a customer named {customer.name!r} exists already") from None
    session.add(Audit(actor=actor[:100], action="customer.created",
                      detail=f"customer {customer.id}: {customer.name} ({customer.language})"))
    return customer


def customer_named(session: Session, name: str) -> Customer:
    """The customer called ``name``; InvalidRequest when there is none (they are created
    explicitly, never on the side)."""
    customer = session.exec(select(Customer).where(Customer.name == name)).first()
    if customer is None:
        raise InvalidRequest(f"no customer named {name[:NAME_MAX]!r}: create it first "
                             f"(vpsctl customer create, or POST /v1/customers)")
    return customer


def customers(session: Session) -> list[Customer]:
    """Every customer, oldest first."""
    return list(session.exec(select(Customer).order_by(col(Customer.id))).all())
