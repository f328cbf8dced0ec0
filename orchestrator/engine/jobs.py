"""Durable jobs: recorded by the API, claimed by workers under a lease kept alive by heartbeats.

Rules the queries below keep:
- at most one job of a VPS runs at a time, and a VPS's jobs run in the order they were asked;
- a job whose worker stopped heartbeating (killed, host rebooted) is claimed again once its lease
  expires, and resumes at its first step not recorded as done;
- every change of a job is committed with the event that tells it;
- a job recorded (or moved earlier) in a transaction wakes this process's worker once that
  transaction commits: whoever owns the transaction never has to.
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, event, exists, or_
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from orchestrator.core.clock import utcnow
from orchestrator.core.db import session_scope
from orchestrator.core.models import Job, JobEvent, JobStatus, Vps

ACTIVE = (JobStatus.queued, JobStatus.running)
# Job parameter: the waits for a guest in progress, by step ({"until": ISO instant, "attempt": n,
# "yields": n}).  A job that waits gives its worker slot back and is queued again at the same step
# (orchestrator/engine/operation.wait_until); the deadline stays the one set when the wait began.
WAITS = "waits"

# Wakes this process's worker as soon as a job is committed (other processes find it by polling).
_wake = threading.Event()


def notify() -> None:
    """Wake this process's worker now (the clock moved, the worker is stopping); new jobs wake it
    by themselves when their transaction commits."""
    _wake.set()


def _wake_after_commit(_session: Any) -> None:
    _wake.set()


def wake_on_commit(session: Session) -> None:
    """Wake the worker once ``session``'s transaction commits (not before: it would find nothing)."""
    event.listen(session, "after_commit", _wake_after_commit, once=True)


def wait_for_work(timeout: float) -> None:
    _wake.wait(timeout)
    _wake.clear()


def enqueue(
    session: Session,
    kind: str,
    vps: Vps | None,
    params: dict[str, Any],
    requested_by: str,
    steps_total: int,
    max_attempts: int,
    idempotency_key: str | None = None,
    scheduled_at: datetime | None = None,
    cause: str | None = None,
    created_at: datetime | None = None,
) -> Job:
    """Record a job in the caller's transaction; with ``scheduled_at`` it is a deadline job that
    runs at that instant (and does not hold up the VPS's other jobs while it waits).  ``cause``
    names the workflow record it is asked for; ``created_at`` places it in the VPS's queue (a
    hook takes its operation's place)."""
    now = utcnow()
    job = Job(
        created_at=created_at or now,
        vps_id=vps.id if vps else None,
        kind=kind,
        params=params,
        requested_by=requested_by,
        steps_total=steps_total,
        max_attempts=max_attempts,
        idempotency_key=idempotency_key,
        scheduled_at=scheduled_at,
        not_before=scheduled_at or now,
        cause=cause,
    )
    session.add(job)
    session.flush()
    wake_on_commit(session)
    when = f" for {scheduled_at.isoformat()}" if scheduled_at else ""
    session.add(JobEvent(job_id=job.id, vps_id=job.vps_id, step="queued", status="info", actor=requested_by,
                         message=f"{kind} requested{when}"))
    return job


def cancel(session: Session, job: Job, reason: str, actor: str) -> bool:
    """Call off a job that has not started; False when it already runs or ran."""
    if job.status != JobStatus.queued or job.steps_done:
        return False
    job.status = JobStatus.cancelled
    job.finished_at = utcnow()
    job.error = reason[:4000]
    session.add(job)
    session.add(JobEvent(job_id=job.id, vps_id=job.vps_id, step="finished", status="cancelled",
                         message=reason[:2000], actor=actor))
    return True


def reschedule(session: Session, job: Job, at: datetime) -> bool:
    """Move a deadline job that has not started to ``at``; False when it already runs or ran."""
    if job.status != JobStatus.queued or job.steps_done:
        return False
    job.scheduled_at = job.not_before = at
    session.add(job)
    wake_on_commit(session)
    return True


def cause(record_kind: str, record_id: str) -> str:
    """A job's ``cause``: the workflow record it is asked for (``compromise:<id>``, ...)."""
    return f"{record_kind}:{record_id}"


def cause_id(job: Job, record_kind: str) -> str | None:
    """The id of the ``record_kind`` record ``job`` was asked for; None for another cause or none."""
    kind, _, record_id = (job.cause or "").partition(":")
    return record_id if kind == record_kind and record_id else None


def caused_by(session: Session, cause: str, kinds: set[str] | None = None, *, active: bool = False) -> list[Job]:
    """The jobs asked for a workflow record (``Job.cause``), oldest first."""
    query = select(Job).where(Job.cause == cause)
    if kinds:
        query = query.where(col(Job.kind).in_(kinds))
    if active:
        query = query.where(col(Job.status).in_(ACTIVE))
    return list(session.exec(query.order_by(col(Job.created_at))).all())


def pending(session: Session, vps_id: str, kinds: set[str] | None = None) -> list[Job]:
    """Jobs of a VPS not finished yet, oldest first."""
    query = select(Job).where(Job.vps_id == vps_id, col(Job.status).in_(ACTIVE))
    if kinds:
        query = query.where(col(Job.kind).in_(kinds))
    return list(session.exec(query.order_by(col(Job.created_at))).all())


def find_idempotent(session: Session, requested_by: str, key: str) -> Job | None:
    return session.exec(
        select(Job).where(Job.requested_by == requested_by, Job.idempotency_key == key)
    ).first()


