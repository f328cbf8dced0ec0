"""A worker runs several jobs at once (``VPSCTL_WORKER_SLOTS``), never two of one VPS and a VPS's
jobs in the order asked; a job waiting for its guest gives its slot back and is taken up again
under the same deadline.  Real worker threads, on SQLite and on the real PostgreSQL.

The operations here are the test's own: their steps meet at a barrier (only jobs running at the
same time can pass it) or wait for what another job does (only a slot given back lets that job
run)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest
from sqlmodel import Session, select

import orchestrator.workflows  # noqa: F401  (a worker needs the contract's gates)
from orchestrator.core.db import make_engine
from orchestrator.core.models import Job, JobEvent, JobStatus, Vps, VpsStatus
from orchestrator.core.settings import Settings
from orchestrator.engine import jobs
from orchestrator.engine.context import Context
from orchestrator.engine.operation import OPERATIONS, Operation, Step, wait_until
from orchestrator.engine.worker import Worker
from tests.db.records import running_vps

VPS_COUNT = 4


@contextmanager
def registered(*operations: type[Operation[Any]]) -> Iterator[None]:
    for operation in operations:
        OPERATIONS[operation.kind] = operation
    try:
        yield
    finally:
        for operation in operations:
            OPERATIONS.pop(operation.kind, None)


def fleet(engine: Any, count: int) -> list[str]:
    """``count`` running VPS of one customer on one host."""
    with Session(engine) as session:
        first = running_vps(session)
        ids = [first.id]
        for n in range(1, count):
            vps = Vps(name=f"web{n}", customer_id=first.customer_id, host_id=first.host_id, image="tiny",
                      vcpus=1, memory_mib=256, disk_gib=2, status=VpsStatus.running)
            session.add(vps)
            session.flush()
            ids.append(vps.id)
        session.commit()
        return ids


def ask(engine: Any, vps_id: str, kind: str) -> str:
    with Session(engine) as session:
        job = jobs.enqueue(session, kind, session.get(Vps, vps_id), {}, "test", 1, 3)
        session.commit()
        return job.id


def run_until(engine: Any, settings: Settings, slots: int, done: Callable[[Session], bool],
              timeout: float = 60) -> None:
    """A worker with ``slots`` slots on its own threads until ``done`` holds (bounded)."""
    worker = Worker(engine, settings, slots=slots)
    thread = worker.start_thread()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with Session(engine) as session:
                if done(session):
                    return
            time.sleep(0.05)
        raise AssertionError(f"the jobs did not end within {timeout} s")
    finally:
        worker.stop()
        thread.join(timeout=30)
        worker.drivers.close()


def ended(job_ids: list[str]) -> Callable[[Session], bool]:
    return lambda s: all(s.get(Job, j).status in (JobStatus.succeeded, JobStatus.failed) for j in job_ids)


def events_of(engine: Any, job_id: str) -> list[JobEvent]:
    with Session(engine) as session:
        return list(session.exec(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)).all())


class _Meet(Operation):
    """Its step waits at a barrier for VPS_COUNT jobs to be inside the step at once."""

    kind = "test-meet"
    allowed_from = frozenset({VpsStatus.running})
    barrier: ClassVar[threading.Barrier]
    lock = threading.Lock()
    inside: ClassVar[list[str]] = []  # VPS ids of the jobs inside the step right now
    seen: ClassVar[list[list[str]]] = []  # what was inside each time a job came in

    @staticmethod
    def meet(ctx: Context) -> str:
        with _Meet.lock:
            _Meet.inside.append(ctx.job.vps_id or "")
            _Meet.seen.append(list(_Meet.inside))
        try:
            _Meet.barrier.wait()
            time.sleep(0.2)
        finally:
            with _Meet.lock:
                _Meet.inside.remove(ctx.job.vps_id or "")
        return "met"

    steps = (Step("meet", meet),)


def test_jobs_of_different_vps_run_at_once_those_of_one_vps_one_after_the_other(settings: Settings) -> None:
    engine = make_engine(settings)
    _Meet.barrier = threading.Barrier(VPS_COUNT, timeout=20)
    _Meet.inside, _Meet.seen = [], []
    vps_ids = fleet(engine, VPS_COUNT)
    with registered(_Meet):
        first = [ask(engine, v, _Meet.kind) for v in vps_ids]
        # A second job of the first VPS, asked at once: it must wait for that VPS's first job.
        # (Its own barrier round is met by three more jobs, one of each other VPS.)
        second = [ask(engine, v, _Meet.kind) for v in vps_ids]
        run_until(engine, settings, VPS_COUNT, ended(first + second))
    with Session(engine) as session:
        rows = {j: session.get(Job, j) for j in first + second}
        # Every job passed the barrier: four were inside the step at the same moment.
        assert [rows[j].status for j in first + second] == [JobStatus.succeeded] * (2 * VPS_COUNT)
        for before, after in zip(first, second, strict=True):
            assert rows[before].finished_at <= rows[after].started_at  # one VPS: in the order asked
    # Never two jobs of one VPS inside the step at once.
    assert all(len(inside) == len(set(inside)) for inside in _Meet.seen)
    assert max(len(inside) for inside in _Meet.seen) == VPS_COUNT
    engine.dispose()


def test_one_slot_runs_one_job_at_a_time(settings: Settings) -> None:
    """The barrier above is a real test of running at once: with one slot nobody passes it."""
    engine = make_engine(settings)
    _Meet.barrier = threading.Barrier(2, timeout=1.5)
    _Meet.inside, _Meet.seen = [], []
    vps_ids = fleet(engine, 2)
    with registered(_Meet):
        asked = [ask(engine, v, _Meet.kind) for v in vps_ids]
        run_until(engine, settings.replace(job_max_attempts=1), 1, ended(asked))
    with Session(engine) as session:
        assert [session.get(Job, j).status for j in asked] == [JobStatus.failed, JobStatus.failed]
    assert max(len(inside) for inside in _Meet.seen) == 1
    engine.dispose()


class _Guest(Operation):
    """Waits for a 'guest' that only the other operation's job brings up."""

    kind = "test-guest"
    allowed_from = frozenset({VpsStatus.running})
    up = threading.Event()
    timeout: ClassVar[float] = 20.0

    @staticmethod
    def wait(ctx: Context) -> str:
        return wait_until(ctx, _Guest.timeout, "the test guest",
                          lambda: "the guest is up" if _Guest.up.is_set() else None)

    steps = (Step("prepare", lambda ctx: "prepared"), Step("wait", wait))


