"""A live memory change ends when the guest holds the new size, or says plainly that it does not
yet (a guest without a balloon driver, or too busy to give memory back).  The guest's side here is
a fake hypervisor whose balloon moves, or does not; tests/integration/test_lifecycle.py reads the
memory from inside a real guest the moment the job ends."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, select

from orchestrator.core.models import JobEvent
from tests.api.fakeworld import World, make_world
from tests.fakes import FakeDriver, FakeHost


class StuckBalloon(FakeDriver):
    """The target is set, but the guest keeps what it had (what ``actual`` reports)."""

    held: dict[str, int] = {}

    def set_memory_live(self, uuid: str, mib: int) -> None:
        StuckBalloon.held.setdefault(uuid, self._domain(uuid).memory_mib)
        super().set_memory_live(uuid, mib)

    def memory_stats(self, uuid: str) -> dict[str, int]:
        held = StuckBalloon.held.get(uuid, self._domain(uuid).memory_mib)
        return {"actual": held * 1024}


def resize_memory(world: World, mib: int) -> dict[str, str]:
    asked = world.api.call("POST", f"/v1/vps/{world.vps_id}/resize", world.api.support,
                           json={"memory_mib": mib, "reason": "memory test"})
    assert asked.status_code == 202, asked.text
    assert asked.json()["plan"]["mode"] == "live"
    world.run()
    job_id = asked.json()["job"]["id"]
    assert world.api.call("GET", f"/v1/jobs/{job_id}", world.api.support).json()["status"] == "succeeded"
    with Session(world.api.engine) as session:
        return {e.step: e.message for e in session.exec(
            select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.status == "done")).all()}


def test_the_job_ends_once_the_guest_holds_the_new_size(tmp_path: Path) -> None:
    world = make_world(tmp_path, "moves")
    steps = resize_memory(world, 384)
    assert steps["memory_settled"] == "the guest holds 384 MiB"
    assert world.vps().memory_mib == 384


def test_a_guest_that_keeps_its_memory_is_said_to(tmp_path: Path) -> None:
    def stuck(uri: str, host: FakeHost) -> FakeDriver:
        return StuckBalloon(uri, host)

    StuckBalloon.held.clear()
    world = make_world(tmp_path, "stuck", stuck, balloon_timeout_seconds=1)
    steps = resize_memory(world, 384)
    assert steps["memory_settled"] == ("the guest has not taken the new size yet: it holds 256 MiB of the "
                                       "384 MiB set (after 1 s); its next boot will have them")
    assert world.vps().memory_mib == 384  # the record and definition have the new size
