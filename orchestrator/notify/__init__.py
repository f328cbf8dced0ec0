"""Email notices: templates (French and English), a durable outbox and an SMTP sender; webhooks
(``orchestrator.notify.webhooks``: signed POSTs of the event log, retried, beside the outbox).
May import ``core`` and ``contract`` (the calendar, for the dates notices show).

    from orchestrator.notify import enqueue, delivery_context
    enqueue(session, vps.customer_id, "delivery_report", delivery_context(vps, image), vps_id=vps.id)
    # ... the caller commits; run_outbox_forever (beside the job worker) sends it.

R9-delivery, R6.2-notice, R5.5-cutoff, R5.5-reconnect, R8.7-default, R5.4-notice, R6.5-contact.
"""

from orchestrator.notify.contexts import delivery_context
from orchestrator.notify.outbox import (
    FAILED,
    PENDING,
    SENT,
    backoff_seconds,
    deliver_due,
    enqueue,
    notify,
    requeue,
    run_outbox_forever,
    start_outbox_thread,
)
from orchestrator.notify.smtp import FunctionSender, Sender, SmtpRefused, SmtpSender, build_message
from orchestrator.notify.templates import SPECS, RenderedEmail, TemplateSpec, normalize_language, render
from orchestrator.notify.webhooks import start_webhook_thread

__all__ = [
    "FAILED",
    "PENDING",
    "SENT",
    "SPECS",
    "FunctionSender",
    "RenderedEmail",
    "Sender",
    "SmtpRefused",
    "SmtpSender",
    "TemplateSpec",
    "backoff_seconds",
    "build_message",
    "deliver_due",
    "delivery_context",
    "enqueue",
    "normalize_language",
    "notify",
    "render",
    "requeue",
    "run_outbox_forever",
    "start_outbox_thread",
    "start_webhook_thread",
]
