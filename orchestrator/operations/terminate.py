"""End a subscription at its deadline (R10-after: every service stops), for one of three reasons:

- ``non_renewal`` (R3-notice): at the end of the term the notice took effect for;
- ``reversibility`` (R13-reversibility): two months after the registered letter;
- ``nonpayment`` (R10-nonpayment): fifteen days after the formal notice was sent, if the payment
  default is still open; the deadline is recomputed from the notice's actual sending time;
- ``breach`` (R10-breach): as the day after the cure date of a formal notice by registered letter
  begins (Paris), if the breach is not recorded remedied by then (orchestrator/breach);
- ``insolvency``, ``cessation`` (R10-breach): at once, when staff record it.

The VPS is powered off and the subscription marked terminated; its data is kept (erasure is a
separate, recorded operation: orchestrator/operations/erase, run on non-payment). A termination
notice is emailed.

Plan: stop_service -> end_subscription; both are no-ops on what is already done.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from orchestrator import jobs
from orchestrator.clock import utcnow
from orchestrator.contract.deadlines import termination_for_nonpayment_at
from orchestrator.db import session_scope
from orchestrator.errors import OperationFailed
from orchestrator.models import BreachNotice, Erasure, Job, PaymentDefault, Subscription, VpsStatus
from orchestrator.notify import enqueue
from orchestrator.operations.base import Context, Deferred, Operation, Step, register
from orchestrator.operations.erase import NOTICE_RECHECK
from orchestrator.operations.power import power_off

REASONS = ("non_renewal", "reversibility", "nonpayment", "breach", "insolvency", "cessation")
GONE = (VpsStatus.deleting, VpsStatus.deleted)


def pending_terminations(session: Session, subscription: Subscription) -> list[Job]:
    rows = session.exec(select(Job).where(Job.kind == TerminateSubscription.kind,
                                          col(Job.status).in_(jobs.ACTIVE))).all()
    return [job for job in rows if job.params.get("subscription_id") == subscription.id]


def stop_service(ctx: Context) -> str:
    """R10-after: the service stops (forced off when paused: nobody is there to hear the button)."""
    vps = ctx.vps()
    if vps.status in GONE or vps.host_id is None:
        return f"nothing runs: the VPS is {vps.status.value}"
    return power_off(ctx, force=vps.status == VpsStatus.suspended)


def end_subscription(ctx: Context) -> str:
    reason = ctx.params["reason"]
    vps = ctx.vps()  # read before the transaction below (SQLite: one writer at a time)
    with session_scope(ctx.engine) as session:
        subscription = session.get(Subscription, ctx.params["subscription_id"])
        if subscription is None:
            raise OperationFailed("the subscription is not recorded")
        if subscription.status == "terminated":
            return "already terminated"
        now = utcnow()
        subscription.status, subscription.terminated_at, subscription.end_reason = "terminated", now, reason
        from orchestrator.contract.calendar import to_paris

        today = to_paris(now).date()
        if subscription.ends_on is None or subscription.ends_on > today:
            subscription.ends_on = today  # an end by right (R10-breach) comes before a later planned one
        session.add(subscription)
        if ctx.params.get("breach_notice_id"):  # R10-breach: the notice had no effect
            notice = session.get(BreachNotice, ctx.params["breach_notice_id"])
            if notice is not None:
                notice.status = "terminated"
                session.add(notice)
        for other in pending_terminations(session, subscription):
            if other.id != ctx.job.id:
                jobs.cancel(session, other, f"the subscription was terminated ({reason})", "terminate")
        if ctx.params.get("default_id"):
            default = session.get(PaymentDefault, ctx.params["default_id"])
            if default is not None:
                default.status, default.terminated_at = "terminated", now
                session.add(default)
        erased = session.exec(select(Erasure).where(Erasure.vps_id == vps.id)).first() is not None
        enqueue(session, subscription.customer_id, "termination_notice",
                {"subscription_id": subscription.id, "vps_name": vps.name, "reason": reason,
                 "terminated_at": now, "data_erased": erased}, vps_id=vps.id, job_id=ctx.job.id,
                settings=ctx.settings)
    return f"subscription terminated ({reason})"


@register
class TerminateSubscription(Operation):
    kind = "terminate"
    allowed_from = frozenset(VpsStatus)
    steps = (Step("stop_service", stop_service), Step("end_subscription", end_subscription))

    @classmethod
    def begin(cls, ctx: Context) -> None:
        reason = ctx.params.get("reason")
        if reason not in REASONS:
            raise OperationFailed(f"unknown termination reason {reason!r}")
        if ctx.job.steps_done:
            return
        with session_scope(ctx.engine) as session:
            subscription = session.get(Subscription, ctx.params.get("subscription_id"))
            if subscription is None:
                raise OperationFailed("the subscription is not recorded")
            if reason == "breach":
                # R10-breach: only a formal notice still without effect ends the contract.
                notice = session.get(BreachNotice, ctx.params.get("breach_notice_id"))
                if notice is None or notice.status != "open":
                    raise OperationFailed("the breach was remedied: the contract goes on")
                if subscription.status == "terminated":
                    raise OperationFailed("the subscription is already terminated")
                return
            if reason != "nonpayment":
                if subscription.status != "ending" or subscription.end_reason != reason:
                    raise OperationFailed(f"the subscription is {subscription.status}, not ending by {reason}")
                return
            from orchestrator.nonpayment import notice_sent_at

            default = session.get(PaymentDefault, ctx.params.get("default_id"))
            if default is None or default.status != "open":
                raise OperationFailed("the payment default is settled: the contract goes on")
            sent = notice_sent_at(session, default)
        if sent is None:
            raise Deferred(utcnow() + NOTICE_RECHECK, "the formal notice is not sent yet")
        ends = termination_for_nonpayment_at(sent)
        if utcnow() < ends:
            raise Deferred(ends, "R10-nonpayment: fifteen days after the formal notice was sent")

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        if ctx.vps().status not in GONE:
            ctx.update_vps(status=VpsStatus.stopped, suspend_reason=None, suspended_by=None)
