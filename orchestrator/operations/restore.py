"""Restore a VPS's root disk from one of its backups (needs ``confirm_data_loss: true``).

The backup is copied into a new root-disk generation, as a reinstall does with an image; the
VPS switches to it once the copy is made, with a fresh seed (new host key, same root keys), and
the replaced disk is discarded only once the restored system answers SSH.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from orchestrator.core.errors import InvalidRequest, NotFound
from orchestrator.core.models import Backup
from orchestrator.engine.context import Context, Request
from orchestrator.engine.operation import Params, Step, register
from orchestrator.operations import reinstall
from orchestrator.operations.reinstall import RootDiskPlan, SwitchesRootDisk, previous_of
from orchestrator.operations.steps import network, provision


class RestoreBody(Params):
    backup_id: str = Field(max_length=64)
    confirm_data_loss: bool = Field(description="Must be true: the current disk is replaced")


class RestorePlan(RootDiskPlan):
    backup_id: str
    backup_pool: str
    backup_volume: str


def copy_backup(ctx: Context) -> str:
    vps, host, plan = ctx.vps(), ctx.host(), ctx.plan(RestorePlan)
    new_root = vps.root_volume_for(plan.generation)
    size = ctx.driver.copy_volume(plan.backup_pool, plan.backup_volume, host.pool_name, new_root)
    return f"backup {plan.backup_id} copied to {new_root} ({size} bytes)"


@register
class RestoreVps(SwitchesRootDisk[RestoreBody]):
    """Replace the root disk with a backup's copy (needs `confirm_data_loss: true`)."""

    kind = "restore"
    route = "/restore"
    params = RestoreBody
    steps: ClassVar[tuple[Step, ...]] = (
        Step("copy_backup", copy_backup),
        Step("create_new_seed", reinstall.create_new_seed),
        Step("stop_old_system", reinstall.stop_old_system),
        Step("switch_disk", reinstall.switch_disk),
        Step("start_new_system", reinstall.start_new_system),
        Step("wait_for_address", provision.wait_for_address),
        Step("filter_address", network.filter_address),
        Step("verify_ssh", provision.verify_ssh),
        Step("retire_old_disk", reinstall.retire_old_disk),
    )

    @classmethod
    def check(cls, req: Request, params: RestoreBody) -> RestorePlan:
        if params.confirm_data_loss is not True:
            raise InvalidRequest("a restore replaces the VPS's disk; send confirm_data_loss: true")
        vps = req.vps
        assert vps is not None
        backup = req.session.get(Backup, params.backup_id)
        if backup is None or backup.vps_id != vps.id or backup.status != "available":
            raise NotFound("no such backup of this VPS")
        return RestorePlan(backup_id=backup.id, backup_pool=backup.pool, backup_volume=backup.volume,
                           image=vps.image, ssh_keys=vps.ssh_authorized_keys, generation=vps.root_generation + 1,
                           previous=previous_of(vps))
