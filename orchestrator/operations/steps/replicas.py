"""Backups kept off their VPS's host (R5.2-keep-running): a host that fails takes its disks and
its backup pool with it, so each backup is also copied, through the two libvirt connections, into
the backup pool of another host (the VPS's site first), where ``evacuate`` finds it to rebuild
the VPS.  The replica has its own volume name (``...-backup-ID.replica.qcow2``): a migration
copies the VPS's own volumes by name and never takes or overwrites a replica, and a replica
goes whenever its backup goes (discarded, deleted with the VPS, erased)."""

from __future__ import annotations

import dataclasses

from sqlmodel import Session, col, select

from orchestrator.core.db import session_scope
from orchestrator.core.models import Backup, Host
from orchestrator.engine.context import Context

SUFFIX = ".replica.qcow2"


def replica_volume(volume: str) -> str:
    return volume.removesuffix(".qcow2") + SUFFIX


def is_replica(volume: str) -> bool:
    return volume.endswith(SUFFIX)


def replica_host(session: Session, own: Host) -> Host | None:
    """Where a backup of a VPS on ``own`` is copied: an enabled host of its site, else of another
    site; None when there is no other host."""
    others = session.exec(select(Host).where(Host.id != own.id, Host.state == "enabled")
                          .order_by(col(Host.id))).all()
    return next((h for h in others if h.site == own.site), None) or next(iter(others), None)


def replicate(ctx: Context, backup_id: str) -> str:
    """Copy backup ``backup_id`` (complete on the VPS's host) to another host; recorded once the
    copy is whole.  Run again (a worker killed midway), a half-made copy is made again."""
    # Read before the transaction: ctx.host() opens one of its own (taken up after a crash, the
    # step finds it not read yet), and on SQLite a second writer waits for the first.
    host = ctx.host()
    with session_scope(ctx.engine) as session:
        record = session.get(Backup, backup_id)
        if record is None or record.status != "available":
            return f"backup {backup_id}: nothing to copy"
        if record.replica_host_id is not None:
            return f"backup {backup_id}: copied already"
        target = replica_host(session, host)
        if target is not None:
            session.expunge(target)
        pool, volume = record.pool, record.volume
    # The backup's events are the client's too: they say where in client terms (no host names).
    if target is None:
        return f"backup {backup_id}: no other host to copy it to, kept on the VPS's host only"
    config = ctx.driver.describe_volume(pool, volume)
    if config is None:
        return f"backup {backup_id}: its volume is gone"
    name = replica_volume(volume)
    dst = ctx.drivers.for_host(target)
    dst.delete_volume(pool, name)  # a copy a crash left half-made
    written = dst.receive_volume(pool, dataclasses.replace(config, name=name), ctx.driver.download_volume(pool, volume))
    with session_scope(ctx.engine) as session:
        record = session.get(Backup, backup_id)
        if record is not None:
            record.replica_host_id = target.id
            session.add(record)
    where = "in the same site" if target.site == ctx.host().site else f"in {target.site}"
    return f"backup {backup_id} copied to another host {where} ({written} bytes)"


def drop(ctx: Context, record: Backup) -> str | None:
    """The replica of ``record`` deleted (or wiped) on its host; its name, None if it had none."""
    if record.replica_host_id is None:
        return None
    with session_scope(ctx.engine) as session:
        host = session.get(Host, record.replica_host_id)
        if host is None:
            return None
        session.expunge(host)
    name = replica_volume(record.volume)
    ctx.drivers.for_host(host).delete_volume(record.pool, name, wipe=ctx.settings.lifecycle.wipe_volumes_on_delete)
    return f"{name} on {host.name}"
