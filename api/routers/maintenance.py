"""``/v1/maintenance`` (staff): schedule a maintenance of a host or of some VPS (R5.4)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from sqlmodel import select

from api.deps import SessionDep, SettingsDep, StaffPrincipal
from orchestrator import maintenance
from orchestrator.models import Maintenance, MaintenanceVps

router = APIRouter(prefix="/v1/maintenance", tags=["maintenance"])


class MaintenanceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host_id: int | None = None
    vps_ids: list[Annotated[str, StringConstraints(max_length=36)]] | None = Field(default=None, max_length=10_000)
    starts_at: AwareDatetime
    duration_minutes: int = Field(ge=1, le=24 * 60)
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]


class MaintenanceOut(BaseModel):
    id: str
    host_id: int | None
    vps_ids: list[str]
    starts_at: datetime | None
    duration_minutes: int
    reason: str
    created_by: str
    least_harmful_hours_utc: list[int] = Field(description="R5.4-hours: that day's least harmful UTC hours")
    least_harmful_basis: str = Field(description="R5.4-hours: 'traffic' (measured on the VPS concerned) or "
                                                 "'time_zones' (daytime in Europe and the Americas)")
    least_harmful_hour_of_week: int | None = Field(
        default=None, description="R5.4-hours: the week's hour (0 = Monday 00:00 UTC) with the least measured traffic")
    least_harmful_next_start: datetime | None = Field(default=None, description="its next occurrence")


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
def schedule(body: MaintenanceBody, session: SessionDep, settings: SettingsDep,
             principal: StaffPrincipal) -> MaintenanceOut:
    """Refused with a problem naming the rule when longer than an hour (R5.4-duration) or within
    7 days of another maintenance of an affected VPS (R5.4-frequency); otherwise recorded and every
    affected customer is sent a notice."""
    return _out(session, maintenance.schedule(session, settings, principal, spec_of(body)))


@router.get("", response_model=list[MaintenanceOut])
def list_maintenance(session: SessionDep, _staff: StaffPrincipal) -> list[MaintenanceOut]:
    return [_out(session, m) for m in maintenance.of_kind(session, "maintenance")]
