"""The event log: every change a client may follow (webhooks, ``GET /v1/events``) is recorded as
an ``Event`` row in the transaction that makes the change, so an event exists exactly when its
change was committed, and ``Event.id`` orders them.

Nothing has to remember to publish: a listener on every ORM session (``before_flush``) looks at
the records being written and adds the events they imply:

    job.requested                a job recorded (queued)
    job.started                  a job's status becomes running
    job.succeeded, job.failed, job.cancelled
    vps.created                  a VPS recorded
    vps.status_changed           a VPS's status changes (data: from, to)
    invoice.issued, invoice.paid, invoice.cancelled
    incident.opened, incident.resolved

Then, once the flush gave the events their ids (``after_flush_postexec``), one delivery per
enabled webhook that wants the event is queued in the same transaction (``WebhookDelivery``, sent
by orchestrator/notify/webhooks.py): a webhook never misses an event committed after it was
created, and never gets one that was rolled back.

An event's ``data`` holds only what its owner may read (a failed job's public error, never the
internal one).  ``customer_id`` says whose it is: a customer's stream and webhooks see only their
own; staff see every event.
"""

from __future__ import annotations

import fnmatch
import threading
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import inspect
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import UOWTransaction
from sqlmodel import col, select

from orchestrator.core.models import Event, Incident, Invoice, Job, Vps, Webhook, WebhookDelivery

TYPES: dict[str, str] = {
    "job.requested": "a job was recorded (queued)",
    "job.started": "a job began to run (again after a retry)",
    "job.succeeded": "a job finished",
    "job.failed": "a job failed for good (data: public_error)",
    "job.cancelled": "a scheduled job was called off before it ran",
    "vps.created": "a VPS was ordered",
    "vps.status_changed": "a VPS's status changed (data: from, to)",
    "invoice.issued": "an invoice was issued",
    "invoice.paid": "an invoice was paid",
    "invoice.cancelled": "an invoice was cancelled",
    "incident.opened": "an incident was opened on a VPS",
    "incident.resolved": "an incident was resolved",
}
PATTERN_MAX = 64
_PENDING = "vpsctl.events"  # session.info key: the events added by the flush under way
_ANNOUNCES = "vpsctl.events.announce"  # session.info key: its commits wake the event readers

# Set when a transaction that recorded events commits: wakes the webhook sender and the streams
# of this process at once (other processes find the rows by polling).
published = threading.Condition()
_serial = 0  # bumped under ``published`` at each such commit


def serial() -> int:
    return _serial


def _announce(_session: Any) -> None:
    global _serial
    with published:
        _serial += 1
        published.notify_all()


def valid_pattern(pattern: str) -> bool:
    """An event type, or a pattern with ``*`` matching some: ``job.*``, ``*``."""
    if not pattern or len(pattern) > PATTERN_MAX:
        return False
    return any(fnmatch.fnmatchcase(name, pattern) for name in TYPES)


def wants(patterns: list[str], event_type: str) -> bool:
    return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in patterns)


def _changed(record: Any, attribute: str) -> tuple[bool, Any]:
    """Whether ``attribute`` changes in this flush, and its value before."""
    history = inspect(record).attrs[attribute].history
    if not history.has_changes():
        return False, None
    return True, history.deleted[0] if history.deleted else None


def _vps_of(session: OrmSession, vps_id: str | None) -> Vps | None:
    if vps_id is None:
        return None
    for record in session.new:
        if isinstance(record, Vps) and record.id == vps_id:
            return record
    with session.no_autoflush:
        return session.get(Vps, vps_id)


def _value(value: Any) -> Any:
    return getattr(value, "value", value)


def _job_events(session: OrmSession, job: Job, new: bool) -> list[Event]:
    if new:
        kind = "job.requested"
    else:
        changed, _before = _changed(job, "status")
        if not changed:
            return []
        kind = {"running": "job.started", "succeeded": "job.succeeded", "failed": "job.failed",
                "cancelled": "job.cancelled"}.get(str(_value(job.status)), "")
        if not kind:
            return []
    vps = _vps_of(session, job.vps_id)
    data = {"job_id": job.id, "kind": job.kind, "vps_id": job.vps_id, "status": str(_value(job.status))}
    if kind == "job.failed":
        data["public_error"] = job.public_error or "the job did not complete"
    return [Event(type=kind, customer_id=vps.customer_id if vps else None, vps_id=job.vps_id, subject=job.id,
                  data=data)]


