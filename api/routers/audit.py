"""The audit log (staff): every change asked through the API and what the orchestrator decided by
itself, newest first, filtered and paginated (api/pages.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from sqlmodel import select

from api.deps import SessionDep, StaffPrincipal
from api.pages import Cursor, Limit, Order, Page, filtered, page_of
from api.schemas.audit import AuditOut
from api.scopes import scoped
from orchestrator.core.models import Audit

router = APIRouter(prefix="/v1/audit", tags=["audit"], dependencies=[scoped("audit")])


@router.get("", response_model=Page[AuditOut], operation_id="list_audit")
def list_audit(
    session: SessionDep,
    _staff: StaffPrincipal,
    actor: Annotated[str | None, Query(max_length=100, description="role:label, exactly")] = None,
    customer_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
    vps_id: Annotated[str | None, Query(max_length=36)] = None,
    result: Annotated[int | None, Query(ge=100, le=599)] = None,
    since: Annotated[datetime | None, Query(description="from this instant on (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="before this instant")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    order: Order = "desc",
) -> Page[AuditOut]:
    """The audit log, newest first: who did what, on behalf of whom, on which object, from where,
    with which answer (staff only)."""
    query = filtered(select(Audit), ((Audit.actor, actor), (Audit.customer_id, customer_id), (Audit.action, action),
                                     (Audit.object_id, object_id), (Audit.vps_id, vps_id), (Audit.result, result)),
                     Audit.at, since, until)
    rows, after = page_of(session, query, (Audit.id,), cursor, limit, order)
    return Page[AuditOut](items=[AuditOut.model_validate(row, from_attributes=True) for row in rows], next=after)
