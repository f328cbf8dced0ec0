"""Change orders (R5.1-change-order): a hardware change of a VPS — new sizes, or an extra data
disk — from the client's request to the resize (or disk attachment) that carries it out.

    requested --approve--> approved --accept--> accepted --job succeeds--> done
        |                     |                     \\--job fails------> failed
        |--refuse--> refused  |
        \\--cancel-----------> cancelled   (the client withdraws, before accepting)

- The client (or staff on their behalf) asks for new sizes, or for a data disk of some size
  (``add_disk_gib``); they are checked like the resize or the attachment itself (status, disks
  never shrink, the image's minimums, room on the host, the number of disks) and against the
  client's quota (orchestrator/compute/quotas.py), and nothing is recorded when they fail.  One
  open change order per VPS.
- Staff approve it with its price, which issues the **bon de commande** (a number, the current and
  new configuration, the new rent per billing period and any one-off fee, all HT: R8.3-ht) emailed
  to the client, or refuse it with a reason (emailed too).
- Only the client accepts the order form; acceptance records the resize (or attach-disk) job with
  exactly the order's configuration (the job's ``cause`` names the order: the operation's gate
  lets it through and the order is re-checked when the job starts) and invoices the one-off
  fee, if any.
- When the job succeeds the order is ``done`` and the VPS's subscription rent becomes the order's
  new rent (R8.2-rent: rent is fixed for the period ordered, so the new amount applies from the
  next period, with no pro rata); when it fails the order is ``failed``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlmodel import Session, col, select

from orchestrator.compute import quotas
from orchestrator.contract import billing
from orchestrator.contract.calendar import to_paris
from orchestrator.core.access import visible, visible_vps
from orchestrator.core.auth import Principal, require_client
from orchestrator.core.clock import utcnow
from orchestrator.core.db import locked
from orchestrator.core.errors import Conflict, ContractRefusal, InvalidRequest, NotFound
from orchestrator.core.models import ChangeOrder, Invoice, Job, JobEvent, JobStatus, Subscription, Vps
from orchestrator.core.numbering import next_number
from orchestrator.core.settings import Settings
from orchestrator.engine import events, jobs
from orchestrator.engine.context import Context, Request
from orchestrator.engine.operation import request
from orchestrator.notify import enqueue
from orchestrator.operations.disks import AttachDisk, AttachParams, AttachPlan
from orchestrator.operations.resize import SIZES, ResizeBody, ResizePlan, ResizeVps, configuration, plan_for
from orchestrator.workflows import invoicing

RULE = "R5.1-change-order"
OPEN = ("requested", "approved", "accepted")
LIVE_SUBSCRIPTION = ("active", "ending")
CENT = Decimal("0.01")
ADD_DISK = "add_disk_gib"  # in ``requested``: the order adds a data disk of that many GiB


def visible_order(session: Session, principal: Principal, order_id: str) -> ChangeOrder:
    """R7-confidential: another customer's change order is as absent as a missing one."""
    return settle(session, visible(session, ChangeOrder, order_id, principal, "change order"))


def of_vps(session: Session, vps: Vps) -> list[ChangeOrder]:
    orders = session.exec(select(ChangeOrder).where(ChangeOrder.vps_id == vps.id)
                          .order_by(col(ChangeOrder.requested_at))).all()
    return [settle(session, order) for order in orders]


def open_order(session: Session, vps: Vps) -> ChangeOrder | None:
    return session.exec(select(ChangeOrder).where(ChangeOrder.vps_id == vps.id,
                                                  col(ChangeOrder.status).in_(OPEN))).first()


def configuration_of(plan: ResizePlan) -> dict[str, int]:
    return {key: int(getattr(plan, key)) for key in SIZES}


def _check_sizes(session: Session, settings: Settings, principal: Principal, vps: Vps,
                 sizes: dict[str, Any]) -> dict[str, int]:
    """The new configuration, checked exactly as a resize is (raises InvalidRequest,
    InsufficientCapacity, or InvalidState for a VPS that cannot be resized now)."""
    ResizeVps.check_status(vps)
    planned = plan_for(Request(session, settings, principal, vps), ResizeBody(**sizes))
    return configuration_of(planned)


