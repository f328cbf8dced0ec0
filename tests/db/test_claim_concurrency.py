"""Several worker processes claiming from one database: every job is run once, never two jobs
of one VPS at a time, and a VPS's jobs in the order they were asked.  On SQLite (one machine)
and on a real PostgreSQL (``SELECT ... FOR UPDATE SKIP LOCKED``) when scripts/test.sh provides
one in $VPSCTL_TEST_POSTGRES_URL.

The processes are released together (a barrier), and each holds the first job it claims until
every other holds one too (a second barrier, which passes only when all of them hold a job at
the same moment): the queue is seen giving out jobs to all of them at once, each of another VPS,
not one process after another."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, func, select

from orchestrator.core.clock import utcnow
from orchestrator.core.db import make_engine, session_scope
from orchestrator.core.models import Customer, Host, Job, JobStatus, Vps
from orchestrator.core.settings import Settings
from orchestrator.engine.jobs import claim
from tests import contention

VPS_COUNT, JOBS_PER_VPS, WORKERS = 12, 4, 4


def work(url: str, state_dir: str, name: str, barrier: Any, out: Any) -> None:
    """One worker process: claim, check nobody else runs a job of that VPS, finish, repeat until
    no job is left; the first job is held until every process holds one."""
    engine = make_engine(Settings(state_dir=Path(state_dir), database_url=url))
    barrier.wait(timeout=120)  # every process ready: they claim together
    first = True
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # a queue that never empties fails the test, not the run
        job = claim(engine, name, lease_seconds=60)
        if job is None:
            with Session(engine) as session:
                left = session.exec(select(func.count()).select_from(Job).where(
                    col(Job.status).in_((JobStatus.queued, JobStatus.running)))).one()
            if not left:
                break
            time.sleep(0.01)
            continue
        with Session(engine) as session:
            running = session.exec(select(func.count()).select_from(Job).where(
                Job.vps_id == job.vps_id, Job.status == JobStatus.running)).one()
        if first:  # passes once every process holds a job: WORKERS jobs running at once
            barrier.wait(timeout=60)
            first = False
        time.sleep(0.005)
        with session_scope(engine) as session:
            row = session.get(Job, job.id)
            row.status, row.finished_at, row.lease_owner = JobStatus.succeeded, utcnow(), None
            session.add(row)
        out.put((job.id, name, running))
    engine.dispose()


def test_workers_share_the_queue_safely(settings: Settings, tmp_path: Path) -> None:
    engine = make_engine(settings)
    order: dict[str, list[str]] = {}
    with session_scope(engine) as session:
        customer, host = Customer(name="c"), Host(name="h", uri="test:///default")
        session.add_all([customer, host])
        session.flush()
        base = utcnow()
        for v in range(VPS_COUNT):
            vps = Vps(name=f"v{v}", customer_id=customer.id, host_id=host.id, image="tiny", vcpus=1,
                      memory_mib=128, disk_gib=1)
            session.add(vps)
            session.flush()
            for n in range(JOBS_PER_VPS):
                job = Job(vps_id=vps.id, kind="noop", created_at=base + timedelta(milliseconds=v + n * 100))
                session.add(job)
                session.flush()
                order.setdefault(vps.id, []).append(job.id)
    engine.dispose()

    context = contention.processes()
    out, barrier = context.Queue(), context.Barrier(WORKERS)
    procs = [context.Process(target=work, args=(settings.database, str(tmp_path), f"w{i}", barrier, out),
                             daemon=True) for i in range(WORKERS)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=120) for _ in range(VPS_COUNT * JOBS_PER_VPS)]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0

    claimed = [job_id for job_id, _worker, _running in results]
    assert sorted(claimed) == sorted(j for jobs in order.values() for j in jobs)  # each once
    assert all(running == 1 for _job, _worker, running in results)  # never two of a VPS at once
    # Every process held a job at the same moment (the second barrier passed), each of another VPS.
    firsts = {}
    for job_id, worker, _running in results:
        firsts.setdefault(worker, job_id)
    assert len(firsts) == WORKERS
    vps_of = {job_id: vps_id for vps_id, jobs in order.items() for job_id in jobs}
    assert len({vps_of[job_id] for job_id in firsts.values()}) == WORKERS
    engine = make_engine(settings)
    with Session(engine) as session:
        for jobs in order.values():  # a VPS's jobs ran in the order asked
            rows = [session.get(Job, j) for j in jobs]
            for earlier, later in itertools.pairwise(rows):
                assert earlier.finished_at <= later.started_at
    engine.dispose()
