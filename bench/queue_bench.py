"""The job queue's hot path with contract deadlines waiting in it.

Every contract deadline (a reinstall three jours ouvrés after a notice, an erasure five days after
a formal notice, an incident's fix deadline, an end of term) is a job that waits in the same table
as the work being done now.  A hosting company has many of them pending at any time; they must not
slow down the claim of the next job.  Measured: claim + finish of one ordinary job, median over
many, with an empty queue (the floor) and then with more and more deadline jobs waiting over the
same VPS fleet, on SQLite (the embedded default) and, when $VPSCTL_TEST_POSTGRES_URL is set,
PostgreSQL (a schema of its own).  Target: with the most jobs waiting, at most 1.5 x the empty
queue's median, on each database.

    python -m bench.queue_bench          # writes its section of docs/benchmarks.md
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session

from bench.common import summary
from bench.report import Figure, Result, Target, count, quick
from orchestrator.core.clock import utcnow
from orchestrator.core.db import make_engine, session_scope
from orchestrator.core.models import Customer, Host, Job, JobStatus, Vps, VpsStatus
from orchestrator.engine import jobs
from tests.databases import empty_database

KEY = "queue"
HEADING = "Job queue: claiming the next job with contract deadlines waiting"
FLEET = 500  # VPS
TARGET = 1.5


def world(engine: Any) -> list[str]:
    with Session(engine) as session:
        customer, host = Customer(name="bench"), Host(name="h", uri="test:///default")
        session.add(customer)
        session.add(host)
        session.flush()
        fleet = [Vps(name=f"v{i}", customer_id=customer.id, host_id=host.id, image="tiny", vcpus=1,
                     memory_mib=256, disk_gib=2, status=VpsStatus.running) for i in range(FLEET)]
        session.add_all(fleet)
        session.commit()
        return [v.id for v in fleet]


def add_deadlines(engine: Any, fleet: list[str], first: int, count: int) -> None:
    if not count:
        return
    later = utcnow() + timedelta(days=5)
    with Session(engine) as session:
        session.add_all([Job(vps_id=fleet[i % len(fleet)], kind="erase", params={}, steps_total=1,
                             scheduled_at=later + timedelta(seconds=i), not_before=later + timedelta(seconds=i))
                         for i in range(first, first + count)])
        session.commit()
    if engine.dialect.name == "postgresql":  # as autovacuum would after such a batch
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE job")
            conn.commit()


def claim_finish(engine: Any, fleet: list[str], i: int) -> float:
    """One ordinary job asked, then claimed and finished (ms: the claim and the finish)."""
    with Session(engine) as session:
        vps = session.get(Vps, fleet[(i * 7) % len(fleet)])
        jobs.enqueue(session, "start", vps, {}, "bench", 1, 3)
        session.commit()
    began = time.perf_counter()
    job = jobs.claim(engine, "bench", 30)
    assert job is not None and job.kind == "start", job
    with session_scope(engine) as session:
        row = session.get(Job, job.id)
        assert row is not None
        row.status, row.finished_at = JobStatus.succeeded, utcnow()
        session.add(row)
    return (time.perf_counter() - began) * 1000


def run(kind: str, steps: tuple[int, ...], samples: int) -> list[dict[str, Any]]:
    """One row per number of waiting jobs: median and p90 of claim + finish (ms).  Each number
    has a database of its own (a SQLite file, a PostgreSQL schema), and the samples go round
    them in turn, so that the machine's load weighs on the floor and the rest alike."""
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        queues = []
        for step in steps:
            settings = stack.enter_context(empty_database(kind, Path(tmp) / str(step)))
            engine = make_engine(settings)
            stack.callback(engine.dispose)
            fleet = world(engine)
            add_deadlines(engine, fleet, 0, step)
            for i in range(20):  # warm up
                claim_finish(engine, fleet, i)
            queues.append((engine, fleet, []))
        for i in range(samples):
            for engine, fleet, times in queues:
                times.append(claim_finish(engine, fleet, i))
        return [{"kind": kind, "waiting": step, **summary(kind, times)}
                for step, (_, _, times) in zip(steps, queues, strict=True)]


def measure(steps: tuple[int, ...] | None = None, samples: int | None = None,
            kinds: list[str] | None = None) -> Result:
    steps = steps or ((0, 200, 2_000) if quick() else (0, 1_000, 10_000, 30_000))
    samples = samples or count(200, 30)
    kinds = kinds or ["sqlite"] + (["postgresql"] if os.environ.get("VPSCTL_TEST_POSTGRES_URL") else [])
    rows = [row for kind in kinds for row in run(kind, steps, samples)]
    table = ["| database | deadline jobs waiting | median (ms) | p90 (ms) | / empty queue | samples |",
             "|---|---:|---:|---:|---:|---:|"]
    targets, series = [], {}
    for kind in kinds:
        mine = [row for row in rows if row["kind"] == kind]
        floor = float(mine[0]["median"])
        for row in mine:
            table.append(f"| {kind} | {row['waiting']:,} | {float(row['median']):.2f} | {float(row['p90']):.2f} | "
                         f"{float(row['median']) / floor:.2f}x | {row['n']} |")
        series[kind] = [(row["waiting"], float(row["median"])) for row in mine]
        targets.append(Target(f"queue, {kind}: claim + finish with {mine[-1]['waiting']:,} deadline jobs "
                              "waiting / with none (medians)", float(mine[-1]["median"]) / floor, TARGET))
    lines = [
        f"`python -m bench.queue_bench`: claim + finish of one ordinary job (ms), {samples} samples per row "
        f"over {FLEET} VPS, first with an empty queue (the floor), beside the same with more and more contract "
        "deadline jobs waiting (days ahead), each queue in a database of its own, the samples taken from "
        "each in turn. Every job carries the instant it may run from "
        "(`not_before`), and the claim reads ready jobs through the `(status, not_before)` index: waiting "
        "deadline jobs are not read, so the time per claim stays flat as they pile up. PostgreSQL's "
        "statistics are refreshed after each batch (`ANALYZE`, as autovacuum would).",
        "",
        *table,
        "",
    ]
    figure = Figure("queue", "Claim + finish of one job as deadline jobs pile up", "deadline jobs waiting",
                    "median claim + finish (ms)", series)
    return Result(KEY, HEADING, lines, targets, [figure])


if __name__ == "__main__":
    from bench.run import main

    raise SystemExit(main([KEY]))