def _check_disk(session: Session, settings: Settings, principal: Principal, vps: Vps, size_gib: int) -> None:
    """An extra disk, checked exactly as its attachment is (the VPS's status, the number of disks,
    the size's bounds, room on the VPS's host)."""
    AttachDisk.check_status(vps)
    AttachDisk.check(Request(session, settings, principal, vps, cause=RULE), AttachParams(size_gib=size_gib))


def _check(session: Session, settings: Settings, principal: Principal, vps: Vps,
           requested: dict[str, int]) -> dict[str, int]:
    """The order's whole new configuration, checked as what carries it out will be."""
    if ADD_DISK in requested:
        _check_disk(session, settings, principal, vps, requested[ADD_DISK])
        return {**configuration(vps), ADD_DISK: requested[ADD_DISK]}
    return _check_sizes(session, settings, principal, vps, requested)


def _within_quota(session: Session, settings: Settings, principal: Principal, vps: Vps,
                  requested: dict[str, int]) -> None:
    """What the order adds to the client's holdings, against their quota (a client's own ask)."""
    current = configuration(vps)
    grows = {key: max(0, requested.get(key, current[key]) - current[key]) for key in SIZES}
    quotas.check(session, settings, principal, vps.customer_id,
                 quotas.Amounts(vcpus=grows["vcpus"], memory_mib=grows["memory_mib"],
                                disk_gib=grows["disk_gib"] + requested.get(ADD_DISK, 0)))


def _expect(order: ChangeOrder, action: str, *statuses: str) -> None:
    if order.status not in statuses:
        raise Conflict(f"cannot {action} a change order that is {order.status} "
                       f"(only one that is {' or '.join(statuses)})")


def _must_be_owner(principal: Principal, order: ChangeOrder, action: str) -> None:
    require_client(principal, order.customer_id,
                   f"{RULE}: only the client {action} the order form, not staff on their behalf")


def ask(session: Session, settings: Settings, principal: Principal, vps: Vps, sizes: dict[str, Any],
        note: str = "") -> ChangeOrder:
    """Record the client's request for new sizes or an extra disk (staff may record it for them)."""
    wanted = {key: value for key, value in sizes.items() if value is not None}
    if not wanted:
        raise InvalidRequest(f"give the new vcpus, memory_mib and/or disk_gib, or {ADD_DISK}")
    if ADD_DISK in wanted and len(wanted) > 1:
        raise InvalidRequest(f"a change order either changes sizes or adds a disk ({ADD_DISK}): ask for each alone")
    if open_order(session, vps) is not None:
        raise Conflict("this VPS already has an open change order: cancel it or wait until it is closed")
    requested = _check(session, settings, principal, vps, wanted)
    _within_quota(session, settings, principal, vps, requested)
    order = ChangeOrder(vps_id=vps.id, customer_id=vps.customer_id, current=configuration(vps),
                        requested=requested, requested_by=str(principal), request_note=note.strip())
    session.add(order)
    return order


def _next_number(session: Session) -> str:
    """Order forms are numbered in one unbroken sequence per year (BC2026-000001, ...)."""
    return next_number(session, f"BC{to_paris(utcnow()).year}-", ChangeOrder.number)


def _money(value: Decimal | None, what: str) -> Decimal | None:
    """R8.3-ht: euros before tax, to the cent, never negative."""
    if value is None:
        return None
    if not value.is_finite() or value < 0 or value != value.quantize(CENT):
        raise InvalidRequest(f"{what} must be a non-negative amount in euros with at most two decimals")
    return value.quantize(CENT)


def subscription_of(session: Session, vps_id: str) -> Subscription | None:
    return session.exec(select(Subscription).where(Subscription.vps_id == vps_id,
                                                   col(Subscription.status).in_(LIVE_SUBSCRIPTION))
                        .order_by(col(Subscription.created_at).desc())).first()


