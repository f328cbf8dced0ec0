"""A create, then the delete or erasure of what it made, each killed at a point of its own
(tests/integration/killpoints): the create resumed ends with the VPS running, its two volumes on
the host and nothing else; the delete or erasure resumed leaves nothing of the VPS, one of them
killed with some volumes gone and some not, and an erasure's one record names every volume that
was there (R10-after)."""

from __future__ import annotations

import itertools

import pytest
from sqlmodel import Session, select

from orchestrator.core.models import Erasure
from orchestrator.operations import create, delete, erase
from tests.integration.killpoints import Drill, kill_points
from tests.integration.killpoints import drill as drill

pytestmark = pytest.mark.libvirt

# The steps of a create, a delete and an erasure (orchestrator/operations/create.py, delete.py,
# erase.py), written out here.
CREATE = [*kill_points("create", ["upload_image", "create_root_disk", "create_seed", "define_domain", "start_domain",
                                  "wait_for_address", "filter_address", "verify_ssh"]), "create:before:succeed"]
REMOVE = [*kill_points("delete", ["destroy_domain", "undefine_domain", "discard_volumes", "discard_backups"]),
          "erase:before:destroy_domain", "erase:after:undefine_domain", "erase:during:discard_volumes",
          "erase:after:discard_volumes", "erase:after:discard_backups", "erase:before:record_erasure",
          "erase:after:record_erasure", "delete:during:discard_volumes", "erase:before:succeed"]
assert len(CREATE) == len(REMOVE) == 17
names = itertools.count()


@pytest.mark.parametrize(("point", "removal"), list(zip(CREATE, REMOVE, strict=True)))
def test_a_create_then_its_removal_killed_at_points_converge(drill: Drill, point: str, removal: str) -> None:
    body = create.VpsCreate(name=f"kill-{next(names)}", image="tiny", vcpus=1, memory_mib=192, disk_gib=1,
                            ssh_keys=[drill.public_key], customer="alice", reason="test: made without an order")
    job_id = drill.killed_at(point, lambda: drill.ask(None, create.CreateVps, body))
    vps_id = drill.job(job_id).vps_id
    assert vps_id is not None
    vps = drill.vps(vps_id)
    assert vps.status == "running" and vps.addresses and vps.task is None
    assert drill.on_host(vps_id) == {"domain": "running", "volumes": ["root.qcow2", "seed.iso"], "domains": 1}

    if removal.startswith("delete:"):
        removed = drill.killed_at(removal, lambda: drill.ask(vps_id, delete.DeleteVps,
                                                             delete.DeleteParams(confirm_data_loss=True)))
    else:
        removed = drill.killed_at(removal, lambda: drill.ask(vps_id, erase.EraseVps, erase.EraseParams(reason="drill")))
        with Session(drill.engine) as session:
            [erasure] = session.exec(select(Erasure).where(Erasure.vps_id == vps_id)).all()
        assert (sorted(erasure.volumes), erasure.job_id) == (
            [f"vps-{vps_id}-root.qcow2", f"vps-{vps_id}-seed.iso"], removed)
    vps = drill.vps(vps_id)
    assert (vps.status, vps.task) == ("deleted", None)
    assert drill.on_host(vps_id) == {"domain": None, "volumes": [], "domains": 0}
