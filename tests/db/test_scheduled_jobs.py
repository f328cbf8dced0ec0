"""Deadline jobs (a job with ``scheduled_at``): they wait for their instant without holding up the
VPS's other jobs, run in their turn once due, can be called off before they start, and can put
themselves back to wait when their deadline moved (``Deferred``).  On SQLite and, when the test
command provides one, on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlmodel import Session

from orchestrator.core import clock
from orchestrator.core.clock import utcnow
from orchestrator.core.db import make_engine
from orchestrator.core.models import Job, JobStatus, Vps, VpsStatus
from orchestrator.core.settings import Settings
from orchestrator.engine import jobs
from orchestrator.engine.context import Context
from orchestrator.engine.operation import OPERATIONS, Deferred, Operation, Step
from orchestrator.engine.worker import Worker
from tests.databases import databases, empty_database
from tests.db.records import running_vps


@pytest.fixture(params=databases())
def world(request: Any, tmp_path: Path) -> Iterator[tuple[Any, Any, str]]:
    with empty_database(request.param, tmp_path) as settings:
        yield from _world(settings)


def _world(settings: Settings) -> Iterator[Any]:
    engine = make_engine(settings)
    with Session(engine) as session:
        vps_id = running_vps(session).id
        session.commit()
    yield engine, settings, vps_id
    clock.reset()
    engine.dispose()


def add(engine: Any, vps_id: str, kind: str, scheduled_at: Any = None) -> str:
    with Session(engine) as session:
        vps = session.get(Vps, vps_id)
        job = jobs.enqueue(session, kind, vps, {}, "test", 1, 3, scheduled_at=scheduled_at)
        session.commit()
        return job.id


def finish(engine: Any, job_id: str) -> None:
    with Session(engine) as session:
        row = session.get(Job, job_id)
        row.status = JobStatus.succeeded
        session.add(row)
        session.commit()


def test_a_deadline_job_waits_without_blocking_then_runs_in_its_turn(world: tuple[Any, Any, str]) -> None:
    engine, _settings, vps_id = world
    erase = add(engine, vps_id, "erase", scheduled_at=utcnow() + timedelta(days=5))
    start = add(engine, vps_id, "start")
    # Not due: the later ordinary job runs first, the deadline job is not claimed.
    claimed = jobs.claim(engine, "w", 30)
    assert claimed is not None and claimed.id == start
    finish(engine, start)
    assert jobs.claim(engine, "w", 30) is None
    # Due: asked before a new job, it now runs first and holds the new job up until it ends.
    clock.travel_to(utcnow() + timedelta(days=5, seconds=1))
    stop = add(engine, vps_id, "stop")
    claimed = jobs.claim(engine, "w", 30)
    assert claimed is not None and claimed.id == erase
    assert jobs.claim(engine, "w", 30) is None  # stop waits for erase
    finish(engine, erase)
    claimed = jobs.claim(engine, "w", 30)
    assert claimed is not None and claimed.id == stop


def test_cancel_only_before_the_job_starts(world: tuple[Any, Any, str]) -> None:
    engine, _settings, vps_id = world
    erase = add(engine, vps_id, "erase", scheduled_at=utcnow() + timedelta(days=5))
    with Session(engine) as session:
        assert [j.id for j in jobs.pending(session, vps_id, {"erase"})] == [erase]
        assert jobs.cancel(session, session.get(Job, erase), "invoice paid", "billing")
        session.commit()
    clock.travel_to(utcnow() + timedelta(days=6))
    assert jobs.claim(engine, "w", 30) is None
    with Session(engine) as session:
        row = session.get(Job, erase)
        assert row.status == JobStatus.cancelled and row.error == "invoice paid"
        assert jobs.pending(session, vps_id) == []
    running = add(engine, vps_id, "stop")
    assert jobs.claim(engine, "w", 30) is not None
    with Session(engine) as session:
        assert not jobs.cancel(session, session.get(Job, running), "too late", "test")


class _Later(Operation):
    """Defers itself once, to an instant recorded in its params, then succeeds."""

    kind = "test-later"
    allowed_from = frozenset({VpsStatus.running})
    ran: ClassVar[list[str]] = []

    @classmethod
    def begin(cls, ctx: Context) -> None:
        if not ctx.params.get("deferred"):
            ctx.remember(deferred=True)
            raise Deferred(utcnow() + timedelta(hours=2), "the notice was sent later than planned")

    steps = (Step("work", lambda ctx: _Later.ran.append(ctx.job.id) or "worked"),)


def test_a_deferred_job_waits_again_without_using_an_attempt(world: tuple[Any, Any, str]) -> None:
    engine, settings, vps_id = world
    OPERATIONS[_Later.kind] = _Later
    try:
        job_id = add(engine, vps_id, _Later.kind, scheduled_at=utcnow())
        worker = Worker(engine, settings)
        assert worker.run_once()
        with Session(engine) as session:
            row = session.get(Job, job_id)
            assert row.status == JobStatus.queued and row.attempts == 0
            assert row.scheduled_at is not None and row.scheduled_at > utcnow() + timedelta(hours=1)
            deferred = [e for e in jobs.events(session, job_id) if e.status == "deferred"]
            assert len(deferred) == 1 and "sent later" in deferred[0].message
        assert not worker.run_once()  # not due yet
        clock.travel_to(utcnow() + timedelta(hours=2, seconds=1))
        assert worker.run_once()
        with Session(engine) as session:
            row = session.get(Job, job_id)
            assert row.status == JobStatus.succeeded and row.attempts == 1
        assert _Later.ran == [job_id]
        worker.drivers.close()
    finally:
        OPERATIONS.pop(_Later.kind, None)
        _Later.ran.clear()
