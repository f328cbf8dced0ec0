"""Every deadline is a durable job that survives restarts: an incident's fix deadline (R5.4-fix-delay,
48 heures ouvrées) is recorded in the database; a worker process killed with SIGKILL loses
nothing; a worker started later whose clock (VPSCTL_NOW) is before the deadline leaves it alone,
and one whose clock is past it runs it.  Real `vpsctl worker` processes over one SQLite file.

"Leaves it alone" is shown by what the worker recorded, not by waiting: its looks at the queue
(``WorkerStatus``, orchestrator/engine/status.py) say when, by its clock, it found no job ready,
and that the job it waits for is this one, at the deadline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from orchestrator.core.db import make_engine
from orchestrator.core.models import Customer, Job, JobStatus, Outbox, WorkerStatus
from orchestrator.core.settings import Settings
from orchestrator.engine import jobs
from orchestrator.workflows import incidents
from tests.db.records import running_vps


def worker(settings: Settings, now: str | None, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPSCTL_")}
    env.update({"VPSCTL_STATE_DIR": str(settings.state_dir), "VPSCTL_RECONCILE_SECONDS": "0",
                "VPSCTL_TRAFFIC_SECONDS": "0", "VPSCTL_BILLING_RUN_SECONDS": "0",
                "VPSCTL_JOB_HEARTBEAT_SECONDS": "0.5",  # an idle worker records a look every 0.5 s
                "VPSCTL_SMTP_PORT": "9"})  # nothing listens: notices wait in the outbox
    if now:
        env["VPSCTL_NOW"] = now
    handle = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "worker"], env=env, stdout=handle,
                            stderr=handle)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Any, Settings, str, str]]:
    settings = Settings(state_dir=tmp_path)
    engine = make_engine(settings)
    with Session(engine) as session:
        vps = running_vps(session, Customer(name="c", email="c@example.test"))
        incident = incidents.open_incident(session, settings, vps, "network", "no route to the VPS", "support:test")
        session.commit()
        job = session.exec(select(Job).where(Job.kind == incidents.DEADLINE_KIND)).one()
        ids = (incident.id, job.id)
    yield engine, settings, ids[0], ids[1]
    engine.dispose()


def job_of(engine: Any, job_id: str) -> Job:
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def looked(engine: Any, proc: subprocess.Popen[bytes], log: Path, after: int = 0) -> WorkerStatus:
    """The record of ``proc``'s last look at the queue that found no job ready, once it has one
    counting more than ``after`` looks."""
    deadline = time.monotonic() + 60
    while True:
        with Session(engine) as session:
            row = session.exec(select(WorkerStatus).where(col(WorkerStatus.worker).contains(f":{proc.pid}:"))).first()
            if row is not None and row.idle_at is not None and row.looks > after:
                session.expunge(row)
                return row
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"worker {proc.pid} recorded no look: {log.read_text()[-3000:]}"
        time.sleep(0.05)


def untouched(engine: Any, job_id: str, due: datetime) -> None:
    """Never claimed: queued for its deadline, no attempt, no event but its request."""
    job = job_of(engine, job_id)
    assert job.status == JobStatus.queued and job.attempts == 0 and job.started_at is None, job
    assert job.scheduled_at == job.not_before == due
    with Session(engine) as session:
        assert [e.step for e in jobs.events(session, job_id)] == ["queued"]


def test_a_deadline_job_survives_killed_workers_and_runs_when_due(world: tuple[Any, Settings, str, str],
                                                                   tmp_path: Path) -> None:
    engine, settings, _incident_id, job_id = world
    due = job_of(engine, job_id).scheduled_at
    assert due is not None
    log = tmp_path / "workers.log"

    # A worker that is killed before the deadline: it looked at the queue (now, two days before
    # the deadline), found nothing ready and waits for this job; killed, the job is still there.
    early = worker(settings, None, log)
    try:
        seen = looked(engine, early, log)
    finally:
        early.send_signal(signal.SIGKILL)
        early.wait(timeout=10)
    assert seen.idle_at is not None and seen.idle_at < due - timedelta(days=1)
    assert (seen.next_due_job_id, seen.next_due_at) == (job_id, due)
    untouched(engine, job_id, due)

    # A worker whose clock stands an hour before the deadline leaves it alone: it looks, again
    # and again, by its clock before the deadline, and waits for this job at the deadline.
    start = due - timedelta(hours=1)
    before = worker(settings, start.isoformat(), log)
    try:
        first = looked(engine, before, log)
        again = looked(engine, before, log, after=first.looks)
        untouched(engine, job_id, due)
    finally:
        before.send_signal(signal.SIGKILL)
        before.wait(timeout=10)
    for seen in (first, again):
        assert seen.idle_at is not None and start <= seen.idle_at < start + timedelta(minutes=5)
        assert (seen.next_due_job_id, seen.next_due_at, seen.claimed) == (job_id, due, 0)
    assert again.idle_at is not None and first.idle_at is not None and again.idle_at > first.idle_at

    # A worker started after the deadline runs it: the client is told (R5.4-fix-delay).
    after = worker(settings, (due + timedelta(minutes=1)).isoformat(), log)
    try:
        deadline = time.monotonic() + 60
        while job_of(engine, job_id).status in (JobStatus.queued, JobStatus.running):
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
    finally:
        after.terminate()
        after.wait(timeout=20)
    job = job_of(engine, job_id)
    assert job.status == JobStatus.succeeded, (job.error, log.read_text()[-3000:])
    with Session(engine) as session:
        notices = session.exec(select(Outbox).where(Outbox.template == "termination_right_notice")).all()
        assert len(notices) == 1 and notices[0].job_id == job_id