class _BringUp(Operation):
    kind = "test-bring-up"
    allowed_from = frozenset({VpsStatus.running})
    steps = (Step("bring_up", lambda ctx: _Guest.up.set() or "brought up"),)


def quick_waits(settings: Settings) -> Settings:
    return settings.replace(job_wait_hold_seconds=0.3, job_wait_poll_seconds=0.2)


def test_a_waiting_job_gives_its_slot_back_and_goes_on_where_it_waited(settings: Settings) -> None:
    engine = make_engine(settings)
    _Guest.up.clear()
    _Guest.timeout = 20.0
    waiting_vps, other_vps = fleet(engine, 2)
    with registered(_Guest, _BringUp):
        waiter = ask(engine, waiting_vps, _Guest.kind)
        time.sleep(0.01)  # asked first: the only slot takes it first
        bringer = ask(engine, other_vps, _BringUp.kind)
        # One slot.  The waiter can only end if the slot ran the other job while it waited.
        run_until(engine, quick_waits(settings), 1, ended([waiter, bringer]))
    with Session(engine) as session:
        wait_job, bring_job = session.get(Job, waiter), session.get(Job, bringer)
        assert wait_job.status == JobStatus.succeeded and bring_job.status == JobStatus.succeeded
        assert bring_job.started_at < wait_job.finished_at and bring_job.finished_at < wait_job.finished_at
        assert wait_job.attempts == 1  # taken up again, not tried again
        assert wait_job.steps_done == ["prepare", "wait"]
        assert wait_job.params[jobs.WAITS] == {}  # the wait is over
    log = [(e.step, e.status) for e in events_of(engine, waiter)]
    assert log.count(("claimed", "info")) == 1  # one claim recorded, not one per look
    assert log.count(("wait", "waiting")) == 1  # said once that it waits, and for what
    assert log.count(("wait", "started")) == 1 and log.count(("prepare", "done")) == 1  # not run again
    assert ("wait", "done") in log
    engine.dispose()


def test_a_wait_keeps_its_deadline_across_slots(settings: Settings) -> None:
    engine = make_engine(settings)
    _Guest.up.clear()
    _Guest.timeout = 1.5  # nothing brings the guest up
    [vps_id] = fleet(engine, 1)
    with registered(_Guest):
        waiter = ask(engine, vps_id, _Guest.kind)
        run_until(engine, quick_waits(settings), 2, ended([waiter]), timeout=30)
    with Session(engine) as session:
        job = session.get(Job, waiter)
        assert job.status == JobStatus.failed
        assert job.error == "the test guest did not happen within 2 s"
        assert job.attempts == 1 and job.params[jobs.WAITS] == {}
    log = [(e.step, e.status) for e in events_of(engine, waiter)]
    # It gave its slot back (0.3 s of holding in 1.5 s) and was taken up again before the deadline.
    assert ("wait", "waiting") in log and log.count(("claimed", "info")) == 1
    engine.dispose()


@pytest.mark.parametrize("slots", [0, 65])
def test_worker_slots_are_bounded(slots: int, settings: Settings) -> None:
    with pytest.raises(ValueError, match="worker_slots"):
        settings.replace(worker_slots=slots)
