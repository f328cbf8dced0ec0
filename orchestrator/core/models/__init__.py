"""Database tables, one module per part of the domain.  Times are stored as UTC; money as exact
decimals; JSON columns hold small structured values.  Every change here comes with a migration
(orchestrator/core/migrations)."""

from orchestrator.core.models.accounts import ApiToken, Audit, Customer, Role
from orchestrator.core.models.billing import Counter, Invoice, PaymentDefault, Subscription, SyntecIndex
from orchestrator.core.models.contract import (
    BreachNotice,
    ChangeOrder,
    Compromise,
    DdaRequest,
    Erasure,
    Evidence,
    Incident,
    Maintenance,
    MaintenanceVps,
)
from orchestrator.core.models.events import Event, Webhook, WebhookDelivery
from orchestrator.core.models.fleet import Host, HostImage, Image
from orchestrator.core.models.jobs import IdempotentRequest, Job, JobEvent, JobStatus, PeriodicRun, WorkerStatus
from orchestrator.core.models.notices import Outbox
from orchestrator.core.models.plans import Order, Plan
from orchestrator.core.models.quotas import Quota
from orchestrator.core.models.types import UTCDateTime, new_id
from orchestrator.core.models.vps import Backup, TrafficCounter, TrafficSample, Vps, VpsStatus

__all__ = [
    "ApiToken", "Audit", "Backup", "BreachNotice", "ChangeOrder", "Compromise", "Counter", "Customer", "DdaRequest",
    "Erasure", "Event", "Evidence", "Host", "HostImage", "IdempotentRequest", "Image", "Incident", "Invoice", "Job",
    "JobEvent", "JobStatus",
    "Maintenance", "MaintenanceVps", "Order", "Outbox", "PaymentDefault", "PeriodicRun", "Plan", "Quota", "Role",
    "Subscription",
    "SyntecIndex", "TrafficCounter", "TrafficSample", "UTCDateTime", "Vps", "VpsStatus", "Webhook", "WebhookDelivery",
    "WorkerStatus", "new_id",
]
