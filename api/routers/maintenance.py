"""``/v1/maintenance`` (staff): schedule a maintenance of a host or of some VPS (R5.4)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from api.deps import SessionDep, SettingsDep, StaffPrincipal
from api.pages import Cursor, Limit, Order, Page, filtered, page_of
from api.schemas.maintenance import MaintenanceBody, MaintenanceOut
from api.scopes import scoped
from orchestrator.core.models import Maintenance, MaintenanceVps
from orchestrator.workflows import maintenance

router = APIRouter(prefix="/v1/maintenance", tags=["maintenance"], dependencies=[scoped("maintenance")])


def spec_of(body: MaintenanceBody) -> maintenance.MaintenanceRequest:
    return maintenance.MaintenanceRequest(
        starts_at=body.starts_at, duration_minutes=body.duration_minutes, reason=body.reason,
        host_id=body.host_id, vps_ids=tuple(body.vps_ids or ()),
    )


def _out(session: SessionDep, record: Maintenance) -> MaintenanceOut:
    vps_ids = session.exec(select(MaintenanceVps.vps_id).where(MaintenanceVps.maintenance_id == record.id)).all()
    hint = maintenance.suggestion(session, list(vps_ids), record.starts_at) if record.starts_at else None
    return MaintenanceOut(
        id=record.id, host_id=record.host_id, vps_ids=sorted(vps_ids), starts_at=record.starts_at,
        duration_minutes=record.duration_minutes, reason=record.reason, created_by=record.created_by,
        least_harmful_hours_utc=hint.hours_utc if hint else [],
        least_harmful_basis=hint.basis if hint else "time_zones",
        least_harmful_hour_of_week=hint.hour_of_week if hint else None,
        least_harmful_next_start=hint.next_start if hint else None,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=MaintenanceOut)
def schedule_maintenance(body: MaintenanceBody, session: SessionDep, settings: SettingsDep,
             principal: StaffPrincipal) -> MaintenanceOut:
    """Refused with a problem naming the rule when longer than an hour (R5.4-duration) or within
    7 days of another maintenance of an affected VPS (R5.4-frequency); otherwise recorded and every
    affected customer is sent a notice."""
    return _out(session, maintenance.schedule(session, settings, principal, spec_of(body)))


def scheduled(kind: str, host_id: int | None, vps_id: str | None, since: datetime | None,
              until: datetime | None) -> SelectOfScalar[Maintenance]:
    """The maintenances (or interruptions) of a host or touching a VPS, starting between ``since``
    and ``until``."""
    query = select(Maintenance).where(Maintenance.kind == kind)
    if vps_id is not None:
        query = query.where(col(Maintenance.id).in_(select(MaintenanceVps.maintenance_id)
                                                     .where(MaintenanceVps.vps_id == vps_id)))
    return filtered(query, ((Maintenance.host_id, host_id),), Maintenance.starts_at, since, until)


HostFilter = Annotated[int | None, Query(ge=1, le=2**63 - 1, description="the host's id")]
VpsFilter = Annotated[str | None, Query(max_length=36, description="those touching this VPS")]
StartsSince = Annotated[datetime | None, Query(description="starting from this instant on (inclusive)")]
StartsUntil = Annotated[datetime | None, Query(description="starting before this instant")]


@router.get("", response_model=Page[MaintenanceOut])
def list_maintenance(
    session: SessionDep, _staff: StaffPrincipal, host_id: HostFilter = None, vps_id: VpsFilter = None,
    since: StartsSince = None, until: StartsUntil = None, limit: Limit = 50, cursor: Cursor = None,
    order: Order = "desc",
) -> Page[MaintenanceOut]:
    """Maintenances, the latest to start first (``?order=asc``: the soonest first), a page at a time."""
    query = scheduled("maintenance", host_id, vps_id, since, until)
    rows, after = page_of(session, query, (Maintenance.starts_at, Maintenance.id), cursor, limit, order)
    return Page[MaintenanceOut](items=[_out(session, m) for m in rows], next=after)