def _vps_events(vps: Vps, new: bool) -> list[Event]:
    if new:
        return [Event(type="vps.created", customer_id=vps.customer_id, vps_id=vps.id, subject=vps.id,
                      data={"vps_id": vps.id, "name": vps.name, "status": str(_value(vps.status))})]
    changed, before = _changed(vps, "status")
    if not changed or _value(before) == _value(vps.status):
        return []
    return [Event(type="vps.status_changed", customer_id=vps.customer_id, vps_id=vps.id, subject=vps.id,
                  data={"vps_id": vps.id, "name": vps.name, "from": _value(before), "to": str(_value(vps.status))})]


def _invoice_events(invoice: Invoice, new: bool) -> list[Event]:
    if new:
        kind = "invoice.issued"
    else:
        changed, _before = _changed(invoice, "status")
        kind = {"paid": "invoice.paid", "cancelled": "invoice.cancelled"}.get(invoice.status, "") if changed else ""
        if not kind:
            return []
    return [Event(type=kind, customer_id=invoice.customer_id, vps_id=invoice.vps_id, subject=invoice.id,
                  data={"invoice_id": invoice.id, "number": invoice.number, "purpose": invoice.purpose,
                        "total_ttc": str(invoice.total_ttc), "due_on": invoice.due_on.isoformat()
                        if invoice.due_on else None, "status": invoice.status})]


def _incident_events(incident: Incident, new: bool) -> list[Event]:
    if new:
        kind = "incident.opened"
    else:
        changed, before = _changed(incident, "resolved_at")
        if not changed or before is not None or incident.resolved_at is None:
            return []
        kind = "incident.resolved"
    return [Event(type=kind, customer_id=incident.customer_id, vps_id=incident.vps_id, subject=incident.id,
                  data={"incident_id": incident.id, "vps_id": incident.vps_id, "malfunction": incident.malfunction,
                        "fix_deadline": incident.fix_deadline.isoformat() if incident.fix_deadline else None})]


def events_for(session: OrmSession, record: Any, new: bool) -> list[Event]:
    if isinstance(record, Job):
        return _job_events(session, record, new)
    if isinstance(record, Vps):
        return _vps_events(record, new)
    if isinstance(record, Invoice):
        return _invoice_events(record, new)
    if isinstance(record, Incident):
        return _incident_events(record, new)
    return []


@sa_event.listens_for(OrmSession, "before_flush")
def _record(session: OrmSession, _flush: UOWTransaction, _instances: Any) -> None:
    added: list[Event] = []
    for record in list(session.new):
        added += events_for(session, record, True)
    for record in list(session.dirty):
        if session.is_modified(record, include_collections=False):
            added += events_for(session, record, False)
    if not added:
        return
    for item in added:
        session.add(item)
    session.info.setdefault(_PENDING, []).extend(added)
    if not session.info.get(_ANNOUNCES):
        session.info[_ANNOUNCES] = True
        sa_event.listen(session, "after_commit", _announce)


@sa_event.listens_for(OrmSession, "after_flush_postexec")
def _fan_out(session: OrmSession, _flush: UOWTransaction) -> None:
    added: list[Event] = session.info.pop(_PENDING, [])
    if not added:
        return
    with session.no_autoflush:
        hooks = session.execute(select(Webhook).where(col(Webhook.enabled).is_(True))).scalars().all()
    for item in added:
        for hook in hooks:
            if (hook.customer_id is None or hook.customer_id == item.customer_id) and wants(hook.events, item.type):
                assert item.id is not None
                session.add(WebhookDelivery(webhook_id=hook.id, event_id=item.id))


@sa_event.listens_for(OrmSession, "after_soft_rollback")
def _forget(session: OrmSession, _previous: Any) -> None:
    session.info.pop(_PENDING, None)
