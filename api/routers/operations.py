"""``POST /v1/vps/{id}/<operation>``: each answers 202 with the job, or 409 naming the status.
One line per operation (``expose``); the few whose request has another shape (the export of
``backup``, the data disks) are written out below, and ask through the same path."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from fastapi.responses import FileResponse
from sqlalchemy import and_, or_
from sqlmodel import col, select

from api.audiences import STAFF
from api.deps import CurrentPrincipal, SessionDep, SettingsDep
from api.operations import IdempotencyKey, accepted, ask, expose
from api.pages import Cursor, Limit, Order, Page, Since, Until, decode, encode, filtered, page_of
from api.schemas.jobs import JobAccepted
from api.schemas.vps import BackupOut, VpsEventOut
from api.scopes import scoped
from api.views import actor_as_seen_by, backup_out, event_out
from orchestrator.core.access import visible_vps
from orchestrator.core.errors import InvalidRequest, NotFound
from orchestrator.core.models import Audit, Backup, Job, JobEvent
from orchestrator.operations import (
    backup,
    cutoff,
    disks,
    mail_block,
    migrate,
    reboot,
    reconnect,
    reinstall,
    rename,
    resize,
    restore,
    resume,
    start,
    stop,
    suspend,
)

router = APIRouter(prefix="/v1/vps/{vps_id}", tags=["operations"], dependencies=[scoped("vps")])
CLIENT_AUDITS = frozenset({"console"})  # R7-confidential: a client sees who opened their console

expose(router, start.StartVps)
expose(router, stop.StopVps)
expose(router, reboot.RebootVps)
expose(router, suspend.SuspendVps)
expose(router, resume.ResumeVps)
expose(router, resize.ResizeVps, body_required=True, audience="staff")  # a client's: a change order
expose(router, reinstall.ReinstallVps)
expose(router, backup.BackupVps)
expose(router, restore.RestoreVps)
expose(router, cutoff.CutOffVps, name="cut_off_vps")
expose(router, reconnect.ReconnectVps)
expose(router, mail_block.MailBlockVps)
expose(router, mail_block.MailUnblockVps)
expose(router, rename.RenameVps)
expose(router, migrate.MigrateVps)


@router.post("/export", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def export_vps(vps_id: str, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
               _idempotency_key: IdempotencyKey = None) -> JobAccepted:
    """R13-reversibility: a qcow2 image of the root disk to download from `/backups/{id}/download`."""
    job = ask(session, settings, principal, vps_id, backup.BackupVps, backup.BackupParams(kind="export"))
    return accepted(session, job, principal)


@router.get("/backups", response_model=Page[BackupOut])
def list_vps_backups(
    vps_id: str, session: SessionDep, principal: CurrentPrincipal,
    kind: Annotated[str | None, Query(max_length=32, description="e.g. manual, before_reinstall, export")] = None,
    status: Literal["creating", "available", "failed"] | None = None,
    since: Since = None, until: Until = None, limit: Limit = 50, cursor: Cursor = None, order: Order = "desc",
) -> Page[BackupOut]:
    """Backups and exports of the VPS, with their size and time, newest first, a page at a time."""
    vps = visible_vps(session, principal, vps_id)
    query = filtered(select(Backup).where(Backup.vps_id == vps.id, Backup.status != "deleted"),
                     ((Backup.kind, kind), (Backup.status, status)), Backup.created_at, since, until)
    rows, after = page_of(session, query, (Backup.created_at, Backup.id), cursor, limit, order)
    return Page[BackupOut](items=[backup_out(vps, b) for b in rows], next=after)


@router.get("/backups/{backup_id}/download", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}}}})
def download_vps_export(vps_id: str, backup_id: str, session: SessionDep, settings: SettingsDep,
                    principal: CurrentPrincipal) -> FileResponse:
    """Download an export: the VPS's disk as a standalone qcow2 image (R13-reversibility)."""
    vps = visible_vps(session, principal, vps_id)
    record = session.get(Backup, backup_id)
    path = backup.export_path(settings, backup_id)
    if record is None or record.vps_id != vps.id or record.kind != "export" or not path.is_file():
        raise NotFound("no such export of this VPS")
    return FileResponse(path, media_type="application/octet-stream", filename=f"{vps.name}-{backup_id}.qcow2")


@router.post("/disks", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted, openapi_extra=STAFF)
def attach_disk(vps_id: str, body: disks.DiskBody, session: SessionDep, settings: SettingsDep,
                principal: CurrentPrincipal, _idempotency_key: IdempotencyKey = None) -> JobAccepted:
    """Attach a new empty data disk (hot-plugged when the VPS runs)."""
    return accepted(session, ask(session, settings, principal, vps_id, disks.AttachDisk, body), principal)


