"""What happened, for automation: the event log (one row per change a client may follow, written
in the transaction of that change: orchestrator/core/eventlog.py), the webhooks that receive it
and the log of their deliveries (orchestrator/notify/webhooks.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from orchestrator.core.models.types import json_field, new_id, time_field


class Event(SQLModel, table=True):
    """One change: ``id`` grows with each event (the SSE stream's ``id:`` and resume point);
    ``customer_id`` is whose resource it concerns (None: staff only, e.g. a host's job)."""

    __table_args__ = (Index("ix_event_customer", "customer_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    type: str = Field(max_length=64, index=True)  # job.succeeded, vps.status_changed, invoice.issued, ...
    customer_id: int | None = Field(default=None, foreign_key="customer.id")
    vps_id: str | None = Field(default=None, max_length=36)
    subject: str = Field(default="", max_length=64)  # the record's id (job, VPS, invoice, incident)
    data: dict[str, Any] = json_field(dict)
    created_at: datetime | None = time_field(now=True)


class Webhook(SQLModel, table=True):
    """An HTTP endpoint that receives events: a customer's receives that customer's events; a
    staff webhook (``customer_id`` None) every event.  The signing secret is kept encrypted
    (``secret_encrypted``: Fernet under the orchestrator's webhook key), never in clear."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    url: str = Field(max_length=2000)
    events: list[str] = json_field(list)  # event types or patterns ("job.*", "*")
    secret_encrypted: str = Field(max_length=500)
    enabled: bool = True
    consecutive_failures: int = 0
    disabled_at: datetime | None = time_field()
    created_by: str = Field(default="", max_length=100)
    created_at: datetime | None = time_field(now=True)


class WebhookDelivery(SQLModel, table=True):
    """One attempt to deliver one event to one webhook: ``pending`` until its ``due_at`` comes
    and a worker sends it, then ``succeeded`` or ``failed`` with what the endpoint answered.  A
    failed attempt that may be retried is followed by a new row (``attempt`` + 1)."""

    __table_args__ = (Index("ix_webhookdelivery_due", "status", "due_at"),
                      Index("ix_webhookdelivery_log", "webhook_id", "created_at", "id"))

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    webhook_id: str = Field(foreign_key="webhook.id", max_length=36)
    event_id: int = Field(foreign_key="event.id", index=True)
    attempt: int = 1
    status: str = Field(default="pending", max_length=16)  # pending | sending | succeeded | failed
    due_at: datetime | None = time_field(now=True)
    attempted_at: datetime | None = time_field()
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=500)
    duration_ms: int | None = None
    created_at: datetime | None = time_field(now=True)
