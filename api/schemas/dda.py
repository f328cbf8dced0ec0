"""Bodies of /v1 requests and answers: requests for the Statement of Applicability (R2-dda)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.types import Day


class DdaRequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: str = Field(min_length=1, max_length=2000, description="why the client needs the document")


class ApprovalBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    approved: bool
    officer: str = Field(min_length=1, max_length=200, description="the security officer who decided")
    reason: str = Field("", max_length=2000, description="required for a refusal")


class NdaBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reference: str = Field(min_length=1, max_length=200, description="the signed NDA's reference")
    signed_on: Day


class HistoryOut(BaseModel):
    at: datetime | None
    actor: str
    action: str = Field(description="dda.requested, dda.approved, dda.refused, dda.nda_recorded, dda.downloaded")
    detail: str


class DdaRequestOut(BaseModel):
    id: str
    customer_id: int
    purpose: str
    requested_by: str
    requested_at: datetime | None
    approval: str = Field(description="pending | approved | refused")
    officer: str | None
    decided_at: datetime | None
    refusal_reason: str
    nda_reference: str | None
    nda_signed_on: date | None
    document_available: bool = Field(description="R2-dda: both gates passed")
    missing: list[str] = Field(description="R2-dda: the gates still missing")
    history: list[HistoryOut]
