"""``GET /v1/backups``: every backup and export of the caller's VPS, those of deleted VPS included
(the ones a client kept when deleting: R10-after).  Staff see everyone's, or one customer's."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlmodel import col, select

from api.deps import CurrentPrincipal, SessionDep
from api.pages import Cursor, Limit, Order, Page, Since, Until, filtered, page_of
from api.schemas.vps import BackupOut
from api.scopes import scoped
from api.views import backup_out
from orchestrator.core.access import listed_customer
from orchestrator.core.models import Backup, Vps

router = APIRouter(prefix="/v1/backups", tags=["operations"], dependencies=[scoped("vps")])


@router.get("", response_model=Page[BackupOut])
def list_backups(
    session: SessionDep, principal: CurrentPrincipal,
    customer_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="Staff: one customer's")] = None,
    vps_id: Annotated[str | None, Query(max_length=36)] = None,
    kind: Annotated[str | None, Query(max_length=32, description="e.g. manual, before_reinstall, export")] = None,
    status: Literal["creating", "available", "failed"] | None = None,
    since: Since = None, until: Until = None, limit: Limit = 50, cursor: Cursor = None, order: Order = "desc",
) -> Page[BackupOut]:
    """Backups and exports not discarded, newest first, a page at a time, with their VPS (deleted
    or not)."""
    query = select(Backup, Vps).join(Vps, col(Vps.id) == col(Backup.vps_id)).where(Backup.status != "deleted")
    query = filtered(query, ((Vps.customer_id, listed_customer(principal, customer_id)), (Backup.vps_id, vps_id),
                             (Backup.kind, kind), (Backup.status, status)),
                     Backup.created_at, since, until)
    rows, after = page_of(session, query, (Backup.created_at, Backup.id), cursor, limit, order,
                          of=lambda row: row[0])
    return Page[BackupOut](items=[backup_out(vps, backup) for backup, vps in rows], next=after)
