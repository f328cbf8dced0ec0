"""R10-breach: the contract ends by right after a formal notice by registered letter for a breach
of the terms that had no effect; also on the client's insolvency or cessation of activity.

A breach notice records the registered letter (when it was sent, the cure date it gives) and
queues the termination deadline job (orchestrator/operations/terminate, reason ``breach``) for
the instant the day after the cure date begins in Europe/Paris: the client has the whole cure
date to remedy. Staff recording the breach remedied before then call the job off. Insolvency or
cessation of activity terminate at once (a terminate job now). On termination every service stops
and the client is emailed (R10-after, the ``termination_notice`` template).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select

from orchestrator import jobs
from orchestrator.auth import Principal
from orchestrator.clock import utcnow
from orchestrator.contract.calendar import paris_midnight
from orchestrator.errors import Conflict, InvalidRequest, NotFound
from orchestrator.models import BreachNotice, Job, Subscription, Vps
from orchestrator.operations.base import request
from orchestrator.operations.terminate import TerminateSubscription
from orchestrator.settings import Settings
from orchestrator.subscriptions import _schedule_end, today

IMMEDIATE = ("insolvency", "cessation")  # R10-breach: ends at once


def termination_at(cure_by: date) -> datetime:
    """R10-breach: the notice gives until the end of ``cure_by``; the contract ends as the next
    day begins in Europe/Paris."""
    return paris_midnight(cure_by + timedelta(days=1))


def _live_vps(session: Session, subscription: Subscription) -> Vps:
    vps = session.get(Vps, subscription.vps_id) if subscription.vps_id else None
    if vps is None:
        raise Conflict("this subscription has no VPS left to stop")
    return vps


def record_notice(session: Session, settings: Settings, principal: Principal, subscription: Subscription,
                  breach: str, letter_sent_on: date, cure_by: date) -> BreachNotice:
    """R10-breach: staff record the formal notice sent by registered letter; the termination
    deadline job is queued for the day after ``cure_by`` (Paris midnight)."""
    if subscription.status == "terminated":
        raise Conflict("this subscription is already terminated")
    if not breach.strip():
        raise InvalidRequest("breach must say what the client breached")
    if letter_sent_on > today():
        raise InvalidRequest("letter_sent_on is in the future")
    if cure_by <= letter_sent_on:
        raise InvalidRequest("cure_by must be after letter_sent_on")
    vps = _live_vps(session, subscription)
    at = termination_at(cure_by)
    notice = BreachNotice(subscription_id=subscription.id, customer_id=subscription.customer_id,
                          breach=breach.strip(), letter_sent_on=letter_sent_on, cure_by=cure_by,
                          terminates_at=at, recorded_by=str(principal))
    session.add(notice)
    session.flush()
    job = request(session, settings, principal, vps, TerminateSubscription,
                  {"subscription_id": subscription.id, "reason": "breach", "breach_notice_id": notice.id},
                  scheduled_at=at, commit=False)
    notice.job_id = job.id
    session.add(notice)
    session.commit()
    return notice


def notices(session: Session, subscription: Subscription) -> list[BreachNotice]:
    return list(session.exec(select(BreachNotice).where(BreachNotice.subscription_id == subscription.id)
                             .order_by(col(BreachNotice.recorded_at))).all())


def get_notice(session: Session, subscription: Subscription, notice_id: str) -> BreachNotice:
    notice = session.get(BreachNotice, notice_id)
    if notice is None or notice.subscription_id != subscription.id:
        raise NotFound(f"no breach notice {notice_id[:64]!r} on this subscription")
    return notice


def remedied(session: Session, principal: Principal, notice: BreachNotice, note: str) -> BreachNotice:
    """R10-breach: the notice had its effect: the termination deadline job is called off."""
    if notice.status != "open":
        raise Conflict(f"this breach notice is already {notice.status}")
    job = session.get(Job, notice.job_id) if notice.job_id else None
    if job is not None and job.status in jobs.ACTIVE and not jobs.cancel(
            session, job, "R10-breach: the breach was remedied", str(principal)):
        raise Conflict("the termination is already under way")
    notice.status, notice.remedied_at, notice.remedied_by = "remedied", utcnow(), str(principal)
    notice.remedy_note = note.strip()
    session.add(notice)
    session.commit()
    return notice


def terminate_now(session: Session, settings: Settings, principal: Principal, subscription: Subscription,
                  reason: str, note: str) -> str:
    """R10-breach: insolvency or cessation of activity ends the contract by right at once: a
    terminate job now, replacing any later planned end; open breach notices are superseded."""
    if reason not in IMMEDIATE:
        raise InvalidRequest(f"reason must be one of {', '.join(IMMEDIATE)}")
    if subscription.status == "terminated":
        raise Conflict("this subscription is already terminated")
    _live_vps(session, subscription)
    subscription.status, subscription.end_reason, subscription.ends_on = "ending", reason, today()
    session.add(subscription)
    for notice in notices(session, subscription):
        if notice.status == "open":
            notice.status = "superseded"
            session.add(notice)
    job_id = _schedule_end(session, settings, principal, subscription, utcnow(), reason)
    assert job_id is not None
    job = session.get(Job, job_id)
    assert job is not None
    job.params = {**job.params, "note": note.strip()[:2000]}
    session.add(job)
    session.commit()
    jobs.notify()
    return job_id
