"""``GET /v1/backups``: every backup and export of the caller's VPS, those of deleted VPS included
(the ones a client kept when deleting: R10-after).  Staff see everyone's, or one customer's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlmodel import col, select

from api.deps import CurrentPrincipal, SessionDep
from api.schemas.vps import BackupOut
from api.scopes import scoped
from api.views import backup_out
from orchestrator.core.models import Backup, Vps

router = APIRouter(prefix="/v1/backups", tags=["operations"], dependencies=[scoped("vps")])


@router.get("", response_model=list[BackupOut])
def list_backups(session: SessionDep, principal: CurrentPrincipal,
             customer_id: Annotated[int | None, Query(ge=1, le=2**63 - 1,
                                                      description="Staff: one customer's")] = None,
             ) -> list[BackupOut]:
    """Backups and exports not discarded, oldest first, with their VPS (deleted or not)."""
    query = select(Backup, Vps).join(Vps, col(Vps.id) == col(Backup.vps_id))
    owner = customer_id if principal.is_staff else principal.customer_id
    if owner is not None or not principal.is_staff:
        query = query.where(Vps.customer_id == owner)
    rows = session.exec(query.where(Backup.status != "deleted").order_by(col(Backup.created_at))).all()
    return [backup_out(vps, backup) for backup, vps in rows]
