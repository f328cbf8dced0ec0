"""A create that cannot finish rolls back and leaves nothing; killed in the middle of that
rollback (tests/integration/killpoints), the next worker takes the job up, fails it again and
rolls back to the end: nothing of the VPS is left on the host either way."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orchestrator.operations import create
from tests.conftest import cleanup_host
from tests.integration.killpoints import Drill, need_libvirt

pytestmark = pytest.mark.libvirt


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drill]:
    """A guest that never answers SSH in time: every create fails at its last step."""
    need_libvirt()
    drill = Drill(tmp_path_factory.mktemp("broken"), ssh_ready_timeout_seconds=0.5, guest_proxy_command="false")
    try:
        yield drill
    finally:
        drill.stop()
        cleanup_host(drill.settings, drill.engine)


def ask_create(drill: Drill, name: str) -> str:
    return drill.ask(None, create.CreateVps, create.VpsCreate(
        name=name, image="tiny", vcpus=1, memory_mib=192, disk_gib=1, ssh_keys=[drill.public_key],
        customer="alice", reason="test: a VPS made without an order"))


def rolled_back(drill: Drill, job_id: str) -> None:
    job = drill.job(job_id)
    assert job.status == "failed" and "SSH" in (job.error or ""), job.error
    assert job.vps_id is not None
    vps = drill.vps(job.vps_id)
    assert vps.status == "error" and vps.error
    assert drill.on_host(job.vps_id) == {"domain": None, "volumes": [], "domains": 0}


def test_a_create_that_cannot_finish_rolls_back(broken: Drill) -> None:
    job_id = ask_create(broken, "never-ready")
    broken.finish(job_id, expect="failed")
    assert broken.job(job_id).attempts == 1
    rolled_back(broken, job_id)


def test_a_create_killed_in_its_rollback_is_rolled_back_by_the_next_worker(broken: Drill) -> None:
    job_id = broken.killed_at("create:during:rollback", lambda: ask_create(broken, "killed-rolling-back"),
                              expect="failed")
    rolled_back(broken, job_id)
    # the second attempt went through the failing step again, and its rollback to the end
    assert [r["point"] for r in broken.points(job_id) if r["attempt"] == 2][-2:] == [
        "create:before:verify_ssh", "create:during:rollback"]
