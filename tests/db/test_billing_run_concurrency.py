"""R8.2-rent: several worker processes running the billing run at once issue every rent period
exactly once, with an unbroken invoice numbering, on SQLite and on a real PostgreSQL when
$VPSCTL_TEST_POSTGRES_URL is given (the unique key on subscription, purpose and period decides
the race; a loser rolls back and moves on)."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from orchestrator.contract.calendar import add_months
from orchestrator.core.db import make_engine, session_scope
from orchestrator.core.models import Customer, Invoice, Subscription
from orchestrator.core.settings import Settings
from orchestrator.workflows import billing_run
from orchestrator.workflows.subscriptions import today

SUBSCRIPTIONS, MONTHS, WORKERS = 5, 12, 4


def run(url: str, state_dir: str, out: Any) -> None:
    engine = make_engine(Settings(state_dir=Path(state_dir), database_url=url))
    result = billing_run.run(engine, Settings(state_dir=Path(state_dir), database_url=url))
    engine.dispose()
    out.put(result.issued)


def test_billing_run_in_several_processes_issues_each_period_once(settings: Settings, tmp_path: Path) -> None:
    engine = make_engine(settings)
    started = add_months(today(), -(MONTHS - 1))  # MONTHS monthly periods have begun
    with session_scope(engine) as session:
        customer = Customer(name="c")
        session.add(customer)
        session.flush()
        assert customer.id is not None
        for _ in range(SUBSCRIPTIONS):
            session.add(Subscription(customer_id=customer.id, term_months=12, billing_period="monthly",
                                     started_on=started, rent_ht=Decimal("10.00")))
    engine.dispose()

    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    procs = [context.Process(target=run, args=(settings.database, str(tmp_path), out)) for _ in range(WORKERS)]
    for proc in procs:
        proc.start()
    issued = [number for _ in procs for number in out.get(timeout=180)]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0

    engine = make_engine(settings)
    with Session(engine) as session:
        invoices = session.exec(select(Invoice)).all()
    engine.dispose()
    assert len(invoices) == SUBSCRIPTIONS * MONTHS
    assert Counter((i.subscription_id, i.period_start) for i in invoices).most_common(1)[0][1] == 1
    assert sorted(issued) == sorted(i.number for i in invoices)  # each reported by the one who issued it
    assert all(i.total_ht == Decimal("10.00") for i in invoices)
    numbers = sorted(int(i.number.split("-")[1]) for i in invoices if i.number.startswith(invoices[0].number[:6]))
    assert numbers == list(range(1, len(numbers) + 1))  # no gap within a year
