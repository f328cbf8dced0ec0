"""Bodies of /v1 requests and answers: maintenance windows and announced interruptions (R5.4)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.schemas.types import Instant, RowId
from orchestrator.workflows.maintenance import MAX_INTERRUPTION_MINUTES


class MaintenanceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host_id: RowId | None = None
    vps_ids: list[Annotated[str, StringConstraints(max_length=36)]] | None = Field(default=None, max_length=10_000)
    starts_at: Instant
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


class InterruptionBody(MaintenanceBody):
    duration_minutes: int = Field(ge=1, le=MAX_INTERRUPTION_MINUTES)


class InterruptionOut(BaseModel):
    id: str
    host_id: int | None
    vps_ids: list[str]
    starts_at: datetime | None
    duration_minutes: int
    reason: str
    created_by: str
    notices_sent: bool = Field(description="R5.4-notice: every affected client's notice has left (check before "
                                           "starting the work)")
    notices_pending: int
