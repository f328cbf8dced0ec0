"""Bodies of the audit log (``GET /v1/audit``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class AuditOut(BaseModel):
    id: int
    at: datetime | None
    actor: str = Field(description="who: the token's principal (role:label), or the orchestrator's own duty")
    customer_id: int | None = Field(description="on behalf of which customer, when the object says")
    action: str = Field(description="what: the API route's name (e.g. resize_vps) or the duty's action")
    detail: str = Field(description="the method and path asked, or the duty's note")
    object_type: str | None
    object_id: str | None
    vps_id: str | None
    job_id: str | None = Field(description="the job the request started")
    address: str | None = Field(description="the client's address")
    result: int | None = Field(description="the HTTP status answered (refusals included)")
