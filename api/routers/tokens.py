"""``/v1/tokens``: API tokens, listed, made and revoked over the API.

Support manages every token.  A customer lists, makes and revokes their own account's tokens (an
API key per script or machine): only customer tokens, for themselves; anyone else's token is a
404, as if it did not exist.  Automation tokens manage none, whatever their scopes.  A token is
shown once, in the answer to its creation; listings show what it is for and its dates, never the
token or its hash.  A revoked or expired token is refused (401) from the next request on."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response, status
from sqlmodel import Session, col, select

from api.deps import CurrentPrincipal, SessionDep, SettingsDep
from api.openapi import located
from api.pages import Cursor, Limit, Order, Page, filtered, page_of
from api.schemas.accounts import NewTokenOut, TokenBody, TokenOut
from api.scopes import no_automation
from orchestrator.core import auth
from orchestrator.core.access import visible_token
from orchestrator.core.accounts import NAME_MAX, customer_named
from orchestrator.core.auth import Principal, issue_token, token_status
from orchestrator.core.clock import utcnow
from orchestrator.core.errors import Forbidden
from orchestrator.core.models import ApiToken, Customer, Role

router = APIRouter(prefix="/v1/tokens", tags=["tokens"], dependencies=[no_automation(
    "automation tokens do not manage tokens: support does, and each customer for their own account")])

TokenId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def token_out(session: Session, record: ApiToken) -> TokenOut:
    customer = session.get(Customer, record.customer_id) if record.customer_id is not None else None
    return TokenOut(id=record.id or 0, role=record.role, customer=customer.name if customer else None,
                    label=record.label, scopes=list(record.scopes), status=token_status(record),
                    created_at=record.created_at, expires_at=record.expires_at, last_used_at=record.last_used_at,
                    revoked_at=record.revoked_at)


def own_account(session: Session, principal: Principal) -> Customer:
    """The customer a customer's token acts for (a token of no customer acts for nobody)."""
    customer = session.get(Customer, principal.customer_id) if principal.customer_id is not None else None
    if customer is None:
        raise Forbidden("this token belongs to no customer")
    return customer


@router.get("", response_model=Page[TokenOut])
def list_tokens(
    session: SessionDep, principal: CurrentPrincipal,
    customer: Annotated[str | None, Query(max_length=NAME_MAX, description="support: one customer's tokens")] = None,
    role: Role | None = None,
    status: Literal["active", "expired", "revoked"] | None = None,
    since: Annotated[datetime | None, Query(description="made from this instant on (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="made before this instant")] = None,
    limit: Limit = 50, cursor: Cursor = None, order: Order = "desc",
) -> Page[TokenOut]:
    """Tokens, the newest first, a page at a time: support sees every token (or one customer's),
    a customer their own.  Never the token or its hash."""
    if principal.is_staff:
        customer_id = customer_named(session, customer).id if customer else None
    else:
        if customer is not None:
            raise Forbidden("a customer lists only their own tokens; leave 'customer' out")
        customer_id = own_account(session, principal).id
    query = filtered(select(ApiToken), ((ApiToken.customer_id, customer_id), (ApiToken.role, role)),
                     ApiToken.created_at, since, until)
    now = utcnow()
    if status == "revoked":
        query = query.where(col(ApiToken.revoked_at).is_not(None))
    elif status is not None:
        query = query.where(col(ApiToken.revoked_at).is_(None),
                            col(ApiToken.expires_at) <= now if status == "expired" else col(ApiToken.expires_at) > now)
    rows, after = page_of(session, query, (ApiToken.id,), cursor, limit, order)
    return Page[TokenOut](items=[token_out(session, record) for record in rows], next=after)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=NewTokenOut,
             responses={201: located("/v1/tokens/{id}")})
def create_token(body: TokenBody, response: Response, session: SessionDep, settings: SettingsDep,
                 principal: CurrentPrincipal) -> NewTokenOut:
    """A new token, shown this once.  Support makes any: a customer token for an existing
    ``customer``, a support token, or an automation token with its ``scopes``.  A customer makes
    customer tokens for themselves only (leave ``customer`` out).  It expires after ``days``
    (default ``VPSCTL_TOKEN_DAYS``)."""
    if principal.is_staff:
        owner = customer_named(session, body.customer) if body.customer is not None else None
    else:
        if body.role is not Role.customer:
            raise Forbidden("a customer makes customer tokens only")
        if body.customer is not None:
            raise Forbidden("a customer makes tokens for themselves only; leave 'customer' out")
        owner = own_account(session, principal)
    issued = issue_token(session, body.role, owner, label=body.label, days=body.days or settings.api.token_days,
                         scopes=body.scopes, actor=str(principal))
    response.headers["Cache-Control"] = "no-store"  # the token, shown once: never kept for an Idempotency-Key replay
    return NewTokenOut(**token_out(session, issued.record).model_dump(), token=issued.token)


@router.get("/{token_id}", response_model=TokenOut)
def get_token(token_id: TokenId, session: SessionDep, principal: CurrentPrincipal) -> TokenOut:
    """One token (a customer: of their own account; another's is a 404)."""
    return token_out(session, visible_token(session, principal, token_id))


@router.post("/{token_id}/revoke", response_model=TokenOut)
def revoke_token(token_id: TokenId, session: SessionDep, principal: CurrentPrincipal) -> TokenOut:
    """Revoke a token at once: from the next request on it is refused (401).  Revoking it again
    is a 409; another customer's token a 404."""
    record = visible_token(session, principal, token_id)
    return token_out(session, auth.revoke_token(session, record, str(principal)))
