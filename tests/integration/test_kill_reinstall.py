"""A reinstall and a restore killed at each of their points (tests/integration/killpoints): once
resumed, the VPS runs the new system from the new disk generation, and the host holds that
generation's two volumes and no other."""

from __future__ import annotations

import pytest

from orchestrator.operations import backup, reinstall, restore
from tests.integration.killpoints import Drill, kill_points, thinned
from tests.integration.killpoints import drill as drill

pytestmark = pytest.mark.libvirt

# The steps of a reinstall (orchestrator/operations/reinstall.py), written out here; the points
# chosen cover the moments where the old and the new system both exist.
REINSTALL = [
    "reinstall:before:upload_image", "reinstall:after:create_new_root", "reinstall:after:create_new_seed",
    "reinstall:before:stop_old_system", "reinstall:after:stop_old_system", "reinstall:before:switch_disk",
    "reinstall:after:switch_disk", "reinstall:after:start_new_system", "reinstall:before:verify_ssh",
    "reinstall:after:retire_old_disk",
]
RESTORE = [*kill_points("restore", ["copy_backup", "switch_disk"]), "restore:before:start_new_system",
           "restore:after:retire_old_disk"]
shared: dict[str, str] = {}


def converged(drill: Drill, vps_id: str, generation: int) -> None:
    vps = drill.vps(vps_id)
    assert (vps.status, vps.root_generation, vps.task) == ("running", generation, None)
    assert drill.on_host(vps_id) == {"domain": "running", "volumes": [f"{generation}.iso", f"{generation}.qcow2"],
                                     "domains": 1}


@pytest.mark.parametrize("point", thinned(REINSTALL, {
    "reinstall:after:create_new_root", "reinstall:before:stop_old_system", "reinstall:before:switch_disk",
    "reinstall:after:start_new_system", "reinstall:before:verify_ssh"}))
def test_a_reinstall_killed_at_a_point_ends_on_the_new_system(drill: Drill, point: str) -> None:
    vps_id = shared.get("vps") or shared.setdefault("vps", drill.create_vps())
    generation = drill.vps(vps_id).root_generation
    drill.killed_at(point, lambda: drill.ask(vps_id, reinstall.ReinstallVps, reinstall.ReinstallBody(
        ssh_keys=[drill.public_key], confirm_data_loss=True)))
    converged(drill, vps_id, generation + 1)


@pytest.mark.parametrize("point", thinned(RESTORE, {"restore:before:switch_disk",
                                                   "restore:before:start_new_system"}))
def test_a_restore_killed_at_a_point_ends_on_the_backup(drill: Drill, point: str) -> None:
    vps_id = shared.get("vps") or shared.setdefault("vps", drill.create_vps())
    if "backup" not in shared:
        shared["backup"] = drill.ask(vps_id, backup.BackupVps, backup.BackupParams(kind="manual"))
        drill.finish(shared["backup"])
    generation = drill.vps(vps_id).root_generation
    drill.killed_at(point, lambda: drill.ask(vps_id, restore.RestoreVps, restore.RestoreBody(
        backup_id=shared["backup"], confirm_data_loss=True)))
    converged(drill, vps_id, generation + 1)
    assert drill.backups_on_host(vps_id) == [f"vps-{vps_id}-backup-{shared['backup']}.qcow2"]