def claim(engine: Engine, worker_id: str, lease_seconds: float) -> Job | None:
    """Take the next job that may run now, or None."""
    with session_scope(engine) as session:
        # Read the clock once the transaction holds its lock (SQLite: BEGIN IMMEDIATE may wait),
        # so that leases and start times are not stamped with a time from before the wait.
        session.connection()
        now = utcnow()
        return _claim(session, engine, worker_id, lease_seconds, now)


def _claim(session: Session, engine: Engine, worker_id: str, lease_seconds: float, now: datetime) -> Job | None:
    other = aliased(Job)
    blocked = exists().where(
        col(other.vps_id) == col(Job.vps_id),
        col(other.id) != col(Job.id),
        or_(
            # another job of this VPS holds a live lease
            and_(col(other.status) == JobStatus.running, col(other.lease_expires_at) >= now),
            # or was asked earlier and has not finished (a deadline job counts once it is due)
            and_(col(other.status).in_(ACTIVE), col(other.created_at) < col(Job.created_at),
                 or_(col(other.scheduled_at).is_(None), col(other.scheduled_at) <= now,
                     col(other.status) == JobStatus.running)),
        ),
    )
    runnable = or_(
        # every job carries the instant it may run from (ix_job_ready: waiting jobs are not read)
        and_(col(Job.status) == JobStatus.queued, col(Job.not_before) <= now),
        and_(col(Job.status) == JobStatus.running, col(Job.lease_expires_at) < now),
    )
    # Ready first come first served; a VPS's own jobs keep the order they were asked in (blocked).
    query = select(Job).where(runnable, ~blocked).order_by(col(Job.not_before), col(Job.created_at)).limit(1)
    if engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Job)
    job = session.exec(query).first()
    if job is None:
        return None
    resumed = job.status == JobStatus.running
    # A job taken up again to look at its guest once more: not a new attempt, not worth an event
    # each time (the worker recorded when it began to wait).
    waiting = not resumed and bool((job.params or {}).get(WAITS))
    # Stamped now that the row is ours (PostgreSQL takes the row lock in the query itself, after
    # ``now`` was read): a start time never precedes the end of the job this one waited for.
    claimed_at = max(now, utcnow())
    job.status = JobStatus.running
    job.lease_owner = worker_id
    job.lease_expires_at = claimed_at + timedelta(seconds=lease_seconds)
    job.attempts += 1
    job.started_at = job.started_at or claimed_at
    session.add(job)
    if job.vps_id:
        vps = session.get(Vps, job.vps_id)
        if vps is not None:
            vps.task = job.kind
            vps.updated_at = now
            session.add(vps)
    if not waiting:
        session.add(
            JobEvent(
                job_id=job.id,
                vps_id=job.vps_id,
                step="claimed",
                status="info",
                actor=worker_id,
                message=(f"resumed after a lost lease (attempt {job.attempts})" if resumed
                         else f"attempt {job.attempts}"),
            )
        )
    session.flush()
    session.expunge(job)
    return job


def this_machine() -> str:
    """Who runs workers here, as their lease owners begin: the host name and this boot of it
    (a machine rebooted, or another machine of the same name, is not the same one)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:12]
    except OSError:
        boot = "noboot"
    return f"{socket.gethostname()}@{boot}"


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def end_leases_of_dead_workers(engine: Engine, worker_id: str) -> list[str]:
    """End now the leases of running jobs whose worker ran on this machine and whose process is gone
    (killed, crashed): they are claimed at once instead of when their lease runs out.  A process
    that may still run (or whose number another process took since) keeps its lease until it
    expires, as does any worker of another machine: its fate cannot be known from here.  Returns
    the ids of the jobs released."""
    machine = this_machine()
    released: list[str] = []
    with session_scope(engine) as session:
        query = select(Job).where(Job.status == JobStatus.running,
                                  col(Job.lease_owner).startswith(machine + ":"))
        for job in session.exec(query).all():
            owner = job.lease_owner or ""
            pid = owner[len(machine) + 1:].split(":", 1)[0]
            if owner.startswith(worker_id) or not pid.isdigit() or not _process_gone(int(pid)):
                continue
            job.lease_expires_at = utcnow() - timedelta(seconds=1)
            session.add(job)
            session.add(JobEvent(job_id=job.id, vps_id=job.vps_id, step=job.step or "", status="info",
                                 actor=worker_id, message=f"worker process {pid} holding the job is gone from "
                                 "this machine: its lease ends now"))
            released.append(job.id)
    return released


def heartbeat(engine: Engine, job_id: str, worker_id: str, lease_seconds: float) -> bool:
    """Extend the lease; False when the job is no longer ours (it was taken over)."""
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        if job is None or job.lease_owner != worker_id or job.status != JobStatus.running:
            return False
        job.lease_expires_at = utcnow() + timedelta(seconds=lease_seconds)
        session.add(job)
        return True


def record_event(
    engine: Engine, job: Job, step: str, status: str, message: str = "", actor: str = ""
) -> None:
    with session_scope(engine) as session:
        session.add(JobEvent(job_id=job.id, vps_id=job.vps_id, step=step, status=status,
                             message=message[:2000], actor=actor))


def events(session: Session, job_id: str) -> list[JobEvent]:
    return list(session.exec(select(JobEvent).where(JobEvent.job_id == job_id).order_by(col(JobEvent.id))).all())
