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

from orchestrator.contract.calendar import paris_midnight
from orchestrator.core.auth import Principal
from orchestrator.core.clock import utcnow
from orchestrator.core.db import locked
from orchestrator.core.errors import Conflict, InvalidRequest, NotFound, OperationFailed
from orchestrator.core.models import BreachNotice, Job, Subscription, Vps
from orchestrator.core.settings import Settings
from orchestrator.engine import events, jobs
from orchestrator.engine.context import Context, Request
from orchestrator.engine.operation import request
from orchestrator.workflows.subscriptions import today
from orchestrator.workflows.termination import TerminateParams, TerminateSubscription, schedule_end, subscription_of

IMMEDIATE = ("insolvency", "cessation")  # R10-breach: ends at once
CAUSE = "breach_notice"


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
    if cure_by < today():
        raise InvalidRequest(f"cure_by {cure_by.isoformat()} is past: the letter's deadline has to come")
    vps = _live_vps(session, subscription)
    at = termination_at(cure_by)
    notice = BreachNotice(subscription_id=subscription.id, customer_id=subscription.customer_id,
                          breach=breach.strip(), letter_sent_on=letter_sent_on, cure_by=cure_by,
                          terminates_at=at, recorded_by=str(principal))
    session.add(notice)
    session.flush()
    notice.job_id = _schedule_termination(Request(session, settings, principal, vps), subscription, notice, at)
    session.add(notice)
    return notice


def cause(notice: BreachNotice) -> str:
    return jobs.cause(CAUSE, notice.id)


def _schedule_termination(req: Request, subscription: Subscription, notice: BreachNotice, at: datetime) -> str:
    """Unlike the ends recorded on the subscription, a breach's termination does not replace a
    later planned end: it comes first, and is called off if the breach is remedied."""
    job = request(Request(req.session, req.settings, req.principal, req.vps, cause=cause(notice)),
                  TerminateSubscription, TerminateParams(subscription_id=subscription.id, reason="breach"),
                  scheduled_at=at)
    return job.id


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
    notice = locked(session, notice)
    if notice.status != "open":
        raise Conflict(f"this breach notice is already {notice.status}")
    job = session.get(Job, notice.job_id) if notice.job_id else None
    if job is not None and job.status in jobs.ACTIVE and not jobs.cancel(
            session, job, "R10-breach: the breach was remedied", str(principal)):
        raise Conflict("the termination is already under way")
    notice.status, notice.remedied_at, notice.remedied_by = "remedied", utcnow(), str(principal)
    notice.remedy_note = note.strip()
    session.add(notice)
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
    job_id = schedule_end(Request(session, settings, principal, None), subscription, utcnow(), reason,
                          note=note.strip()[:2000])
    assert job_id is not None
    return job_id


@events.on_started(TerminateSubscription.kind)
def _breach_still_open(ctx: Context) -> None:
    """R10-breach: only a formal notice still without effect ends the contract."""
    notice_id = jobs.cause_id(ctx.job, CAUSE)
    if notice_id is None:
        return
    with ctx.transaction() as session:
        notice = session.get(BreachNotice, notice_id)
        if notice is None or notice.status != "open":
            raise OperationFailed("the breach was remedied: the contract goes on")
        if subscription_of(session, ctx).status == "terminated":
            raise OperationFailed("the subscription is already terminated")


@events.on_succeeded(TerminateSubscription.kind)
def _notice_had_no_effect(ctx: Context) -> None:
    notice_id = jobs.cause_id(ctx.job, CAUSE)
    if notice_id is None:
        return
    with ctx.transaction() as session:
        notice = session.get(BreachNotice, notice_id)
        if notice is not None and notice.status == "open":
            notice.status = "terminated"
            session.add(notice)
