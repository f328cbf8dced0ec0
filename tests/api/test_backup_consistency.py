"""What a backup records of its consistency, as its owner reads it: ``quiesced`` when the guest
agent froze the running guest's filesystems, ``crash-consistent`` when no agent answered (the
backup still succeeds), ``stopped`` for a powered-off VPS.  End to end on the in-memory
hypervisor; the real freeze (Debian's agent) and the real fallback (tiny, no agent) are in
tests/integration/test_debian.py and test_lifecycle.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api.fakeworld import World, make_world


def listed(world: World, backup_id: str) -> dict[str, Any]:
    backups = world.api.call("GET", f"/v1/vps/{world.vps_id}/backups", world.api.alice).json()["items"]
    return dict(next(b for b in backups if b["id"] == backup_id))


def backup(world: World) -> tuple[dict[str, Any], str]:
    asked = world.api.call("POST", f"/v1/vps/{world.vps_id}/backup", world.api.alice, json={})
    assert asked.status_code == 202, asked.text
    world.run()
    job = world.api.wait_job(asked.json()["job"]["id"], world.api.alice)
    assert job["status"] == "succeeded", job
    copied = next(e["message"] for e in job["events"] if e["step"] == "copy_root_disk" and e["status"] == "done")
    return listed(world, job["id"]), copied


def test_a_backup_says_whether_the_guest_agent_froze_the_filesystems(tmp_path: Path) -> None:
    world = make_world(tmp_path, "w")
    # no agent answers: crash-consistent, and the backup is there all the same
    first = listed(world, world.backup_id)
    assert (first["status"], first["consistency"], first["quiesced"]) == ("available", "crash-consistent", False)

    world.host.domains[world.vps_id].guest_agent = True
    quiesced, copied = backup(world)
    assert (quiesced["status"], quiesced["consistency"], quiesced["quiesced"]) == ("available", "quiesced", True)
    assert "quiesced: the fake agent froze 1 filesystem" in copied

    stop = world.api.call("POST", f"/v1/vps/{world.vps_id}/stop", world.api.alice, json={})
    assert stop.status_code == 202, stop.text
    world.run()
    stopped, copied = backup(world)
    assert (stopped["consistency"], stopped["quiesced"]) == ("stopped", False)
    assert "from the stopped disk" in copied
