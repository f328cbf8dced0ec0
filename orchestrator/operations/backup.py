"""Back up a VPS's root disk into the host's backup pool: a consistent, standalone qcow2 copy.

A running guest keeps running: libvirt's push-mode backup copies the disk as it was when the
backup began.  Just before, the guest agent is asked to freeze the guest's filesystems (flushed,
writes held), and they are thawed as soon as the backup has begun, whatever happens: the copy is
``quiesced``.  When no agent answers (none installed, as in the tiny image, or not running) the
copy is ``crash-consistent`` and the step and record say so.  A stopped or suspended VPS is
copied directly (the disk is not changing).
``export`` is the same copy, kept for the customer to download, and of every data disk too:
R13-reversibility asks for "a disk image export of each VPS", the whole of its data.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from orchestrator.compute import quotas
from orchestrator.core.db import session_scope
from orchestrator.core.errors import Conflict, InvalidRequest, NotFound
from orchestrator.core.files import open_private, private_dir
from orchestrator.core.models import Backup, Vps, VpsStatus
from orchestrator.core.settings import Settings
from orchestrator.engine.context import Context, Request
from orchestrator.engine.operation import Operation, Params, Plan, Step, register
from orchestrator.hypervisor import DomainState
from orchestrator.operations.steps import replicas


class BackupBody(Params):
    note: str = Field(default="", max_length=500)


class BackupParams(BackupBody):
    """``export``: the copy is for the client to download, and takes every data disk along."""

    kind: Literal["manual", "export"] = "manual"


def backup_volume(vps: Vps, backup_id: str) -> str:
    return f"{vps.volume_prefix}backup-{backup_id}.qcow2"


def data_disk_backup_id(job_id: str, disk_id: str) -> str:
    """The copy of a data disk made by job ``job_id`` (the root disk's copy has the job's id)."""
    return str(uuid.uuid5(uuid.UUID(job_id), disk_id))


def _copy_disk(ctx: Context, backup_id: str, target: str, source_volume: str, note: str) -> str:
    vps, host = ctx.vps(), ctx.host()
    volume = backup_volume(vps, backup_id)
    pool = ctx.settings.hosts.backup_pool
    with session_scope(ctx.engine) as session:
        session.merge(Backup(id=backup_id, vps_id=vps.id, kind=ctx.args(BackupParams).kind, pool=pool, volume=volume,
                             status="creating", note=note))
    info = ctx.driver.domain(vps.id)
    if info is not None and info.state == DomainState.running:
        copy = ctx.driver.backup_disk_live(vps.id, target, pool, volume,
                                           ctx.settings.lifecycle.backup_timeout_seconds)
        size = copy.size_bytes
        consistency = "quiesced" if copy.quiesced else "crash-consistent"
        how = f"live (push-mode backup, guest kept running), {copy.detail}"
    else:
        size = ctx.driver.copy_volume(host.pool_name, source_volume, pool, volume)
        # A paused guest's disk is as a power cut would leave it (its memory is not copied).
        consistency = "stopped" if info is None or info.state == DomainState.shutoff else "crash-consistent"
        how = "from the stopped disk" if consistency == "stopped" else "from the paused guest's disk, crash-consistent"
    with session_scope(ctx.engine) as session:
        record = session.get(Backup, backup_id)
        if record is not None:
            # An export is the client's download: available once its file is there (fetch_export).
            record.size_bytes = size
            record.consistency = consistency
            if record.kind != "export":
                record.status = "available"
            session.add(record)
    return f"{target} -> {volume}: {size} bytes, {how}"


def copy_root_disk(ctx: Context) -> str:
    return _copy_disk(ctx, ctx.job.id, "vda", ctx.vps().root_volume, ctx.args(BackupParams).note)


def _data_disks(ctx: Context) -> list[dict[str, Any]]:
    return list(ctx.vps().data_disks) if ctx.args(BackupParams).kind == "export" else []


def copy_data_disks(ctx: Context) -> str:
    """R13-reversibility: an export takes every data disk along with the root disk."""
    done = [_copy_disk(ctx, data_disk_backup_id(ctx.job.id, disk["id"]), disk["target"], disk["volume"],
                       f"data disk {disk['target']} ({disk['size_gib']} GiB)")
            for disk in _data_disks(ctx)]
    return "; ".join(done) or "no data disk to copy"


def _exported_ids(ctx: Context) -> list[str]:
    return [ctx.job.id] + [data_disk_backup_id(ctx.job.id, d["id"]) for d in _data_disks(ctx)]


def export_path(settings: Settings, backup_id: str) -> Path:
    return settings.state_dir / "exports" / f"{backup_id}.qcow2"


def fetch_export(ctx: Context) -> str:
    """An export is brought to the control plane, where the API serves it (the API itself never
    talks to a hypervisor)."""
    if ctx.args(BackupParams).kind != "export":
        return "skipped: not an export"
    vps = ctx.vps()
    ready, digests = [], {}
    for backup_id in _exported_ids(ctx):
        target = export_path(ctx.settings, backup_id)
        private_dir(target.parent)
        partial = target.with_suffix(".part")
        digest = hashlib.sha256()
        with open_private(partial) as handle:
            for chunk in ctx.driver.download_volume(ctx.settings.hosts.backup_pool, backup_volume(vps, backup_id)):
                handle.write(chunk)
                digest.update(chunk)
        partial.replace(target)
        digests[backup_id] = digest.hexdigest()
        with session_scope(ctx.engine) as session:
            record = session.get(Backup, backup_id)
            if record is not None:
                record.status = "available"
                session.add(record)
        ready.append(f"{backup_id}: {target.stat().st_size} bytes, sha256 {digest.hexdigest()}")
    ctx.remember(sha256=digests[ctx.job.id], sha256_by_backup=digests)
    return "export ready: " + "; ".join(ready)


def replicate(ctx: Context) -> str:
    """R5.2-keep-running: a backup is copied to another host, from where the VPS can be rebuilt
    if its host is lost (an export is the client's download: it stays where it is)."""
    if ctx.args(BackupParams).kind != "manual":
        return "skipped: an export"
    return replicas.replicate(ctx, ctx.job.id)


@register
class BackupVps(Operation[BackupParams]):
    """A consistent copy of the root disk into the backup pool (a running guest keeps running)."""

    kind = "backup"
    route = "/backup"
    params = BackupBody
    job_params = BackupParams
    allowed_from = frozenset({VpsStatus.running, VpsStatus.stopped, VpsStatus.cut_off, VpsStatus.suspended})
    steps = (Step("copy_root_disk", copy_root_disk), Step("copy_data_disks", copy_data_disks),
             Step("fetch_export", fetch_export), Step("replicate", replicate))

    @classmethod
    def check(cls, req: Request, params: BackupParams) -> Plan | None:
        """A client's backups and exports count against their quota (copies kept, and made at once)."""
        if req.vps is not None and not req.at_start:
            quotas.check(req.session, req.settings, req.principal, req.vps.customer_id,
                         quotas.Amounts(backups=1, active_backups=1))
        return None

    @classmethod
    def rollback(cls, ctx: Context, error: Exception) -> None:
        vps = ctx.vps()
        for backup_id in _exported_ids(ctx):
            export_path(ctx.settings, backup_id).unlink(missing_ok=True)
            ctx.driver.delete_volume(ctx.settings.hosts.backup_pool, backup_volume(vps, backup_id))
            with session_scope(ctx.engine) as session:
                record = session.get(Backup, backup_id)
                if record is not None:
                    record.status = "failed"
                    record.note = str(error)[:500]
                    session.add(record)


class DiscardBackupParams(Params):
    backup_id: str = Field(max_length=36)
    confirm_data_loss: bool = Field(default=False, description="Must be true: the copy is discarded for good")


def discard_backup(ctx: Context) -> str:
    """The copy's volume discarded (or wiped), its export file removed, its record deleted; a
    no-op on what is already gone."""
    vps, backup_id = ctx.vps(), ctx.args(DiscardBackupParams).backup_id
    if vps.host_id is not None:
        ctx.driver.delete_volume(ctx.settings.hosts.backup_pool, backup_volume(vps, backup_id),
                                 wipe=ctx.settings.lifecycle.wipe_volumes_on_delete)
    export_path(ctx.settings, backup_id).unlink(missing_ok=True)
    with session_scope(ctx.engine) as session:
        record = session.get(Backup, backup_id)
        if record is not None:
            session.expunge(record)
    copy = replicas.drop(ctx, record) if record is not None else None
    with session_scope(ctx.engine) as session:
        record = session.get(Backup, backup_id)
        if record is not None:
            record.status = "deleted"
            session.add(record)
    return f"backup {backup_id} discarded" + (f", and its copy {copy}" if copy else "")


@register
class DiscardBackup(Operation[DiscardBackupParams]):
    """Discard one backup or export of a VPS: also one kept after the VPS was deleted."""

    kind = "discard-backup"
    params = DiscardBackupParams
    allowed_from = frozenset(VpsStatus) - {VpsStatus.deleting}
    steps = (Step("discard_backup", discard_backup),)

    @classmethod
    def check(cls, req: Request, params: DiscardBackupParams) -> Plan | None:
        assert req.vps is not None
        record = req.session.get(Backup, params.backup_id)
        if record is None or record.vps_id != req.vps.id or record.status == "deleted":
            raise NotFound("no such backup of this VPS")
        if not params.confirm_data_loss:
            raise InvalidRequest("discarding a backup destroys it; repeat with ?confirm_data_loss=true")
        if record.status == "creating" and not req.at_start:
            raise Conflict(f"the backup is {record.status}: wait until it is available")
        return None
