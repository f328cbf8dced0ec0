"""Bodies of /v1 requests and answers: change orders and the bon de commande (R5.1-change-order)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.schemas.jobs import JobOut, ResizePlanOut
from api.schemas.types import Fee

Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


Amount = Fee


class ChangeOrderBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"memory_mib": 4096, "note": "more memory for the database"}, {"add_disk_gib": 100}]})
    vcpus: int | None = Field(default=None, ge=1, le=1024)
    memory_mib: int | None = Field(default=None, ge=64, le=16 * 1024 * 1024)
    disk_gib: int | None = Field(default=None, ge=1, le=1024 * 1024)
    add_disk_gib: int | None = Field(default=None, ge=1, le=1024 * 1024,
                                     description="An extra data disk of this size instead of new sizes")
    note: Note = Field(default="", description="What the change is for (shown on the order form)")


class ApproveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rent_ht: Amount = Field(description="R8.3-ht: the new rent per billing period, euros before tax")
    fee_ht: Amount | None = Field(default=None, description="R8.3-ht: one-off price of the change, before tax")
    note: Note = ""


class RefuseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500, pattern=r"\S")]


class ChangeOrderOut(BaseModel):
    id: str
    number: str | None = Field(description="The order form's number, once approved")
    vps_id: str
    customer_id: int
    status: str = Field(description="requested, approved, refused, accepted, done, failed or cancelled")
    current: dict[str, int]
    requested: dict[str, int] = Field(description="The whole new configuration")
    rent_ht: Decimal | None = Field(description="R8.3-ht: new rent per billing period, before tax")
    fee_ht: Decimal | None = Field(description="R8.3-ht: one-off fee, before tax")
    requested_by: str
    requested_at: datetime | None
    request_note: str
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str
    accepted_at: datetime | None
    job_id: str | None
    closed_at: datetime | None
    outcome: str
    invoice_id: str | None = Field(default=None, description="The invoice of the one-off fee")


class ChangeOrderAccepted(BaseModel):
    change_order: ChangeOrderOut
    job: JobOut
    plan: ResizePlanOut | None = Field(description="The resize's plan (none when the order adds a disk)")
