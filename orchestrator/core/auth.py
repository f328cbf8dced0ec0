"""Bearer tokens and the principal they stand for.  Only a token's SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlmodel import Session, select

from orchestrator.core.errors import Forbidden, InvalidRequest, Unauthorized
from orchestrator.core.models import ApiToken, Customer, Role

TOKEN_PREFIX = "vps_"  # noqa: S105  (a prefix, not a secret)


@dataclass(frozen=True)
class Principal:
    role: Role
    customer_id: int | None
    label: str
    token_id: int | None = None  # the token it authenticated with (None: the orchestrator's own)

    @property
    def is_staff(self) -> bool:
        return self.role in (Role.support, Role.automation)

    @property
    def account(self) -> str:
        """Who this is, for what must never mix between principals (idempotency keys): a
        customer's tokens are one account; each staff token is its own; labels are free text
        and never identify anyone."""
        if self.role is Role.customer:
            return f"customer:{self.customer_id}"
        return f"token:{self.token_id}" if self.token_id is not None else f"{self.role.value}:{self.label}"

    def __str__(self) -> str:
        return f"{self.role.value}:{self.label}"


def require_staff(principal: Principal, what: str = "this needs a support or automation token") -> None:
    """Staff only: raises Forbidden saying ``what`` (who does it instead, or why)."""
    if not principal.is_staff:
        raise Forbidden(what)


def require_client(principal: Principal, customer_id: int | None, what: str) -> None:
    """The client themself, not staff on their behalf: raises Forbidden saying ``what``."""
    if principal.is_staff or principal.customer_id is None or principal.customer_id != customer_id:
        raise Forbidden(what)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ensure_customer(session: Session, name: str, email: str = "", language: str = "fr") -> Customer:
    customer = session.exec(select(Customer).where(Customer.name == name)).first()
    if customer is None:
        customer = Customer(name=name, email=email, language=language)
        session.add(customer)
        session.flush()
    return customer


def create_token(session: Session, role: Role, customer: str | None = None, label: str = "") -> str:
    """Record a new token and return it; it is shown once and never stored in clear."""
    customer_id = None
    if role is Role.customer:
        if not customer:
            raise InvalidRequest("a customer token needs --customer NAME")
        customer_id = ensure_customer(session, customer).id
    elif customer:
        raise InvalidRequest("only customer tokens belong to a customer")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            token_hash=hash_token(token),
            role=role,
            customer_id=customer_id,
            label=label or (customer or role.value),
        )
    )
    session.commit()
    return token


def authenticate(session: Session, token: str) -> Principal:
    record = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()
    if record is None or record.revoked_at is not None:
        raise Unauthorized("invalid or revoked token")
    return Principal(role=Role(record.role), customer_id=record.customer_id, label=record.label, token_id=record.id)
