"""Bearer tokens and the principal they stand for.  Only a token's SHA-256 is stored.

Every token expires (``VPSCTL_TOKEN_DAYS`` after its creation unless given its own lifetime) and
can be revoked; both are checked at every request, so a revocation holds from the next one.
Three roles: a customer's tokens act for that customer only; support has every staff right;
automation has only the scopes its token was given (``SCOPES``: a family of routes and ``read``
for GET or ``write`` for the rest, declared once per router in api/scopes.py)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from orchestrator.core.accounts import customer_named
from orchestrator.core.clock import utcnow
from orchestrator.core.errors import Conflict, Forbidden, InvalidRequest, Unauthorized
from orchestrator.core.models import ApiToken, Audit, Customer, Role
from orchestrator.core.settings import TOKEN_DAYS, TOKEN_MAX_DAYS

TOKEN_PREFIX = "vps_"  # noqa: S105  (a prefix, not a secret)
LABEL_MAX = 100  # the column's length
# A token's last use is recorded at most this often: a busy token does not write at every request.
USE_RESOLUTION = timedelta(minutes=1)

# What an automation token may be given, and what each lets it call (docs/api.md has the routes).
SCOPES: dict[str, str] = {
    "vps:read": "VPS, their jobs, events and backups; the image catalog",
    "vps:write": "order and delete VPS and ask for their operations (power, resize, reinstall, backup, "
                 "restore, export, disks, rename, suspension, cut-off, mail block, migration); the serial console",
    "hosts:read": "hypervisor hosts, their capacity and allocations",
    "hosts:write": "register hypervisor hosts, enable and disable them",
    "billing:read": "subscriptions, invoices, late fees, SYNTEC indices, change orders, breach notices",
    "billing:write": "orders, payments, the billing run, SYNTEC indices, payment incidents and defaults, "
                     "blacklisting fees, change-order decisions, non-renewals, reversibility, breach notices, "
                     "terminations",
    "plans:read": "the plans on offer (retired ones too)",
    "plans:write": "publish, change and retire plans",
    "orders:read": "orders",
    "orders:write": "order a VPS from a plan (its subscription, first invoice and create job at once)",
    "maintenance:read": "maintenance windows and announced interruptions",
    "maintenance:write": "schedule maintenance, announce interruptions",
    "incidents:read": "incidents and termination rights",
    "incidents:write": "open, flag and resolve incidents",
    "security:read": "compromise reports and evidence of served content",
    "security:write": "report a compromise and act on it, ask for evidence of served content",
    "dda:read": "Statement of Applicability requests",
    "dda:write": "record the security officer's decision and the signed NDA",
    "customers:read": "customers",
    "customers:write": "create customers",
    "audit:read": "the audit log",
    "metrics:read": "GET /metrics (Prometheus)",
    "webhooks:read": "webhooks and their delivery logs",
    "webhooks:write": "make, delete and enable webhooks (staff webhooks: every event)",
    "events:read": "the event stream GET /v1/events (every event)",
}


@dataclass(frozen=True)
class Principal:
    role: Role
    customer_id: int | None
    label: str
    token_id: int | None = None  # the token it authenticated with (None: the orchestrator's own)
    # An automation token's scopes; None: not limited by scopes (support, customers, the
    # orchestrator's own principals, a job's requester re-checked by the worker).
    scopes: frozenset[str] | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in (Role.support, Role.automation)

    @property
    def limited(self) -> bool:
        """Limited to its scopes (an automation token)."""
        return self.scopes is not None

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


def require_scope(principal: Principal, scope: str) -> None:
    """A principal limited to scopes (an automation token) holds ``scope``: raises Forbidden
    naming the missing scope.  The others are not limited by scopes: support has every staff
    right, and a customer is limited to what they own by the lookups (core/access.py)."""
    if principal.scopes is not None and scope not in principal.scopes:
        held = ", ".join(sorted(principal.scopes)) or "none"
        raise Forbidden(f"this automation token lacks the scope {scope!r} (it holds: {held})")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_scopes(role: Role, scopes: Iterable[str]) -> list[str]:
    """The scopes a new token of ``role`` carries, checked: an automation token needs at least one,
    each of them known; support and customer tokens take none (they are not limited by scopes)."""
    wanted = sorted(set(scopes))
    if role is not Role.automation:
        if wanted:
            raise InvalidRequest(f"only automation tokens carry scopes; a {role.value} token is not limited by them")
        return []
    unknown = [scope[:40] for scope in wanted if scope not in SCOPES]
    if unknown:
        raise InvalidRequest(f"unknown scope {', '.join(map(repr, unknown))}; the scopes are {', '.join(SCOPES)}")
    if not wanted:
        raise InvalidRequest("an automation token needs at least one scope: it may call only what its scopes "
                             f"allow ({', '.join(SCOPES)})")
    return wanted


@dataclass(frozen=True)
class IssuedToken:
    record: ApiToken
    token: str  # shown once, to whoever asked for it; never stored, never logged


def issue_token(session: Session, role: Role, customer: Customer | None, *, label: str = "", days: int = TOKEN_DAYS,
                scopes: Iterable[str] = (), actor: str) -> IssuedToken:
    """Record a new token in the caller's transaction (audited as ``token.issued`` by ``actor``)
    and return it with its record.  A customer token belongs to an existing customer, the others
    to none; it expires ``days`` from now.  Bad input is refused before anything is recorded."""
    if role is Role.customer and customer is None:
        raise InvalidRequest("a customer token belongs to a customer: name it (--customer NAME, 'customer')")
    if role is not Role.customer and customer is not None:
        raise InvalidRequest("only customer tokens belong to a customer")
    if not 1 <= days <= TOKEN_MAX_DAYS:
        raise InvalidRequest(f"a token lives 1 to {TOKEN_MAX_DAYS} days, not {days}")
    label = label.strip()
    if len(label) > LABEL_MAX or not label.isprintable():
        raise InvalidRequest(f"a token's label has at most {LABEL_MAX} printable characters")
    granted = token_scopes(role, scopes)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    record = ApiToken(token_hash=hash_token(token), role=role, customer_id=customer.id if customer else None,
                      label=label or (customer.name if customer else role.value), created_at=now,
                      expires_at=now + timedelta(days=days), scopes=granted)
    session.add(record)
    session.flush()
    session.add(Audit(actor=actor[:100], action="token.issued", detail=describe(record, customer)))
    return IssuedToken(record, token)


def create_token(session: Session, role: Role, customer: str | None = None, label: str = "", *,
                 days: int = TOKEN_DAYS, scopes: Iterable[str] = (), actor: str = "vpsctl") -> str:
    """Issue a token for the customer named ``customer`` (who must exist) and commit it; returns
    the token.  The command line's and the tests' shortcut to ``issue_token``."""
    owner = customer_named(session, customer) if customer else None
    issued = issue_token(session, role, owner, label=label, days=days, scopes=scopes, actor=actor)
    session.commit()
    return issued.token


def revoke_token(session: Session, record: ApiToken, actor: str) -> ApiToken:
    """Revoke a token in the caller's transaction (audited as ``token.revoked``); it is refused
    from the next request on.  A token revoked already is a Conflict: nothing changes."""
    if record.revoked_at is not None:
        raise Conflict(f"token {record.id} was revoked already, at {record.revoked_at:%Y-%m-%d %H:%M} UTC")
    record.revoked_at = utcnow()
    session.add(record)
    session.add(Audit(actor=actor[:100], action="token.revoked", detail=describe(record, None)))
    return record


def token_status(record: ApiToken, now: datetime | None = None) -> str:
    """``active``, ``expired`` or ``revoked``."""
    if record.revoked_at is not None:
        return "revoked"
    return "expired" if record.expires_at <= (now or utcnow()) else "active"


def tokens(session: Session, customer_id: int | None = None) -> list[ApiToken]:
    """Every token (or a customer's), oldest first."""
    query = select(ApiToken).order_by(col(ApiToken.id))
    if customer_id is not None:
        query = query.where(ApiToken.customer_id == customer_id)
    return list(session.exec(query).all())


def describe(record: ApiToken, customer: Customer | None) -> str:
    """A token as the audit names it: never the token, never its hash."""
    owner = f" of {customer.name}" if customer else ""
    scopes = f", scopes {' '.join(record.scopes)}" if record.scopes else ""
    expires = f"{record.expires_at:%Y-%m-%d %H:%M}"
    return f"token {record.id} ({Role(record.role).value}{owner}{scopes}), expires {expires} UTC"


def authenticate(session: Session, token: str) -> Principal:
    """The principal a bearer token stands for; Unauthorized when it is unknown, revoked or expired.
    Records the token's last use, at most once a minute, and commits that on ``session``: the
    caller's session for this alone (the guard's, the console's)."""
    record = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()
    if record is None:
        raise Unauthorized("invalid token")
    if record.revoked_at is not None:
        raise Unauthorized("this token was revoked")
    now = utcnow()
    if record.expires_at <= now:
        raise Unauthorized(f"this token expired at {record.expires_at:%Y-%m-%d %H:%M} UTC: ask for a new one")
    role = Role(record.role)
    principal = Principal(role=role, customer_id=record.customer_id, label=record.label, token_id=record.id,
                          scopes=frozenset(record.scopes) if role is Role.automation else None)
    if record.last_used_at is None or now - record.last_used_at >= USE_RESOLUTION:
        record.last_used_at = now
        session.add(record)
        session.commit()
    return principal
