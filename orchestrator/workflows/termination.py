"""The end of a subscription (R10-after: every service stops): a deadline job of its own kind,
``terminate``, queued by the workflow that ends it and run at its date.

- ``non_renewal`` (R3-notice), ``reversibility`` (R13-reversibility): at the date recorded on the
  subscription (orchestrator/workflows/subscriptions.py);
- ``nonpayment`` (R10-nonpayment): fifteen days after the formal notice was sent, while the payment
  default is open (orchestrator/workflows/nonpayment.py);
- ``breach`` (R10-breach): as the day after the cure date of a formal notice begins (Paris), unless
  the breach is recorded remedied (orchestrator/workflows/breach.py); ``insolvency``,
  ``cessation``: at once.

Each of those workflows checks its own condition again when the job starts (``events.on_started``
with the job's ``cause``).  The VPS is powered off and the subscription marked terminated; its
data is kept (erasure is a separate, recorded operation), except the backups the client kept
when they deleted the VPS: those were kept for the time of the contract, and their erasure is
asked as the contract ends.  A termination notice is emailed.

Plan: stop_service -> end_subscription; both are no-ops on what is already done.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field
from sqlmodel import Session, col, select

from orchestrator.contract.calendar import to_paris
from orchestrator.core.auth import Principal
from orchestrator.core.clock import utcnow
from orchestrator.core.errors import OperationFailed
from orchestrator.core.models import Erasure, Job, Role, Subscription, Vps, VpsStatus
from orchestrator.engine import jobs
from orchestrator.engine.context import Context, Request
from orchestrator.engine.operation import Audience, Operation, Params, Step, register, request
from orchestrator.notify import enqueue
from orchestrator.operations.delete import available_backups
from orchestrator.operations.erase import EraseParams, EraseVps
from orchestrator.operations.steps.power import power_off

Reason = Literal["non_renewal", "reversibility", "nonpayment", "breach", "insolvency", "cessation"]
GONE = (VpsStatus.deleting, VpsStatus.deleted)
END_OF_CONTRACT = Principal(Role.automation, None, "R10-after")  # who erases the backups kept past a delete


class TerminateParams(Params):
    subscription_id: str
    reason: Reason
    note: str = Field(default="", max_length=2000)


def pending_terminations(session: Session, subscription: Subscription) -> list[Job]:
    """The subscription's terminations not run yet, whatever asked for them."""
    rows = session.exec(select(Job).where(Job.kind == TerminateSubscription.kind, col(Job.status).in_(jobs.ACTIVE))
                        .order_by(col(Job.created_at))).all()
    return [job for job in rows if TerminateSubscription.read_params(job.params).subscription_id == subscription.id]


def subscription_cause(subscription: Subscription) -> str:
    return jobs.cause("subscription", subscription.id)


def schedule_end(req: Request, subscription: Subscription, at: datetime, reason: str, *,
                 cause: str | None = None, note: str = "") -> str | None:
    """The deadline job that ends the service at ``at``, replacing an earlier planned end of this
    subscription (R10-nonpayment runs its own course and is never replaced)."""
    vps = req.session.get(Vps, subscription.vps_id) if subscription.vps_id else None
    if vps is None:
        return None
    for job in pending_terminations(req.session, subscription):
        if TerminateSubscription.read_params(job.params).reason != "nonpayment":
            jobs.cancel(req.session, job, f"replaced by the {reason} end", str(req.principal))
    asked = Request(req.session, req.settings, req.principal, vps, cause=cause or subscription_cause(subscription))
    params = TerminateParams.model_validate({"subscription_id": subscription.id, "reason": reason, "note": note})
    return request(asked, TerminateSubscription, params, scheduled_at=at).id


def stop_service(ctx: Context) -> str:
    """R10-after: the service stops (forced off when paused: nobody is there to hear the button)."""
    vps = ctx.vps()
    if vps.status in GONE or vps.host_id is None:
        return f"nothing runs: the VPS is {vps.status.value}"
    return power_off(ctx, force=vps.status == VpsStatus.suspended)


def end_subscription(ctx: Context) -> str:
    args = ctx.args(TerminateParams)
    vps = ctx.vps()  # read before the transaction below (SQLite: one writer at a time)
    with ctx.transaction() as session:
        subscription = session.get(Subscription, args.subscription_id)
        if subscription is None:
            raise OperationFailed("the subscription is not recorded")
        if subscription.status == "terminated":
            return "already terminated"
        now = utcnow()
        subscription.status, subscription.terminated_at, subscription.end_reason = "terminated", now, args.reason
        today = to_paris(now).date()
        if subscription.ends_on is None or subscription.ends_on > today:
            subscription.ends_on = today  # an end by right (R10-breach) comes before a later planned one
        session.add(subscription)
        for other in pending_terminations(session, subscription):
            if other.id != ctx.job.id:
                jobs.cancel(session, other, f"the subscription was terminated ({args.reason})", "terminate")
        erased = session.exec(select(Erasure).where(Erasure.vps_id == vps.id)).first() is not None
        kept = erase_kept_backups(Request(session, ctx.settings, END_OF_CONTRACT, vps,
                                          cause=subscription_cause(subscription)), args.reason)
        enqueue(session, subscription.customer_id, "termination_notice",
                {"subscription_id": subscription.id, "vps_name": vps.name, "reason": args.reason,
                 "terminated_at": now, "data_erased": erased, "kept_backups_erased": kept},
                vps_id=vps.id, job_id=ctx.job.id, settings=ctx.settings)
    return f"subscription terminated ({args.reason})"


def erase_kept_backups(req: Request, reason: str) -> int:
    """R10-after: the backups a client kept when deleting the VPS are erased as the contract
    ends (a recorded erasure, queued behind this job); how many there are."""
    assert req.vps is not None
    if req.vps.status != VpsStatus.deleted:
        return 0
    kept = len(available_backups(req.session, req.vps))
    if kept:
        request(req, EraseVps, EraseParams(reason=f"end of contract ({reason}): backups kept after delete"))
    return kept


@register
class TerminateSubscription(Operation[TerminateParams]):
    kind = "terminate"
    params = TerminateParams
    audience = Audience.system
    rule = "R10-after"
    allowed_from = frozenset(VpsStatus)
    steps = (Step("stop_service", stop_service), Step("end_subscription", end_subscription))

    @classmethod
    def begin(cls, ctx: Context) -> None:
        """An end recorded on the subscription (non-renewal, reversibility, insolvency, cessation)
        still stands; R10-nonpayment and R10-breach are checked by their workflows."""
        reason = ctx.args(TerminateParams).reason
        if ctx.job.steps_done or reason in ("nonpayment", "breach"):
            return
        with ctx.transaction() as session:
            subscription = subscription_of(session, ctx)
            if subscription.status != "ending" or subscription.end_reason != reason:
                raise OperationFailed(f"the subscription is {subscription.status}, not ending by {reason}")

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        if ctx.vps().status not in GONE:
            ctx.update_vps(status=VpsStatus.stopped, suspend_reason=None, suspended_by=None)


def subscription_of(session: Session, ctx: Context) -> Subscription:
    """The subscription a terminate job ends (for the workflows' gates)."""
    subscription = session.get(Subscription, ctx.args(TerminateParams).subscription_id)
    if subscription is None:
        raise OperationFailed("the subscription is not recorded")
    return subscription


