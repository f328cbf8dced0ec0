"""Bodies of /v1 requests and answers: breach notices and termination by right (R10-breach)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.types import Day


class BreachNoticeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    breach: str = Field(min_length=1, max_length=2000, description="the breach of the terms the letter names")
    letter_sent_on: Day = Field(description="when the registered letter (formal notice) was sent")
    cure_by: Day = Field(description="the deadline the letter gives, after letter_sent_on and not past")


class RemediedBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field("", max_length=2000)


class TerminateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Literal["insolvency", "cessation"]
    note: str = Field("", max_length=2000)


class BreachNoticeOut(BaseModel):
    id: str
    subscription_id: str
    breach: str
    letter_sent_on: date
    cure_by: date
    terminates_at: datetime = Field(description="R10-breach: Europe/Paris start of the day after cure_by")
    status: str = Field(description="open | remedied | terminated | superseded")
    termination_job_id: str | None
    recorded_by: str
    recorded_at: datetime | None
    remedied_at: datetime | None
    remedied_by: str | None
    remedy_note: str


class TerminateOut(BaseModel):
    termination_job_id: str
    reason: str
