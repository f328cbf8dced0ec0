"""The billing run: rent invoices on the first day of each period, SYNTEC revision at a term
boundary, and (when the setting asks for it) payment defaults opened on invoices left unpaid.

R8.2-rent: every period begun is invoiced in full, never pro rata, exactly once, even when several
workers run this at the same time (an invoice is unique per subscription, purpose and period; a
worker that loses the race rolls back, counts it in ``raced`` and moves on). R8.6-billing: on the
first day of the period.
R8.4-syntec: at each term boundary the rent becomes current x latest published index / contract
index, in the same transaction as the invoice of the new term's first period (so exactly once).
R8.7-default: ``auto_default_after_days`` opens a default that many days after the due date.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from orchestrator.compute.hosts import Drivers
from orchestrator.contract import billing
from orchestrator.contract.calendar import add_months
from orchestrator.core.auth import Principal
from orchestrator.core.errors import VpsctlError
from orchestrator.core.models import Invoice, PaymentDefault, Role, Subscription, SyntecIndex
from orchestrator.core.settings import Settings
from orchestrator.engine.ticker import periodic
from orchestrator.workflows import invoicing, nonpayment
from orchestrator.workflows.subscriptions import today

log = logging.getLogger(__name__)

BILLING_RUN = Principal(Role.automation, None, "billing-run")


@dataclass
class RunResult:
    issued: list[str] = field(default_factory=list)  # invoice numbers
    revised: list[str] = field(default_factory=list)  # subscription ids whose rent was revised
    defaults: list[str] = field(default_factory=list)  # invoice numbers put in default
    # Rent periods ("<subscription id> <period start>") another run issued while this one was
    # issuing them: its insert failed on the unique key, it rolled back and moved on.
    raced: list[str] = field(default_factory=list)
    subscriptions: int = 0  # subscriptions looked at

    def facts(self) -> dict[str, int]:
        """The run's record (orchestrator/engine/status.py, GET /metrics)."""
        return {"subscriptions": self.subscriptions, "issued": len(self.issued), "revised": len(self.revised),
                "defaults": len(self.defaults), "raced": len(self.raced)}


class Raced(Exception):
    """Another run issued this rent period first (the unique key on subscription, purpose and
    period refused this one's invoice)."""

    def __init__(self, subscription_id: str, period_start: date) -> None:
        super().__init__(f"{subscription_id} {period_start.isoformat()}")


def latest_index(session: Session, on: date) -> SyntecIndex | None:
    """R8.4-syntec: the latest index published for a month up to ``on``."""
    return session.exec(select(SyntecIndex).where(col(SyntecIndex.month) <= on)
                        .order_by(col(SyntecIndex.month).desc())).first()


def _term_boundary(subscription: Subscription, day: date) -> bool:
    assert subscription.started_on is not None
    start = subscription.started_on
    months = (day.year - start.year) * 12 + day.month - start.month
    return months > 0 and months % subscription.term_months == 0 and add_months(start, months) == day


def _revise(session: Session, subscription: Subscription, period_start: date) -> str | None:
    """R8.4-syntec: revise the rent at a term boundary when a newer index than the contract's is
    published; the new index becomes the reference of the next revision."""
    if subscription.contract_index is None or not _term_boundary(subscription, period_start):
        return None
    latest = latest_index(session, period_start)
    if latest is None or latest.value == subscription.contract_index:
        return None
    before = subscription.rent_ht
    subscription.rent_ht = billing.revised_rent(before, latest.value, subscription.contract_index)
    note = (f"revised (R8.4-syntec) {before} x {latest.value} / {subscription.contract_index} "
            f"= {subscription.rent_ht}")
    subscription.contract_index = latest.value
    session.add(subscription)
    return note


