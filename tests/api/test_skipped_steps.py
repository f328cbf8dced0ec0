"""A step with nothing to do this time is skipped without a transaction of its own: a live vCPU
resize (orchestrator/operations/resize.py) walks seven steps of which four have nothing to do when
live and nothing else changes; each is recorded done, "skipped: ...", in the transaction that
starts the next step that runs.  The fake hypervisor stands in for the guest;
tests/integration/test_lifecycle.py resizes a real one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from orchestrator.core.models import JobEvent
from tests.api.fakeworld import make_world

Groups = list[list[tuple[str, str, str]]]


@pytest.fixture
def step_writes() -> Iterator[Groups]:
    """The step events (step, status, message) each flush wrote, one list per flush."""
    groups: Groups = []

    def flushed(session: OrmSession, context: Any) -> None:
        marks = [(o.step, o.status, o.message) for o in session.new
                 if isinstance(o, JobEvent) and o.status in ("started", "done") and o.step]
        if marks:
            groups.append(sorted(marks, key=lambda m: (m[1] == "started", m[0])))

    event.listen(OrmSession, "after_flush", flushed)
    yield groups
    event.remove(OrmSession, "after_flush", flushed)


def test_a_live_vcpu_resize_records_its_seven_steps_in_four_transactions(tmp_path: Path,
                                                                         step_writes: Groups) -> None:
    world = make_world(tmp_path, "skips")
    step_writes.clear()
    asked = world.api.call("POST", f"/v1/vps/{world.vps_id}/resize", world.api.support,
                           json={"vcpus": 2, "reason": "skip test"})
    assert asked.status_code == 202, asked.text
    assert asked.json()["plan"]["mode"] == "live" and asked.json()["plan"]["reboot"] is False
    world.run()
    job_id = asked.json()["job"]["id"]
    assert world.api.call("GET", f"/v1/jobs/{job_id}", world.api.support).json()["status"] == "succeeded"
    memory = world.vps().memory_mib
    assert world.vps().vcpus == 2 and world.host.domains[world.vps_id].vcpus == 2

    # Sorted within a flush: the done marks by step name, the started one last.
    assert step_writes == [
        [("grow_disk", "done", "skipped: the disk keeps its size"),
         ("stop_if_cold", "done", "skipped: no reboot needed"),
         ("apply_live", "started", "")],
        [("apply_live", "done", f"live: 2 vCPU, {memory} MiB"),
         ("memory_settled", "done", "skipped: no live memory change"),
         ("record_size", "started", "")],
        [("record_size", "done", f"2 vCPU, {memory} MiB, {world.vps().disk_gib} GiB"),
         ("redefine", "started", "")],
        [("redefine", "done", step_writes[3][0][2]),
         ("start_if_cold", "done", "skipped: no reboot needed")],
    ]
    with Session(world.api.engine) as session:  # every step done, in the job's order
        done = session.exec(select(JobEvent.step).where(JobEvent.job_id == job_id, JobEvent.status == "done")
                            .order_by(col(JobEvent.id))).all()
    assert done == ["stop_if_cold", "grow_disk", "apply_live", "memory_settled", "record_size", "redefine",
                    "start_if_cold"]
