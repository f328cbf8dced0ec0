"""Restore a VPS's root disk from one of its backups (needs ``confirm_data_loss: true``).

The backup is copied into a new root-disk generation, as a reinstall does with an image; the
VPS switches to it once the copy is made, with a fresh seed (new host key, same root keys), and
the replaced disk is discarded only once the restored system answers SSH.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlmodel import Session

from orchestrator.errors import InvalidRequest, NotFound
from orchestrator.models import Backup, Vps
from orchestrator.operations import provision, reinstall
from orchestrator.operations.base import Context, Step, register
from orchestrator.settings import Settings


def request_params(session: Session, settings: Settings, vps: Vps, body: dict[str, Any]) -> dict[str, Any]:
    RestoreVps.check_status(vps)
    if body.get("confirm_data_loss") is not True:
        raise InvalidRequest("a restore replaces the VPS's disk; send confirm_data_loss: true")
    backup = session.get(Backup, str(body.get("backup_id", "")))
    if backup is None or backup.vps_id != vps.id or backup.status != "available":
        raise NotFound("no such backup of this VPS")
    return {
        "backup_id": backup.id,
        "backup_pool": backup.pool,
        "backup_volume": backup.volume,
        "image": vps.image,
        "ssh_keys": vps.ssh_authorized_keys,
        "keep_old_disk": False,
        "generation": vps.root_generation + 1,
        "previous": {"generation": vps.root_generation, "image": vps.image,
                     "ssh_authorized_keys": vps.ssh_authorized_keys, "ssh_host_keys": vps.ssh_host_keys},
    }


def copy_backup(ctx: Context) -> str:
    vps, host = ctx.vps(), ctx.host()
    new_root = vps.root_volume_for(int(ctx.params["generation"]))
    size = ctx.driver.copy_volume(ctx.params["backup_pool"], ctx.params["backup_volume"], host.pool_name, new_root)
    return f"backup {ctx.params['backup_id']} copied to {new_root} ({size} bytes)"


@register
class RestoreVps(reinstall.ReinstallVps):
    """Runs like a reinstall (same switch, same rollback), from a backup instead of an image."""

    kind = "restore"
    steps: ClassVar[tuple[Step, ...]] = (
        Step("copy_backup", copy_backup),
        Step("create_new_seed", reinstall.create_new_seed),
        Step("stop_old_system", reinstall.stop_old_system),
        Step("switch_disk", reinstall.switch_disk),
        Step("start_new_system", reinstall.start_new_system),
        Step("wait_for_address", provision.wait_for_address),
        Step("verify_ssh", provision.verify_ssh),
        Step("retire_old_disk", reinstall.retire_old_disk),
    )
