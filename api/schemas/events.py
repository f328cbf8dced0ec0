"""Bodies of /v1 requests and answers: webhooks and their deliveries (orchestrator/notify/webhooks.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from orchestrator.core.eventlog import PATTERN_MAX
from orchestrator.notify.webhooks import PATTERNS_MAX, URL_MAX


class WebhookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=URL_MAX, description="http:// or https:// endpoint that receives "
                                                                     "the POSTs")
    events: list[Annotated[str, StringConstraints(min_length=1, max_length=PATTERN_MAX)]] = Field(
        min_length=1, max_length=PATTERNS_MAX, description="Event types or patterns (`job.*`, `vps.status_changed`, "
                                                           "`*`)")


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    owner: str = Field(description="`customer` (that customer's events) or `staff` (every event)")
    customer_id: int | None
    enabled: bool
    consecutive_failures: int
    disabled_at: datetime | None
    created_at: datetime | None


class NewWebhookOut(WebhookOut):
    secret: str = Field(description="The signing secret, shown this once (docs/api.md, Webhooks)")


class DeliveryOut(BaseModel):
    id: str
    event_id: int
    event_type: str
    attempt: int
    status: str = Field(description="pending, sending, succeeded or failed")
    due_at: datetime | None = Field(description="When a pending attempt will be made")
    attempted_at: datetime | None
    status_code: int | None = Field(description="What the endpoint answered; null when it did not answer")
    error: str | None
    duration_ms: int | None
    created_at: datetime | None
