"""A worker started on a machine takes back at once the jobs of a worker process of the same
machine that is gone (orchestrator/engine/jobs.end_leases_of_dead_workers); a process that may
still run, and any worker of another machine, keep their leases until they expire."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

from sqlmodel import Session, col, select

from orchestrator.core.clock import utcnow
from orchestrator.core.db import make_engine
from orchestrator.core.models import Job, JobEvent, JobStatus
from orchestrator.core.settings import Settings
from orchestrator.engine import jobs


def a_gone_pid() -> int:
    """The number of a process that ran here and ended (and was reaped)."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    return int(child.stdout)


def test_only_the_jobs_of_gone_processes_of_this_machine_are_taken_back_at_once(settings: Settings) -> None:
    import os

    engine = make_engine(settings)
    here = jobs.this_machine()
    owners = {
        "gone here": f"{here}:{a_gone_pid()}:abc123/0",
        "alive here": f"{here}:{os.getpid()}:abc123/1",  # this very process
        "elsewhere": f"otherhost@0123456789ab:{a_gone_pid()}:abc123/0",  # its fate unknown from here
        "same name, other boot": f"{here.split('@')[0]}@ffffffffffff:{a_gone_pid()}:abc123/0",
    }
    expires = utcnow() + timedelta(minutes=10)
    ids = {}
    with Session(engine) as session:
        for name, owner in owners.items():
            job = Job(kind="reboot", params={}, requested_by="test", steps_total=1, max_attempts=3, attempts=1,
                      status=JobStatus.running, lease_owner=owner, lease_expires_at=expires, not_before=utcnow())
            session.add(job)
            session.flush()
            ids[name] = job.id
        session.commit()

    released = jobs.end_leases_of_dead_workers(engine, f"{here}:{os.getpid()}:newone")
    assert released == [ids["gone here"]]
    with Session(engine) as session:
        leases = {name: session.get(Job, job_id).lease_expires_at for name, job_id in ids.items()}  # type: ignore[union-attr]
        said = session.exec(select(JobEvent.message).where(col(JobEvent.job_id) == ids["gone here"])).all()
    assert leases["gone here"] is not None and leases["gone here"] < utcnow()
    assert all(leases[name] == expires for name in ("alive here", "elsewhere", "same name, other boot"))
    assert any("is gone from this machine" in m for m in said), said
    claimed = jobs.claim(engine, f"{here}:{os.getpid()}:newone/0", 30)  # the next claim takes it
    assert claimed is not None and claimed.id == ids["gone here"] and claimed.attempts == 2
