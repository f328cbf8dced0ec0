"""Bodies of /v1 requests and answers: incidents, force majeure, termination rights
(R5.4-fix-delay, R5.4-repeat, R5.3-force-majeure)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Malfunction = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.-]{0,63}$")]


class IncidentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vps_id: Annotated[str, StringConstraints(max_length=36)]
    malfunction: Malfunction = Field(description="stable key: the same key is the same malfunction (R5.4-repeat), "
                                                 "e.g. vps_down, network, disk")
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    force_majeure: bool = False
    force_majeure_note: Annotated[str, StringConstraints(max_length=500)] = ""


class ForceMajeureBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    force_majeure: bool
    note: Annotated[str, StringConstraints(max_length=500)] = Field(
        default="", description="R5.3-force-majeure: what the force majeure is (needed to flag)")


class ResolveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolution: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class IncidentOut(BaseModel):
    id: str
    vps_id: str
    malfunction: str
    description: str
    opened_by: str
    opened_at: datetime | None
    fix_deadline: datetime | None = Field(description="R5.4-fix-delay: 48 heures ouvrées (Europe/Paris); null for "
                                                      "force majeure or while force majeure stops the clock")
    deadline_passed: bool = Field(description="R5.4-fix-delay: the deadline passed without a solution")
    force_majeure: bool
    force_majeure_note: str
    resolved_at: datetime | None
    resolution: str
    deadline_job_id: str | None = Field(description="the pending deadline job, if any")


class TerminationRightOut(BaseModel):
    rule: str
    since: datetime
    reason: str


class VpsTerminationRightOut(BaseModel):
    vps_id: str
    termination_right: TerminationRightOut | None = Field(
        description="R5.4-fix-delay, R5.4-repeat: the client may request termination, since when and why")