def approve(session: Session, settings: Settings, staff: Principal, order: ChangeOrder, rent_ht: Decimal,
            fee_ht: Decimal | None = None, note: str = "") -> ChangeOrder:
    """Staff approve the change at a price: the order form is numbered and emailed to the client."""
    order = locked(session, order)
    _expect(order, "approve", "requested")
    rent, fee = _money(rent_ht, "rent_ht"), _money(fee_ht, "fee_ht")
    vps = session.get(Vps, order.vps_id)
    if vps is None:
        raise NotFound("the VPS of this change order is gone")
    # The VPS may have changed since the request: the order form's current configuration is now's.
    _check(session, settings, staff, vps, order.requested)
    order.current = configuration(vps)
    order.number = _next_number(session)
    order.status, order.rent_ht, order.fee_ht = "approved", rent, fee if fee else None
    order.decided_by, order.decided_at, order.decision_note = str(staff), utcnow(), note.strip()
    session.add(order)
    subscription = subscription_of(session, vps.id)
    enqueue(session, order.customer_id, "order_form", {
        "number": order.number, "order_id": order.id, "vps_name": vps.name, "vps_id": vps.id,
        "current": order.current, "new": order.requested, "rent_ht": rent, "fee_ht": order.fee_ht,
        "billing_period": subscription.billing_period if subscription else None,
        "note": order.decision_note, "request_note": order.request_note,
    }, vps_id=vps.id, settings=settings)
    return order


def refuse(session: Session, settings: Settings, staff: Principal, order: ChangeOrder, reason: str) -> ChangeOrder:
    """Staff refuse the change, with the reason emailed to the client."""
    order = locked(session, order)
    _expect(order, "refuse", "requested")
    vps = session.get(Vps, order.vps_id)
    order.status = "refused"
    order.decided_by, order.decided_at, order.decision_note = str(staff), utcnow(), reason.strip()
    order.closed_at = order.decided_at
    session.add(order)
    enqueue(session, order.customer_id, "change_order_refused", {
        "vps_name": vps.name if vps else "", "vps_id": order.vps_id, "current": order.current,
        "new": order.requested, "reason": order.decision_note,
    }, vps_id=order.vps_id, settings=settings)
    return order


def accept(session: Session, settings: Settings, principal: Principal, order: ChangeOrder) -> Job:
    """The client accepts the order form: the resize job is recorded with exactly its configuration,
    and the one-off fee (if any) is invoiced, in one transaction."""
    _must_be_owner(principal, order, "accepts")
    order = locked(session, order)  # of two acceptances at once, one records the job, the other finds it accepted
    _expect(order, "accept", "approved")
    vps = visible_vps(session, principal, order.vps_id)
    asked = Request(session, settings, principal, vps, cause=cause(order))
    job = (request(asked, AttachDisk, AttachParams(size_gib=order.requested[ADD_DISK])) if ADD_DISK in order.requested
           else request(asked, ResizeVps, ResizeBody(**order.requested)))
    session.add(JobEvent(job_id=job.id, vps_id=vps.id, step="queued", status="info", actor=str(principal),
                         message=f"{RULE}: order form {order.number} accepted"))
    order.status, order.accepted_at, order.job_id = "accepted", utcnow(), job.id
    session.add(order)
    if order.fee_ht:
        subscription = subscription_of(session, vps.id)
        invoicing.issue(session, customer_id=order.customer_id, purpose="change_order", purpose_ref=order.id,
                        vps_id=vps.id, subscription_id=subscription.id if subscription else None,
                        lines=[billing.Line(RULE, f"Bon de commande {order.number}: {_label(order)}", order.fee_ht)])
    return job


def _label(order: ChangeOrder) -> str:
    new = order.requested
    label = f"{new['vcpus']} vCPU, {new['memory_mib']} MiB, {new['disk_gib']} GiB"
    return label + (f" + data disk {new[ADD_DISK]} GiB" if ADD_DISK in new else "")


def cancel(session: Session, principal: Principal, order: ChangeOrder) -> ChangeOrder:
    """The client withdraws a request or an order form they have not accepted."""
    _must_be_owner(principal, order, "withdraws")
    order = locked(session, order)
    _expect(order, "cancel", "requested", "approved")
    order.status, order.closed_at, order.outcome = "cancelled", utcnow(), f"withdrawn by {principal}"
    session.add(order)
    return order


