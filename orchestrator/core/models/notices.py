"""Email notices waiting to be sent, or sent (orchestrator/notify)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from orchestrator.core.models.types import json_field, time_field


class Outbox(SQLModel, table=True):
    """An email waiting to be sent, or sent (orchestrator/notify).  Rendered when queued, so a
    missing value fails in the caller's request; rendered again when sent, from the same context,
    so deadlines that count from the sending (R6.2-notice, R8.7-default) are computed then.

    R6.5-contact: with a customer, the address is the one on file when the message is sent;
    ``to_address`` records the address queued, then the address actually used.  ``sent_at`` is the
    instant the SMTP server accepted the message: the deadlines count from it."""

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    to_address: str = Field(default="", max_length=254)
    language: str = Field(default="fr", max_length=5)
    template: str = Field(max_length=64)
    subject: str = Field(default="", max_length=500)
    body_text: str = ""
    context: dict[str, Any] = json_field(dict)
    vps_id: str | None = Field(default=None, index=True, max_length=36)
    job_id: str | None = Field(default=None, index=True, max_length=36)
    status: str = Field(default="pending", index=True, max_length=16)  # pending | sent | failed
    attempts: int = 0
    next_attempt_at: datetime | None = time_field(now=True, index=True)
    last_error: str | None = Field(default=None, max_length=2000)
    message_id: str | None = Field(default=None, max_length=300)
    created_at: datetime | None = time_field(now=True)
    sent_at: datetime | None = time_field()
