"""The worker: claims jobs, checks them again, runs their operation's steps, keeps the lease
alive, and decides between retry, rollback and success; the workflows hear each turn
(orchestrator/engine/events)."""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from orchestrator.compute.hosts import Drivers
from orchestrator.core import faults
from orchestrator.core.clock import utcnow
from orchestrator.core.db import database_unavailable, session_scope, unavailable_detail
from orchestrator.core.errors import (
    Conflict,
    ContractRefusal,
    Forbidden,
    InsufficientCapacity,
    InvalidRequest,
    NotFound,
    TransientError,
    VpsctlError,
)
from orchestrator.core.models import Job, JobEvent, JobStatus, Vps
from orchestrator.core.settings import Settings
from orchestrator.engine import events, jobs, status
from orchestrator.engine.context import PLAN, Context, Request
from orchestrator.engine.operation import OPERATIONS, Deferred, LeaseLost, Operation, Waiting, requester

log = logging.getLogger(__name__)

# The package whose import subscribes the contract's gates to the operations' events: a worker
# without them would run an erasure before its date.
WORKFLOWS = "orchestrator.workflows"


CLIENT_FACING = (InvalidRequest, NotFound, Forbidden, Conflict, InsufficientCapacity, ContractRefusal)
NOT_COMPLETED = "the operation did not complete; the provider's staff have the details"
DATABASE_RETRY_SECONDS = 2  # a job whose step met the database down is taken up again after this


def in_client_terms(error: Exception) -> str:
    """What a client may read of a failure: a refusal in its own words (they are written for
    whoever asked), anything else as a plain fact (the error may name hosts, paths, workers)."""
    if isinstance(error, CLIENT_FACING):
        return error.detail
    return NOT_COMPLETED


def recheck(ctx: Context, operation: type[Operation[Any]]) -> None:
    """When a job starts, the request's checks again with the VPS as it is now: who asked may
    still ask, the status allows it, and the operation's check holds; its plan replaces the one
    of the request (an event says so when it differs).  Raises to refuse."""
    job = ctx.job
    with session_scope(ctx.engine) as session:
        vps = session.get(Vps, job.vps_id) if job.vps_id else None
        req = Request(session, ctx.settings, requester(job, vps), vps, cause=job.cause, at_start=True)
        operation.authorize(req)
        if vps is not None:
            operation.check_status(vps)
        plan = operation.check(req, operation.read_params(job.params))
        if plan is None:
            return
        before, now = job.params.get(PLAN), plan.model_dump(mode="json")
        if now == before:
            return
        row = session.get(Job, job.id)
        if row is not None:
            row.params = {**row.params, PLAN: now}
            session.add(row)
            job.params = dict(row.params)
        if before is not None:
            session.add(JobEvent(job_id=job.id, vps_id=job.vps_id, step="plan", status="info", actor=ctx.worker_id,
                                 message=f"plan changed since the request: {now}"))


def admit(ctx: Context, operation: type[Operation[Any]]) -> None:
    """Everything a job passes before its first step: ``recheck``, then the workflows' gates
    (``started``: they may refuse it or make it wait)."""
    recheck(ctx, operation)
    events.started(ctx)


def conclude(ctx: Context, operation: type[Operation[Any]]) -> None:
    """After the last step: the operation's own ending, then the workflows hear it succeeded."""
    operation.succeed(ctx)
    events.succeeded(ctx)


def abandon(ctx: Context, operation: type[Operation[Any]], error: Exception, *, undo: bool = True) -> None:
    """After a failure for good: undo what the steps did (not when nothing was done), then the
    workflows hear it failed.  Neither may stop the job from being recorded failed."""
    job = ctx.job
    if undo:
        try:
            faults.point("during", "rollback")
            operation.rollback(ctx, error)
            jobs.record_event(ctx.engine, job, "rollback", "done", "undone", ctx.worker_id)
        except Exception as exc:
            log.exception("rollback of job %s failed", job.id)
            jobs.record_event(ctx.engine, job, "rollback", "failed", str(exc), ctx.worker_id)
    try:
        events.failed(ctx, error)
    except Exception as exc:
        log.exception("a workflow did not hear that job %s failed", job.id)
        jobs.record_event(ctx.engine, job, "failed", "failed", f"a workflow did not hear the failure: {exc}",
                          ctx.worker_id)