def job_finished(session: Session, order_id: str, job_id: str, error: str | None) -> ChangeOrder | None:
    """The order's resize job ended (heard from the job, and on reading):
    ``done`` and the subscription's new rent, or ``failed`` with the error.  Idempotent."""
    order = session.get(ChangeOrder, order_id)
    if order is None or order.job_id != job_id or order.status != "accepted":
        return order
    order.closed_at = utcnow()
    if error is None:
        order.status = "done"
        subscription = subscription_of(session, order.vps_id)
        if subscription is not None and order.rent_ht is not None:
            # R8.2-rent: the rent of a period already invoiced is not divided; the subscription's
            # rent is what the next periods are invoiced at.
            order.outcome = (f"subscription rent {subscription.rent_ht} -> {order.rent_ht} HT per "
                             f"{subscription.billing_period} period, from the next period")
            subscription.rent_ht = order.rent_ht
            session.add(subscription)
    else:
        order.status, order.outcome = "failed", error[:2000]
    session.add(order)
    session.flush()
    return order


def settle(session: Session, order: ChangeOrder) -> ChangeOrder:
    """An accepted order whose job ended without its hooks (refused at start because the VPS's
    status changed, or cancelled) is closed from the job's outcome."""
    if order.status == "accepted" and order.job_id:
        job = session.get(Job, order.job_id)
        if job is not None and job.status in (JobStatus.failed, JobStatus.cancelled, JobStatus.succeeded):
            error = None if job.status == JobStatus.succeeded else (job.error or job.status.value)
            job_finished(session, order.id, job.id, error)
    return order


CAUSE = "change_order"


def cause(order: ChangeOrder) -> str:
    return jobs.cause(CAUSE, order.id)


def _order_of(session: Session, ctx: Context) -> ChangeOrder | None:
    order_id = jobs.cause_id(ctx.job, CAUSE)
    return session.get(ChangeOrder, order_id) if order_id else None


def _accepted_order_of(session: Session, ctx: Context) -> ChangeOrder:
    order = _order_of(session, ctx)
    if order is None or order.vps_id != ctx.job.vps_id or order.job_id != ctx.job.id:
        raise ContractRefusal(RULE, f"change order {ctx.job.cause} is not the one of this job")
    if order.status not in ("accepted", "done"):
        raise ContractRefusal(RULE, f"order form {order.number} is {order.status}, not accepted")
    return order


@events.on_started(ResizeVps.kind)
def _still_the_accepted_order(ctx: Context) -> None:
    """R5.1-change-order, again when the job starts: the order form is still the accepted one of
    this job and the plan is exactly its configuration."""
    if jobs.cause_id(ctx.job, CAUSE) is None:
        return
    planned = ctx.plan(ResizePlan)
    with ctx.transaction() as session:
        order = _accepted_order_of(session, ctx)
        if any(order.requested.get(key) != getattr(planned, key) for key in SIZES):
            raise ContractRefusal(RULE, f"the plan differs from order form {order.number}")


@events.on_started(AttachDisk.kind)
def _still_the_accepted_disk(ctx: Context) -> None:
    """The same for an extra disk: the accepted order's, of exactly its size."""
    if jobs.cause_id(ctx.job, CAUSE) is None:
        return
    planned = ctx.plan(AttachPlan)
    with ctx.transaction() as session:
        order = _accepted_order_of(session, ctx)
        if order.requested.get(ADD_DISK) != planned.size_gib:
            raise ContractRefusal(RULE, f"the disk differs from order form {order.number}")


@events.on_succeeded(ResizeVps.kind, AttachDisk.kind)
def _done(ctx: Context) -> None:
    with ctx.transaction() as session:
        order = _order_of(session, ctx)
        if order is not None:
            job_finished(session, order.id, ctx.job.id, None)


@events.on_failed(ResizeVps.kind, AttachDisk.kind)
def _failed(ctx: Context, error: Exception) -> None:
    with ctx.transaction() as session:
        order = _order_of(session, ctx)
        if order is not None:
            job_finished(session, order.id, ctx.job.id, str(error))


def fee_invoice(session: Session, order: ChangeOrder) -> Invoice | None:
    return session.exec(select(Invoice).where(Invoice.purpose == "change_order",
                                              Invoice.purpose_ref == order.id)).first()