@router.delete("/disks/{disk_id}", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted,
               responses={409: {"description": "The VPS's status does not allow it now"}})
def detach_disk(
    vps_id: str, disk_id: str, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
    confirm_data_loss: Annotated[bool, Query(description="Must be true: the disk's data is discarded")] = False,
) -> JobAccepted:
    """Detach a data disk and discard it: needs `?confirm_data_loss=true`."""
    params = disks.DetachParams(disk_id=disk_id, confirm_data_loss=confirm_data_loss)
    return accepted(session, ask(session, settings, principal, vps_id, disks.DetachDisk, params), principal)


@router.delete("/backups/{backup_id}", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted,
               responses={409: {"description": "The VPS's status does not allow it now"}})
def discard_vps_backup(
    vps_id: str, backup_id: str, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
    confirm_data_loss: Annotated[bool, Query(description="Must be true: the copy is discarded for good")] = False,
) -> JobAccepted:
    """Discard a backup or an export (also one kept after the VPS was deleted): needs
    `?confirm_data_loss=true`."""
    params = backup.DiscardBackupParams(backup_id=backup_id[:36], confirm_data_loss=confirm_data_loss)
    return accepted(session, ask(session, settings, principal, vps_id, backup.DiscardBackup, params), principal)


def _after(at: Any, ident: Any, rank: int, key: dict[str, Any], order: str) -> Any:
    """The rows of one source (``rank``) past the cursor's (at, source, id) in ``order``."""
    later = col(at) < key["at"] if order == "desc" else col(at) > key["at"]
    same = and_(col(at) == key["at"], col(ident) < key["id"] if order == "desc" else col(ident) > key["id"])
    if rank == key["s"]:
        return or_(later, same)
    if (rank < key["s"]) == (order == "desc"):
        return or_(later, col(at) == key["at"])
    return later


@router.get("/events", response_model=Page[VpsEventOut])
def list_vps_events(
    vps_id: str, session: SessionDep, principal: CurrentPrincipal,
    since: Since = None, until: Until = None, limit: Limit = 50, cursor: Cursor = None, order: Order = "desc",
) -> Page[VpsEventOut]:
    """The VPS's action log: who asked what, when, each step and its result (a client reads it in
    client terms: api/views.py), and who opened its console; newest first, a page at a time
    (``?order=asc``: as it happened).  Job steps and audited actions are one stream, sorted on
    (time, source, id)."""
    vps = visible_vps(session, principal, vps_id)
    key = decode(cursor, {"at": datetime, "s": int, "id": int, "o": str})
    if key is not None and key["o"] != order:
        raise InvalidRequest(f"cursor: it was read with order={key['o']}; give the same order as for the first page")
    steps = filtered(select(JobEvent, Job).join(Job, col(Job.id) == col(JobEvent.job_id))
                     .where(JobEvent.vps_id == vps.id), (), JobEvent.at, since, until)
    audits = filtered(select(Audit).where(Audit.vps_id == vps.id), (), Audit.at, since, until)
    if not principal.is_staff:
        audits = audits.where(col(Audit.action).in_(CLIENT_AUDITS))
    if key is not None:
        steps = steps.where(_after(JobEvent.at, JobEvent.id, 0, key, order))
        audits = audits.where(_after(Audit.at, Audit.id, 1, key, order))

    def sort(column: Any) -> Any:
        return col(column).desc() if order == "desc" else col(column).asc()

    merged: list[tuple[Any, int, int, VpsEventOut]] = []
    for event, job in session.exec(steps.order_by(sort(JobEvent.at), sort(JobEvent.id)).limit(limit + 1)).all():
        seen = event_out(principal, job, event)
        merged.append((event.at, 0, event.id or 0, VpsEventOut(
            at=seen.at, job_id=job.id, operation=job.kind, requested_by=actor_as_seen_by(principal, job.requested_by),
            step=seen.step, status=seen.status, message=seen.message, actor=seen.actor)))
    for a in session.exec(audits.order_by(sort(Audit.at), sort(Audit.id)).limit(limit + 1)).all():
        merged.append((a.at, 1, a.id or 0, VpsEventOut(
            at=a.at, job_id=None, operation=a.action, requested_by=actor_as_seen_by(principal, a.actor),
            step=a.action, status="info", message=a.detail, actor=actor_as_seen_by(principal, a.actor))))
    merged.sort(key=lambda row: row[:3], reverse=order == "desc")
    after = None
    if len(merged) > limit:
        at, rank, ident, _ = merged[limit - 1]
        after = encode({"at": at, "s": rank, "id": ident, "o": order})
    return Page[VpsEventOut](items=[row[3] for row in merged[:limit]], next=after)
