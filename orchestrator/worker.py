"""The worker: claims jobs, runs their operation's steps, keeps the lease alive, and decides
between retry, rollback and success."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from orchestrator import hooks, jobs
from orchestrator.clock import utcnow
from orchestrator.db import session_scope
from orchestrator.errors import TransientError, VpsctlError
from orchestrator.hosts import Drivers
from orchestrator.models import Job, JobEvent, JobStatus, Vps
from orchestrator.operations import OPERATIONS, Context
from orchestrator.operations.base import Deferred, LeaseLost, Operation
from orchestrator.settings import Settings

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, engine: Engine, settings: Settings, drivers: Drivers | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.drivers = drivers or Drivers()
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stopping = threading.Event()

    # --- loop ------------------------------------------------------------------------------
    def run_forever(self) -> None:
        log.info("worker %s started", self.worker_id)
        while not self.stopping.is_set():
            try:
                worked = self.run_once()
            except Exception:
                log.exception("worker loop error")
                worked = False
            if not worked and not self.stopping.is_set():
                jobs.wait_for_work(self.settings.job_poll_seconds)
        log.info("worker %s stopped", self.worker_id)

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name="vpsctl-worker", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopping.set()
        jobs.notify()

    def run_once(self) -> bool:
        job = jobs.claim(self.engine, self.worker_id, self.settings.job_lease_seconds)
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
            while not beating.wait(self.settings.job_heartbeat_seconds):
                try:
                    if not jobs.heartbeat(self.engine, job.id, self.worker_id, self.settings.job_lease_seconds):
                        lost.set()
                        return
                except Exception:
                    log.exception("heartbeat failed for job %s", job.id)

        def check_lease() -> None:
            if lost.is_set():
                raise LeaseLost(job.id)

        heart = threading.Thread(target=beat, name=f"heartbeat-{job.id[:8]}", daemon=True)
        heart.start()
        ctx = Context(self.engine, self.settings, self.drivers, job, self.worker_id, check_lease)
        try:
            if operation is None:
                self._fail(ctx, None, VpsctlError(f"unknown job kind {job.kind!r}"))
            elif job.attempts > job.max_attempts:
                self._fail(ctx, operation, VpsctlError(f"gave up after {job.max_attempts} attempts"))
            else:
                self._run(ctx, operation)
        except LeaseLost:
            log.warning("job %s was taken over by another worker", job.id)
        finally:
            beating.set()
            heart.join()

    def _run(self, ctx: Context, operation: type[Operation]) -> None:
        job = ctx.job
        if job.vps_id:
            try:
                operation.check_status(ctx.vps())
            except VpsctlError as exc:
                # Refused before doing anything (the job waited behind another that changed the
                # status): nothing to undo.
                self._fail(ctx, None, exc)
                return
        try:
            operation.begin(ctx)
            todo = [step for step in operation.steps if step.name not in job.steps_done]
            if todo:
                self._mark(job, [(todo[0].name, "started", "")])
            for index, step in enumerate(todo):
                message = step.run(ctx) or ""
                ctx.check_lease()
                # One transaction records this step done and the next one started.
                marks = [(step.name, "done", message)]
                if index + 1 < len(todo):
                    marks.append((todo[index + 1].name, "started", ""))
                self._mark(job, marks)
            ctx.check_lease()
            operation.succeed(ctx)
            self._queue_hook(ctx)
            self._finish(job, JobStatus.succeeded)
        except LeaseLost:
            raise
        except Deferred as exc:
            self._defer(job, exc)
        except TransientError as exc:
            if job.attempts < job.max_attempts:
                self._retry(job, exc)
            else:
                self._fail(ctx, operation, exc)
        except Exception as exc:  # any failure ends in a rollback: never a half-made VPS
            if not isinstance(exc, VpsctlError):
                log.exception("job %s step %s failed", job.id, job.step)
            self._fail(ctx, operation, exc)

    def _queue_hook(self, ctx: Context) -> None:
        """The Ansible hook of the event, if any (orchestrator/hooks.py): a hook that cannot even
        be queued is recorded in the job's events; the operation succeeded all the same."""
        try:
            hooks.queue_after(ctx)
        except Exception as exc:
            log.exception("queueing the hook of job %s failed", ctx.job.id)
            jobs.record_event(self.engine, ctx.job, "hook", "failed", f"hook not queued: {exc}", self.worker_id)

    def _mark(self, job: Job, marks: list[tuple[str, str, str]]) -> None:
        """Record (step, status, message) events; 'done' steps join the job's progress."""
        with session_scope(self.engine) as session:
            row = session.get(Job, job.id)
            if row is None or row.lease_owner != self.worker_id:
                raise LeaseLost(job.id)
            for step, status, message in marks:
                row.step = step
                if status == "done" and step not in row.steps_done:
                    row.steps_done = [*row.steps_done, step]
                session.add(JobEvent(job_id=job.id, vps_id=job.vps_id, step=step, status=status,
                                     message=message[:2000], actor=self.worker_id))
            session.add(row)
            job.steps_done = list(row.steps_done)
            job.step = row.step

    def _requeue(self, job: Job, status: str, message: str, *, not_before: datetime, deferred: bool) -> None:
        """Give the job back to the queue until ``not_before``: a retry (counted as an attempt) or
        a deadline job that looked at its deadline and waits again (not counted, not started)."""
        with session_scope(self.engine) as session:
            row = session.get(Job, job.id)
            if row is None:
                return
            row.status = JobStatus.queued
            row.lease_owner = None
            row.lease_expires_at = None
            row.not_before = not_before
            if deferred:
                row.attempts = max(0, row.attempts - 1)
                row.started_at = None
                row.scheduled_at = not_before
                if job.vps_id:
                    vps = session.get(Vps, job.vps_id)
                    if vps is not None and vps.task == job.kind:
                        vps.task = None
                        session.add(vps)
            session.add(row)
            session.add(JobEvent(job_id=job.id, vps_id=job.vps_id, step=job.step or "", status=status,
                                 message=message[:2000], actor=self.worker_id))

    def _retry(self, job: Job, error: Exception) -> None:
        delay = min(2 ** job.attempts, 60)
        self._requeue(job, "retry", f"{error} (retrying in {delay} s)",
                      not_before=utcnow() + timedelta(seconds=delay), deferred=False)

    def _defer(self, job: Job, deferred: Deferred) -> None:
        """Put a deadline job back to wait for its (recomputed) time."""
        self._requeue(job, "deferred", f"{deferred.reason}; due {deferred.until.isoformat()}",
                      not_before=deferred.until, deferred=True)

    def _fail(self, ctx: Context, operation: type[Operation] | None, error: Exception) -> None:
        job = ctx.job
        jobs.record_event(self.engine, job, job.step or "", "failed", str(error), self.worker_id)
        if operation is not None:
            try:
                operation.rollback(ctx, error)
                jobs.record_event(self.engine, job, "rollback", "done", "undone", self.worker_id)
            except Exception as exc:
                log.exception("rollback of job %s failed", job.id)
                jobs.record_event(self.engine, job, "rollback", "failed", str(exc), self.worker_id)
        self._finish(job, JobStatus.failed, str(error))

    def _finish(self, job: Job, status: JobStatus, error: str | None = None) -> None:
        with session_scope(self.engine) as session:
            row = session.get(Job, job.id)
            if row is None:
                return
            row.status = status
            row.error = error[:4000] if error else None
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
                                      message=error or "", actor=self.worker_id))
