"""A VPS reported hacked (R6.2-notice, R5.5-cutoff): optional immediate cut-off, the notice to
the client, and the reinstall gate: not before three jours ouvrés after the notice was actually
sent, unless the client's written agreement is recorded."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from orchestrator.auth import Principal
from orchestrator.clock import utcnow
from orchestrator.contract.calendar import BusinessCalendar
from orchestrator.contract.deadlines import check_reinstall, reinstall_not_before
from orchestrator.errors import Conflict, NotFound
from orchestrator.models import Compromise, Image, Outbox, Vps
from orchestrator.notify import enqueue
from orchestrator.operations import cutoff
from orchestrator.operations.base import request
from orchestrator.settings import Settings


def calendar(settings: Settings) -> BusinessCalendar:
    return BusinessCalendar(settings.calendar_subdivision or None)


def open_compromise(session: Session, vps: Vps) -> Compromise | None:
    return session.exec(
        select(Compromise).where(Compromise.vps_id == vps.id, col(Compromise.resolved_at).is_(None))
        .order_by(col(Compromise.reported_at).desc())
    ).first()


def notice_time(session: Session, record: Compromise) -> datetime:
    """When the notice was sent; until it is, the deadline counts from now (it can only move later)."""
    outbox = session.get(Outbox, record.notice_outbox_id) if record.notice_outbox_id else None
    return outbox.sent_at if outbox is not None and outbox.sent_at is not None else utcnow()


def report(session: Session, settings: Settings, principal: Principal, vps: Vps, details: str,
           cut_off_now: bool) -> tuple[Compromise, datetime]:
    """Record the report, cut the network if asked (R5.5-cutoff), queue the notice (R6.2-notice)."""
    if open_compromise(session, vps) is not None:
        raise Conflict("this VPS is already reported as compromised")
    if cut_off_now and not vps.cut_off:
        request(session, settings, principal, vps, cutoff.CutOffVps, {"reason": "hacked"})
    image = session.get(Image, vps.image)
    record = Compromise(vps_id=vps.id, reported_by=str(principal), details=details)
    session.add(record)
    notice = enqueue(session, vps.customer_id, "compromise_notice",
                     {"vps_name": vps.name, "vps_id": vps.id, "os": image.os if image else vps.image,
                      "details": details, "detected_at": utcnow(), "cut_off": cut_off_now or vps.cut_off},
                     vps_id=vps.id, settings=settings)
    session.flush()
    record.notice_outbox_id = notice.id
    session.add(record)
    session.commit()
    return record, reinstall_not_before(utcnow(), calendar(settings))


def record_agreement(session: Session, vps: Vps, note: str) -> Compromise:
    record = open_compromise(session, vps)
    if record is None:
        raise NotFound("no open compromise report for this VPS")
    record.customer_agreement_at = utcnow()
    record.customer_agreement_note = note
    session.add(record)
    session.commit()
    return record


def check_reinstall_allowed(session: Session, settings: Settings, vps: Vps) -> Compromise | None:
    """R6.2-notice: raises ContractRefusal before the deadline without the client's agreement."""
    record = open_compromise(session, vps)
    if record is not None:
        check_reinstall(notice_time(session, record), utcnow(), calendar(settings),
                        client_agreed_in_writing=record.customer_agreement_at is not None)
    return record
