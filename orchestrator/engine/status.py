"""What the worker processes and the periodic duties last did, recorded for operators (``GET
/metrics``): a worker that stopped looking at the queue, a reconciler that stopped passing, a
billing run that fails, show there instead of by their silence.

- A worker records, at most once per heartbeat while it finds nothing to do (and at once when its
  clock moved back, or leapt past that), when by its clock it last looked at the queue and found
  no job ready, and the job it then waits for: the earliest queued job that may run later (a
  deadline job, a retry).  ``WorkerStatus``, one row per worker process; rows of workers not seen
  for ``FORGET_AFTER`` are removed when a worker starts.
- Each periodic duty's run, whichever process ran it: counted (``runs``, ``failures``), with its
  times, its process and its facts (what it looked at and decided, as counts).  ``PeriodicRun``,
  one row per duty, updated in place (``runs + 1``: several processes run the duties at once).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from orchestrator.core.clock import utcnow
from orchestrator.core.db import session_scope
from orchestrator.core.models import Job, JobStatus, PeriodicRun, WorkerStatus

log = logging.getLogger(__name__)

FORGET_AFTER = timedelta(days=7)

Facts = dict[str, int]


def next_due(engine: Engine, now: datetime) -> tuple[str, datetime] | None:
    """The queued job that may run soonest after ``now`` (its id, its instant), or None."""
    with session_scope(engine) as session:
        row = session.exec(select(Job.id, Job.not_before).where(
            col(Job.status) == JobStatus.queued, col(Job.not_before) > now)
            .order_by(col(Job.not_before)).limit(1)).first()
    if row is None or row[1] is None:
        return None
    return row[0], row[1]


class Lookout:
    """A worker's record of its looks at the queue (``WorkerStatus``), written sparingly."""

    def __init__(self, engine: Engine, worker_id: str, every: float) -> None:
        self.engine = engine
        self.worker_id = worker_id
        self.every = timedelta(seconds=every)
        self.looks = 0
        self.claimed = 0
        self.written_at: datetime | None = None

    def start(self) -> None:
        now = utcnow()
        with session_scope(self.engine) as session:
            session.execute(delete(WorkerStatus).where(col(WorkerStatus.idle_at) < now - FORGET_AFTER))
            session.add(WorkerStatus(worker=self.worker_id, started_at=now))

    def looked(self, claimed: bool) -> None:
        """After a claim: counted; when it found nothing, recorded unless recorded lately."""
        self.looks += 1
        if claimed:
            self.claimed += 1
            return
        now = utcnow()
        if self.written_at is not None and self.written_at <= now < self.written_at + self.every:
            return
        self.written_at = now
        due = next_due(self.engine, now)
        with session_scope(self.engine) as session:
            row = session.get(WorkerStatus, self.worker_id) or WorkerStatus(worker=self.worker_id)
            row.looks, row.claimed, row.idle_at = self.looks, self.claimed, now
            row.next_due_job_id, row.next_due_at = due if due else (None, None)
            session.add(row)

    def stop(self) -> None:
        with session_scope(self.engine) as session:
            row = session.get(WorkerStatus, self.worker_id)
            if row is not None:
                row.looks, row.claimed, row.stopped_at = self.looks, self.claimed, utcnow()
                session.add(row)


def facts_of(result: object) -> Facts | None:
    """A duty's result as counts: a mapping of names to numbers, or an object with ``facts()``."""
    if hasattr(result, "facts"):
        result = result.facts()
    if isinstance(result, Mapping):
        return {str(name): int(value) for name, value in result.items()}
    return None


def record_run(engine: Engine, task: str, worker: str, started_at: datetime, result: object,
               error: BaseException | None) -> None:
    """One run of ``task`` ended (``error`` None: well)."""
    facts = facts_of(result) if error is None else None
    values: dict[str, object] = {
        "runs": PeriodicRun.runs + 1, "failures": PeriodicRun.failures + (1 if error is not None else 0),
        "last_started_at": started_at, "last_finished_at": utcnow(), "last_worker": worker[:100],
        "last_error": None if error is None else (str(error) or type(error).__name__)[:2000],
    }
    if error is None:
        values["last_facts"] = facts or {}
    with session_scope(engine) as session:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(insert(PeriodicRun).values(task=task, runs=0, failures=0, last_worker="", last_facts={})
                        .on_conflict_do_nothing(index_elements=["task"]))
        session.execute(update(PeriodicRun).where(col(PeriodicRun.task) == task).values(values))


def worker_status(engine: Engine, worker: str) -> WorkerStatus | None:
    with session_scope(engine) as session:
        row = session.get(WorkerStatus, worker)
        if row is not None:
            session.expunge(row)
        return row
