"""R8.2-rent: several worker processes running the billing run at the same moment issue every rent
period exactly once, with an unbroken invoice numbering, on SQLite and on a real PostgreSQL when
$VPSCTL_TEST_POSTGRES_URL is given.

That they ran at the same moment is seen, not hoped for (tests/contention.py): the test holds the
lock every invoice needs, releases the processes together (a barrier), and lets the lock go only
once each of them is seen waiting for it.  On PostgreSQL (``pg_stat_activity``) each waits on the
invoice counter's row lock having read that the first period is not invoiced yet: one issues it,
and every other's insert fails on the unique key on subscription, purpose and period, is rolled
back and counted (``raced``): the loser moves on.  On SQLite each waits at ``BEGIN IMMEDIATE``,
which takes the write lock before anything is read: no process ever reads a period another is
issuing, so none races."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from orchestrator.contract.calendar import add_months, to_paris
from orchestrator.core.clock import utcnow
from orchestrator.core.db import make_engine, session_scope
from orchestrator.core.models import Counter as NumberCounter
from orchestrator.core.models import Customer, Invoice, Subscription
from orchestrator.core.settings import Settings
from orchestrator.workflows import billing_run
from orchestrator.workflows.subscriptions import today
from tests import contention

SUBSCRIPTIONS, MONTHS, WORKERS = 5, 12, 4


@dataclass
class Report:
    name: str
    issued: list[str]
    raced: list[str]
    ran: tuple[float, float]  # the run, start to end (time.monotonic)
    began: tuple[float, float] | None  # SQLite: its first transaction asked to begin, began


def run(url: str, state_dir: str, name: str, barrier: Any, asking: Any, out: Any) -> None:
    """One worker process's billing run, once every process is ready."""
    settings = Settings(state_dir=Path(state_dir), database_url=contention.named(url, name))
    engine = make_engine(settings)
    watch = contention.BeginWatch(engine, on_asking=asking.put, key=lambda: name) if url.startswith("sqlite") \
        else None
    barrier.wait(timeout=120)  # every process ready
    barrier.wait(timeout=120)  # the test holds the lock: go
    started = time.monotonic()
    result = billing_run.run(engine, settings)
    ended = time.monotonic()
    began = (watch.asked[name], watch.began[name]) if watch else None
    engine.dispose()
    out.put(Report(name, result.issued, result.raced, (started, ended), began))


def test_billing_run_in_several_processes_issues_each_period_once(settings: Settings, tmp_path: Path) -> None:
    engine = make_engine(settings)
    started = add_months(today(), -(MONTHS - 1))  # MONTHS monthly periods have begun
    prefix = f"F{to_paris(utcnow()).year}-"
    with session_scope(engine) as session:
        customer = Customer(name="c")
        session.add(customer)
        session.flush()
        assert customer.id is not None
        for _ in range(SUBSCRIPTIONS):
            session.add(Subscription(customer_id=customer.id, term_months=12, billing_period="monthly",
                                     started_on=started, rent_ht=Decimal("10.00")))
        session.add(NumberCounter(prefix=prefix, value=0))  # the counter every invoice of the year locks
    with Session(engine) as session:
        first = session.exec(select(Subscription.id).order_by(Subscription.id)).first()
    engine.dispose()

    url = settings.database
    postgres = url.startswith("postgresql")
    context = contention.processes()
    names = contention.names(WORKERS)
    barrier, asking, out = context.Barrier(WORKERS + 1), context.Queue(), context.Queue()
    procs = [context.Process(target=run, args=(url, str(tmp_path), name, barrier, asking, out), daemon=True)
             for name in names]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=120)  # every process is ready (its schema checked, which needs the lock)
    holding = (contention.pg_row_lock(url, "SELECT value FROM counter WHERE prefix = :prefix FOR UPDATE",
                                      prefix=prefix) if postgres else contention.sqlite_write_lock(url))
    with holding as release:
        barrier.wait(timeout=120)  # they start their run together
        # seen in pg_stat_activity, or telling they begin a transaction (BEGIN IMMEDIATE waits)
        waiting = contention.pg_waiting(url, names) if postgres else {asking.get(timeout=60) for _ in names}
        assert waiting == set(names)  # each is seen waiting for the lock this test holds
        released = release()
    reports = {r.name: r for r in (out.get(timeout=90) for _ in procs)}
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0

    # They ran at the same moment: every run began before the lock was let go and ended after.
    assert all(r.ran[0] < released < r.ran[1] for r in reports.values()), (released, reports)
    raced = [period for r in reports.values() for period in r.raced]
    if postgres:
        # Each had read that the first period was not invoiced: one issued it, the others lost the
        # race on the unique key, rolled back and moved on.
        opening = f"{first} {started.isoformat()}"
        assert sum(opening in r.raced for r in reports.values()) == WORKERS - 1, raced
        assert Counter(raced).most_common(1)[0][1] <= WORKERS - 1
    else:
        # Each began its first transaction before the lock was let go and got it only after.
        assert all(r.began is not None and r.began[0] < released < r.began[1] for r in reports.values())
        assert raced == []  # the write lock serialises whole transactions: no period read twice
    issued = [number for r in reports.values() for number in r.issued]
    print({r.name: (len(r.issued), len(r.raced)) for r in reports.values()})  # who did what (-s shows it)

    engine = make_engine(settings)
    with Session(engine) as session:
        invoices = session.exec(select(Invoice)).all()
    engine.dispose()
    assert len(invoices) == SUBSCRIPTIONS * MONTHS
    assert Counter((i.subscription_id, i.period_start) for i in invoices).most_common(1)[0][1] == 1
    assert sorted(issued) == sorted(i.number for i in invoices)  # each reported by the one who issued it
    assert all(i.total_ht == Decimal("10.00") for i in invoices)
    numbers = sorted(int(i.number.split("-")[1]) for i in invoices)
    assert numbers == list(range(1, len(numbers) + 1))  # no gap, no repeat: raced numbers were given back
