"""Bodies of /v1 answers: jobs, their progress and events, and the answer to an operation asked."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class EventOut(BaseModel):
    at: datetime | None
    step: str
    status: str
    message: str
    actor: str


class ProgressOut(BaseModel):
    done: int
    total: int
    step: str | None


class JobSummaryOut(BaseModel):
    id: str
    vps_id: str | None
    kind: str
    status: str
    progress: ProgressOut
    attempts: int
    error: str | None
    requested_by: str
    cause: str | None = Field(default=None, description="The workflow record the job was asked for "
                                                        "(e.g. compromise:<id>), when a workflow asked")
    created_at: datetime | None
    scheduled_at: datetime | None = Field(
        default=None, description="A deadline job runs at this instant, not before (e.g. R6.2-notice, R8.7-default)")
    started_at: datetime | None
    finished_at: datetime | None


class JobOut(JobSummaryOut):
    events: list[EventOut]


class ResizePlanOut(BaseModel):
    mode: str = Field(description="live: applied to the running guest; cold: stop, change, start")
    reboot: bool = Field(description="whether the VPS will be restarted")
    vcpus: int
    memory_mib: int
    disk_gib: int


class MigratePlanOut(BaseModel):
    mode: str = Field(description="cold: stop, copy the disks, start on the target")
    to_host: str = Field(description="the host the VPS moves to")


class JobAccepted(BaseModel):
    job: JobOut
    plan: ResizePlanOut | MigratePlanOut | None = Field(
        default=None, description="what the operation will do, for those that decide it when asked (resize, migrate)")