class Worker:
    """Runs up to ``slots`` jobs at once (``VPSCTL_WORKER_SLOTS``): one thread claims, a pool
    runs.  Each job is leased to its slot (``<worker id>/<slot>``), so a job whose lease this
    process lost while still running it can be claimed again here without two slots believing
    they own it; the queue never gives out two jobs of one VPS at once, nor a VPS's jobs out of
    the order they were asked in, whichever processes ask (orchestrator/engine/jobs.claim)."""

    def __init__(self, engine: Engine, settings: Settings, drivers: Drivers | None = None,
                 slots: int | None = None) -> None:
        if WORKFLOWS not in sys.modules:
            raise RuntimeError(f"import {WORKFLOWS} before starting a worker: it holds the contract's gates")
        self.engine = engine
        self.settings = settings
        self.drivers = drivers or Drivers()
        self.slots = slots or settings.jobs.worker_slots
        self.worker_id = f"{jobs.this_machine()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stopping = threading.Event()
        faults.configure(settings.jobs.fault_kill_at, settings.jobs.fault_log)

    # --- loop ------------------------------------------------------------------------------
    def run_forever(self) -> None:
        log.info("worker %s started with %d slots", self.worker_id, self.slots)
        try:
            # A worker restarted after a crash takes its predecessor's jobs back now, not once
            # their leases run out.
            jobs.end_leases_of_dead_workers(self.engine, self.worker_id)
        except Exception:
            log.exception("could not look for jobs of dead workers")
        # What it sees of the queue, for operators (GET /metrics): when it last found nothing
        # ready, and the job it then waits for.
        lookout = status.Lookout(self.engine, self.worker_id, self.settings.jobs.heartbeat_seconds)
        self._record(lookout.start)
        free: queue.SimpleQueue[int] = queue.SimpleQueue()
        for slot in range(self.slots):
            free.put(slot)
        with ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="vpsctl-job") as pool:
            while not self.stopping.is_set():
                try:
                    slot = free.get(timeout=self.settings.jobs.poll_seconds)
                except queue.Empty:  # every slot busy
                    continue
                try:
                    job = jobs.claim(self.engine, self.owner(slot), self.settings.jobs.lease_seconds)
                except Exception as exc:
                    if database_unavailable(exc):  # a database restarting: claim again once it answers
                        log.warning("worker %s: claiming a job: the database does not answer (%s)", self.worker_id,
                                    unavailable_detail(exc))
                    else:
                        log.exception("worker loop error")
                    job = None
                else:
                    self._record(lookout.looked, job is not None)
                if job is None:
                    free.put(slot)
                    if not self.stopping.is_set():
                        jobs.wait_for_work(self.settings.jobs.poll_seconds)
                    continue
                pool.submit(self._in_slot, job, slot, free)
        self._record(lookout.stop)
        log.info("worker %s stopped", self.worker_id)

    @staticmethod
    def _record(write: Any, *args: Any) -> None:
        """A record for operators never stops the worker (the database may be away a moment)."""
        try:
            write(*args)
        except Exception:
            log.exception("worker status not recorded")

    def _in_slot(self, job: Job, slot: int, free: queue.SimpleQueue[int]) -> None:
        try:
            self.execute(job)
        except Exception:
            log.exception("job %s escaped its worker slot", job.id)
        finally:
            free.put(slot)
            jobs.notify()  # a slot is free: the claiming thread may take the next job now

    def owner(self, slot: int) -> str:
        """The lease owner of what ``slot`` runs."""
        return f"{self.worker_id}/{slot}"

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name="vpsctl-worker", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopping.set()
        jobs.notify()

    def run_once(self) -> bool:
        """Claim one job and run it here, to its end or its next wait (tests, ``vpsctl worker
        --once``)."""
        job = jobs.claim(self.engine, self.owner(0), self.settings.jobs.lease_seconds)
        if job is None:
            return False
        self.execute(job)
        return True

    # --- one job ---------------------------------------------------------------------------
    def execute(self, job: Job) -> None:
        operation = OPERATIONS.get(job.kind)
        lost = threading.Event()
        beating = threading.Event()

        def beat() -> None:
            while not beating.wait(self.settings.jobs.heartbeat_seconds):
                try:
                    if not jobs.heartbeat(self.engine, job.id, self._owner(job), self.settings.jobs.lease_seconds):
                        lost.set()
                        return
                except Exception as exc:
                    if database_unavailable(exc):  # the lease may run out meanwhile: see _database_lost
                        log.warning("heartbeat of job %s: the database does not answer (%s)", job.id,
                                    unavailable_detail(exc))
                    else:
                        log.exception("heartbeat failed for job %s", job.id)

        def check_lease() -> None:
            if lost.is_set():
                raise LeaseLost(job.id)

        heart = threading.Thread(target=beat, name=f"heartbeat-{job.id[:8]}", daemon=True)
        heart.start()
        ctx = Context(self.engine, self.settings, self.drivers, job, self._owner(job), check_lease)
        try:
            with faults.running(job.kind, job.id, job.attempts):
                self._execute(ctx, operation)
        except LeaseLost:
            log.warning("job %s was taken over by another worker", job.id)
        finally:
            beating.set()
            heart.join()

    def _execute(self, ctx: Context, operation: type[Operation[Any]] | None) -> None:
        job = ctx.job
        if operation is None:
            self._fail(ctx, None, VpsctlError(f"unknown job kind {job.kind!r}"))
        elif job.attempts > job.max_attempts:
            self._fail(ctx, operation, VpsctlError(f"gave up after {job.max_attempts} attempts"))
        else:
            self._run(ctx, operation)

    def _owner(self, job: Job) -> str:
        """Who holds ``job``'s lease in this process (the slot that claimed it)."""
        return job.lease_owner or self.owner(0)

    def _run(self, ctx: Context, operation: type[Operation[Any]]) -> None:
        job = ctx.job
        # Taken up again after giving its slot back while waiting for its guest: it goes on at
        # the step that waits, with nothing checked or announced again.
        waiting = bool(job.params.get(jobs.WAITS))
        fresh = not job.steps_done and not waiting
        if fresh:
            try:
                recheck(ctx, operation)
            except VpsctlError as exc:
                # Refused before doing anything (the job waited behind another that changed the
                # status, or its requester's rights): nothing to undo.
                self._fail(ctx, None, exc)
                return
        try:
            if fresh:
                events.started(ctx)
            operation.begin(ctx)
            todo = [step for step in operation.steps if step.name not in job.steps_done]
            # One transaction records a step done, the steps skipped after it done too, and the
            # next step that runs started; the first step's start unless the job comes back to
            # the step it waits in.
            marks: list[tuple[str, str, str]] = []
            announce = not waiting
            for step in todo:
                reason = step.skip(ctx) if step.skip is not None else None
                if reason is not None:
                    marks.append((step.name, "done", f"skipped: {reason}"))
                    continue
                if announce or marks:
                    self._mark(job, [*marks, (step.name, "started", "")])
                marks, announce = [], False
                faults.point("before", step.name)
                message = step.run(ctx) or ""
                faults.point("after", step.name)
                ctx.check_lease()
                marks = [(step.name, "done", message)]
            if marks:
                self._mark(job, marks)
            ctx.check_lease()
            faults.point("before", "succeed")
            conclude(ctx, operation)
            self._finish(job, JobStatus.succeeded)
        except LeaseLost:
            raise
        except Waiting as exc:
            self._wait(job, exc)
        except Deferred as exc:
            self._defer(job, exc)
        except TransientError as exc:
            if job.attempts < job.max_attempts:
                self._retry(job, exc)
            else:
                self._fail(ctx, operation, exc)
        except Exception as exc:  # any failure ends in a rollback: never a half-made VPS
            if database_unavailable(exc):
                self._database_lost(job, exc)
                return
            if not isinstance(exc, VpsctlError):
                log.exception("job %s step %s failed", job.id, job.step)
            self._fail(ctx, operation, exc)

    def _mark(self, job: Job, marks: list[tuple[str, str, str]]) -> None:
        """Record (step, status, message) events; 'done' steps join the job's progress."""
        with session_scope(self.engine) as session:
            row = session.get(Job, job.id)
            if row is None or row.lease_owner != self._owner(job):
                raise LeaseLost(job.id)
            for step, status, message in marks:
                row.step = step
                if status == "done" and step not in row.steps_done:
                    row.steps_done = [*row.steps_done, step]
                session.add(JobEvent(job_id=job.id, vps_id=job.vps_id, step=step, status=status,
                                     message=message[:2000], actor=self._owner(job)))
            session.add(row)
            job.steps_done = list(row.steps_done)
            job.step = row.step

    def _requeue(self, job: Job, status: str, message: str, *, not_before: datetime, deferred: bool,
                 counted: bool = True) -> None:
        """Give the job back to the queue until ``not_before``: a retry (counted as an attempt,
        unless ``counted`` is false) or a deadline job that looked at its deadline and waits again
        (not counted, not started)."""
        with session_scope(self.engine) as session:
            row = session.get(Job, job.id)
            if row is None:
                return
            row.status = JobStatus.queued
            row.lease_owner = None
            row.lease_expires_at = None
            row.not_before = not_before
            if deferred or not counted:
                row.attempts = max(0, row.attempts - 1)
            if deferred:  # not started: a deadline job again, holding up nothing until it is due
                row.started_at = None
                row.scheduled_at = not_before
                if job.vps_id:
                    vps = session.get(Vps, job.vps_id)
                    if vps is not None and vps.task == job.kind:
                        vps.task = None
                        session.add(vps)
            session.add(row)
            session.add(JobEvent(job_id=job.id, vps_id=job.vps_id, step=job.step or "", status=status,
                                 message=message[:2000], actor=self._owner(job)))

    def _wait(self, job: Job, waiting: Waiting) -> None:
        """Give the slot back: the job is queued again at the step that waits, to be taken up from
        ``waiting.until`` by any slot of any worker; its VPS's later jobs still wait behind it.
        The first time a step gives its slot back, an event says what it waits for."""
        with session_scope(self.engine) as session:
            row = session.get(Job, job.id)
            if row is None or row.lease_owner != self._owner(job):
                raise LeaseLost(job.id)
            step = job.step or waiting.what
            waits = dict(row.params.get(jobs.WAITS) or {})
            record = dict(waits.get(step) or {})
            record["yields"] = int(record.get("yields") or 0) + 1
            waits[step] = record
            row.params = {**row.params, jobs.WAITS: waits}
            row.status = JobStatus.queued
            row.lease_owner = None
            row.lease_expires_at = None
            row.not_before = waiting.until
            row.attempts = max(0, row.attempts - 1)  # taken up again, not tried again
            session.add(row)
            if record["yields"] == 1:
                session.add(JobEvent(job_id=job.id, vps_id=job.vps_id, step=step, status="waiting",
                                     message=f"{waiting}; the worker slot goes to other jobs meanwhile",
                                     actor=self._owner(job)))

    def _database_lost(self, job: Job, error: Exception) -> None:
        """The database stopped answering while the job ran (a step's record, its own writes): not a
        failure of the operation, never a rollback.  The job is queued again at its step, the
        attempt not counted; when even that cannot be written, it keeps its lease, which
        expires, and a worker takes it up again at its first step not recorded done (each step
        looks at the actual state before acting: one that had ended runs again harmlessly)."""
        detail = unavailable_detail(error)
        try:  # not an attempt of the operation's: the database's outage must not use them up
            again_at = utcnow() + timedelta(seconds=DATABASE_RETRY_SECONDS)
            self._requeue(job, "retry", f"the database did not answer ({detail}); trying again in "
                          f"{DATABASE_RETRY_SECONDS} s", not_before=again_at, deferred=False, counted=False)
        except Exception as again:
            if not database_unavailable(again):
                raise
            log.warning("job %s (%s, step %s): the database does not answer (%s); taken up again once it "
                        "answers and the job's lease has expired", job.id, job.kind, job.step, detail)
            return
        log.warning("job %s (%s, step %s): the database did not answer (%s); queued again", job.id, job.kind,
                    job.step, detail)

    def _retry(self, job: Job, error: Exception) -> None:
        delay = min(2 ** job.attempts, 60)
        self._requeue(job, "retry", f"{error} (retrying in {delay} s)",
                      not_before=utcnow() + timedelta(seconds=delay), deferred=False)

    def _defer(self, job: Job, deferred: Deferred) -> None:
        """Put a deadline job back to wait for its (recomputed) time."""
        self._requeue(job, "deferred", f"{deferred.reason}; due {deferred.until.isoformat()}",
                      not_before=deferred.until, deferred=True)

    def _fail(self, ctx: Context, operation: type[Operation[Any]] | None, error: Exception) -> None:
        """Record the failure, undo what the steps did (``operation`` None: nothing was done),
        then let the workflows hear it."""
        job = ctx.job
        jobs.record_event(self.engine, job, job.step or "", "failed", str(error), self._owner(job))
        if job.kind in OPERATIONS:
            abandon(ctx, OPERATIONS[job.kind], error, undo=operation is not None)
        self._finish(job, JobStatus.failed, str(error), in_client_terms(error))

    def _finish(self, job: Job, status: JobStatus, error: str | None = None, public_error: str | None = None) -> None:
        with session_scope(self.engine) as session:
            row = session.get(Job, job.id)
            if row is None:
                return
            row.status = status
            row.error = error[:4000] if error else None
            row.public_error = public_error[:2000] if public_error else None
            row.finished_at = utcnow()
            row.lease_owner = None
            row.lease_expires_at = None
            session.add(row)
            if job.vps_id:
                vps = session.get(Vps, job.vps_id)
                if vps is not None and vps.task == job.kind:
                    vps.task = None
                    vps.updated_at = utcnow()
                    session.add(vps)
            session.add(JobEvent(job_id=job.id, vps_id=job.vps_id, step="finished", status=status.value,
                                 message=error or "", actor=self._owner(job)))