def _missing_period(session: Session, subscription: Subscription, on: date) -> billing.Invoice | None:
    """The first rent period begun on or before ``on`` (and before the end) not invoiced yet."""
    assert subscription.started_on is not None
    until = on + timedelta(days=1)
    if subscription.ends_on is not None:
        until = min(until, subscription.ends_on)
    if until <= subscription.started_on:
        return None
    rents = session.exec(select(Invoice).where(Invoice.subscription_id == subscription.id,
                                               Invoice.purpose == "rent")).all()
    done = {invoice.period_start for invoice in rents}
    schedule = billing.rent_schedule(subscription.started_on, subscription.started_on,
                                     subscription.billing_period,  # type: ignore[arg-type]
                                     subscription.rent_ht, until)
    return next((inv for inv in schedule if inv.period and inv.period[0] not in done), None)


def issue_next_rent(session: Session, subscription_id: str, on: date, result: RunResult) -> bool:
    """Issue one missing rent invoice of a subscription in the caller's transaction; False when
    none is due.  Raises ``Raced`` when another transaction issued that period first (the caller
    rolls back)."""
    subscription = session.get(Subscription, subscription_id)
    if subscription is None or subscription.status not in ("active", "ending"):
        return False
    due = _missing_period(session, subscription, on)
    if due is None or due.period is None:
        return False
    period = due.period
    note = _revise(session, subscription, period[0])
    line = due.lines[-1]
    line = dataclasses.replace(line, amount=subscription.rent_ht,
                               label=f"{line.label}, {note}" if note else line.label)
    try:
        invoice = invoicing.issue(session, customer_id=subscription.customer_id, purpose="rent", lines=[line],
                                  subscription_id=subscription.id, vps_id=subscription.vps_id, period=period)
    except IntegrityError as exc:  # the session's records are unreadable until it rolls back
        raise Raced(subscription_id, period[0]) from exc
    result.issued.append(invoice.number)
    if note:
        result.revised.append(subscription.id)
    return True


def run(engine: Engine, settings: Settings) -> RunResult:
    """One billing run; safe to run in several processes at once and again after a crash."""
    result = RunResult()
    on = today()
    with Session(engine) as session:
        ids = list(session.exec(select(Subscription.id).where(
            col(Subscription.status).in_(("active", "ending"))).order_by(col(Subscription.id))).all())
    result.subscriptions = len(ids)
    for subscription_id in ids:
        for _ in range(1000):  # at most one invoice per period; bounded anyway
            with Session(engine, expire_on_commit=False) as session:
                try:
                    issued = issue_next_rent(session, subscription_id, on, result)
                    session.commit()
                except Raced as raced:  # another worker issued it first: look again
                    session.rollback()
                    result.raced.append(str(raced))
                    continue
                except IntegrityError:  # at the commit (another worker's, the same period)
                    session.rollback()
                    result.raced.append(subscription_id)
                    continue
            if not issued:
                break
    if settings.contract.auto_default_after_days is not None:
        _auto_defaults(engine, settings, on - timedelta(days=settings.contract.auto_default_after_days), result)
    return result


def _auto_defaults(engine: Engine, settings: Settings, due_before: date, result: RunResult) -> None:
    """R8.7-default: by policy, a default on every open invoice due before ``due_before`` that
    was never in default (one transaction each)."""
    with Session(engine) as session:
        ever = select(PaymentDefault.invoice_id)
        ids = list(session.exec(select(Invoice.id).where(
            Invoice.status == "open", col(Invoice.due_on) < due_before, col(Invoice.id).not_in(ever))).all())
    for invoice_id in ids:
        with Session(engine, expire_on_commit=False) as session:
            invoice = session.get(Invoice, invoice_id)
            if invoice is None:
                continue
            try:
                nonpayment.declare(session, settings, BILLING_RUN, invoice)
                session.commit()
                result.defaults.append(invoice.number)
            except (VpsctlError, IntegrityError):
                session.rollback()


@periodic("billing_run", lambda settings: settings.periodic.billing_run_seconds)
def billing_run_task(engine: Engine, settings: Settings, _drivers: Drivers) -> object:
    result = run(engine, settings)
    if result.issued or result.defaults or result.raced:
        log.info("billing run: %d invoices issued, %d rents revised, %d defaults opened, %d periods issued "
                 "by another run at the same moment", len(result.issued), len(result.revised),
                 len(result.defaults), len(result.raced))
    return result
