"""``POST /v1/vps/{id}/<operation>``: each answers 202 with the job, or 409 naming the status."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, status
from fastapi.responses import FileResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from sqlmodel import col, select

from api.deps import CurrentPrincipal, SessionDep, SettingsDep, StaffPrincipal
from api.schemas import (
    BackupBody,
    BackupOut,
    CutOffBody,
    DiskBody,
    JobAccepted,
    MailBlockBody,
    RebootBody,
    ReconnectBody,
    ReinstallBody,
    ResizeBody,
    ResizePlanOut,
    RestoreBody,
    StopBody,
    SuspendBody,
    VpsEventOut,
)
from api.views import job_out
from orchestrator import compromise, subscriptions
from orchestrator.access import visible_vps
from orchestrator.auth import Principal
from orchestrator.contract.deadlines import reinstall_not_before
from orchestrator.errors import NotFound
from orchestrator.models import Audit, Backup, Compromise, Job, JobEvent
from orchestrator.operations import (
    backup,
    cutoff,
    disks,
    mail_block,
    reboot,
    reconnect,
    reinstall,
    resize,
    restore,
    resume,
    start,
    stop,
    suspend,
)
from orchestrator.operations.base import Operation, request

router = APIRouter(prefix="/v1/vps/{vps_id}", tags=["operations"])


def _run(
    session: SessionDep, settings: SettingsDep, principal: Principal, vps_id: str,
    operation: type[Operation], body: BaseModel | None = None, params: dict[str, Any] | None = None,
) -> JobAccepted:
    vps = visible_vps(session, principal, vps_id)
    values = params if params is not None else (body.model_dump(exclude_none=True) if body else {})
    job = request(session, settings, principal, vps, operation, values)
    return JobAccepted(job=job_out(session, job))


@router.post("/start", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def start_vps(vps_id: str, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal) -> JobAccepted:
    """Power on a stopped VPS; refused naming R10-after to the client once its subscription ended."""
    subscriptions.check_service_may_run(session, principal, visible_vps(session, principal, vps_id))
    return _run(session, settings, principal, vps_id, start.StartVps)


@router.post("/stop", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def stop_vps(vps_id: str, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
             body: StopBody | None = None) -> JobAccepted:
    """Graceful shutdown, forced after a timeout; `force` skips the wait."""
    return _run(session, settings, principal, vps_id, stop.StopVps, body or StopBody())


@router.post("/reboot", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def reboot_vps(vps_id: str, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
               body: RebootBody | None = None) -> JobAccepted:
    """Soft (ACPI) or hard (reset) reboot."""
    return _run(session, settings, principal, vps_id, reboot.RebootVps, body or RebootBody())


@router.post("/suspend", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def suspend_vps(vps_id: str, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
                body: SuspendBody | None = None) -> JobAccepted:
    """Pause the guest in memory, with a recorded reason."""
    return _run(session, settings, principal, vps_id, suspend.SuspendVps, body or SuspendBody())


@router.post("/resume", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def resume_vps(vps_id: str, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal) -> JobAccepted:
    """Resume a suspended VPS (a customer cannot resume what staff suspended)."""
    return _run(session, settings, principal, vps_id, resume.ResumeVps)


@router.post("/resize", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def resize_vps(vps_id: str, body: ResizeBody, session: SessionDep, settings: SettingsDep,
               principal: CurrentPrincipal) -> JobAccepted:
    """Staff: change vCPUs, memory and/or disk size under a rule other than a change order, named in
    `reason` (recorded in the VPS's events).  R5.1-change-order: a client's resize goes through
    `POST /v1/vps/{id}/change-orders`; asked here it is refused naming the rule.  `plan` in the answer
    says live or cold, and whether the VPS will reboot, before anything runs.  Disks never shrink."""
    vps = visible_vps(session, principal, vps_id)
    job = resize.request_resize(session, settings, principal, vps, body.model_dump(exclude_none=True))
    return JobAccepted(job=job_out(session, job), plan=ResizePlanOut(**job.params["plan"]))


@router.post("/reinstall", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def reinstall_vps(vps_id: str, body: ReinstallBody, session: SessionDep, settings: SettingsDep,
                  principal: CurrentPrincipal) -> JobAccepted:
    """R6.2-reinstall: a new root disk from the ordered OS (or `image`), new host keys, new root keys.
    Refused without `confirm_data_loss: true`.  The old disk goes only once the new system is up."""
    vps = visible_vps(session, principal, vps_id)
    params = reinstall.request_params(session, settings, vps, body.model_dump())
    return _run(session, settings, principal, vps_id, reinstall.ReinstallVps, params=params)


@router.post("/backup", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def backup_vps(vps_id: str, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
               body: BackupBody | None = None) -> JobAccepted:
    """A consistent copy of the root disk into the backup pool (a running guest keeps running)."""
    note = (body or BackupBody()).note
    return _run(session, settings, principal, vps_id, backup.BackupVps, params={"kind": "manual", "note": note})


@router.post("/export", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def export_vps(vps_id: str, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal) -> JobAccepted:
    """R13-reversibility: a qcow2 image of the root disk to download from `/backups/{id}/download`."""
    return _run(session, settings, principal, vps_id, backup.BackupVps, params={"kind": "export"})


@router.get("/backups", response_model=list[BackupOut])
def list_backups(vps_id: str, session: SessionDep, principal: CurrentPrincipal) -> list[BackupOut]:
    """Backups and exports of the VPS, with their size and time."""
    vps = visible_vps(session, principal, vps_id)
    rows = session.exec(select(Backup).where(Backup.vps_id == vps.id, Backup.status != "deleted")
                        .order_by(col(Backup.created_at))).all()
    return [
        BackupOut(id=b.id, kind=b.kind, status=b.status, size_bytes=b.size_bytes, created_at=b.created_at,
                  note=b.note,
                  download=(f"/v1/vps/{vps.id}/backups/{b.id}/download"
                            if b.kind == "export" and b.status == "available" else None))
        for b in rows
    ]


@router.get("/backups/{backup_id}/download", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}}}})
def download_export(vps_id: str, backup_id: str, session: SessionDep, settings: SettingsDep,
                    principal: CurrentPrincipal) -> FileResponse:
    """Download an export: the VPS's disk as a standalone qcow2 image (R13-reversibility)."""
    vps = visible_vps(session, principal, vps_id)
    record = session.get(Backup, backup_id)
    path = backup.export_path(settings, backup_id)
    if record is None or record.vps_id != vps.id or record.kind != "export" or not path.is_file():
        raise NotFound("no such export of this VPS")
    return FileResponse(path, media_type="application/octet-stream", filename=f"{vps.name}-{backup_id}.qcow2")


@router.post("/restore", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def restore_vps(vps_id: str, body: RestoreBody, session: SessionDep, settings: SettingsDep,
                principal: CurrentPrincipal) -> JobAccepted:
    """Replace the root disk with a backup's copy (needs `confirm_data_loss: true`)."""
    vps = visible_vps(session, principal, vps_id)
    params = restore.request_params(session, settings, vps, body.model_dump())
    return _run(session, settings, principal, vps_id, restore.RestoreVps, params=params)


@router.post("/cutoff", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def cut_off_vps(vps_id: str, body: CutOffBody, session: SessionDep, settings: SettingsDep,
                principal: CurrentPrincipal) -> JobAccepted:
    """R5.5-cutoff (staff): cut the network, live and persistently, until reconnect."""
    return _run(session, settings, principal, vps_id, cutoff.CutOffVps, body)


@router.post("/reconnect", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def reconnect_vps(vps_id: str, body: ReconnectBody, session: SessionDep, settings: SettingsDep,
                  principal: CurrentPrincipal) -> JobAccepted:
    """R5.5-reconnect (staff): restore the network once corrective measures are recorded."""
    return _run(session, settings, principal, vps_id, reconnect.ReconnectVps, body)


@router.post("/disks", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def attach_disk(vps_id: str, body: DiskBody, session: SessionDep, settings: SettingsDep,
                principal: CurrentPrincipal) -> JobAccepted:
    """Attach a new empty data disk (hot-plugged when the VPS runs)."""
    vps = visible_vps(session, principal, vps_id)
    params = disks.attach_params(session, settings, vps, body.size_gib)
    return _run(session, settings, principal, vps_id, disks.AttachDisk, params=params)


@router.delete("/disks/{disk_id}", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def detach_disk(
    vps_id: str, disk_id: str, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
    confirm_data_loss: bool = False,
) -> JobAccepted:
    """Detach a data disk and discard it: needs `?confirm_data_loss=true`."""
    vps = visible_vps(session, principal, vps_id)
    params = disks.detach_params(vps, disk_id, confirm_data_loss)
    return _run(session, settings, principal, vps_id, disks.DetachDisk, params=params)


@router.post("/mail-block", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def mail_block_vps(vps_id: str, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
                   body: MailBlockBody | None = None) -> JobAccepted:
    """R6.4-spam (staff): block outgoing mail (TCP 25, 465, 587); everything else still flows."""
    return _run(session, settings, principal, vps_id, mail_block.MailBlockVps, body or MailBlockBody())


@router.post("/mail-unblock", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def mail_unblock_vps(vps_id: str, session: SessionDep, settings: SettingsDep,
                     principal: CurrentPrincipal) -> JobAccepted:
    """Lift the outgoing-mail block (staff)."""
    return _run(session, settings, principal, vps_id, mail_block.MailUnblockVps)


class CompromiseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    details: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    cut_off: bool = Field(default=True, description="Cut the network at once (R5.5-cutoff)")
    ssh_keys: list[Annotated[str, StringConstraints(min_length=1, max_length=16384)]] | None = Field(
        default=None, max_length=100,
        description="Root keys of the reinstalled system (default: the keys on record; the client may change them)")


class CompromiseOut(BaseModel):
    id: str
    vps_id: str
    reported_at: datetime | None
    reinstall_not_before: AwareDatetime = Field(
        description="R6.2-notice: three jours ouvrés after the notice, Europe/Paris offset")
    reinstall_job_id: str | None = Field(description="The scheduled reinstall (GET /v1/jobs/{id})")
    image: str | None = Field(description="R6.2-reinstall: the OS of the order")
    customer_agreement_at: datetime | None
    backup_invoice_id: str | None = Field(description="R6.2-backup: ordered and invoiced; starts once paid")
    transfer_invoice_id: str | None = Field(description="R6.2-transfer: ordered and invoiced")
    resolved_at: datetime | None


class AgreementBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Annotated[str, StringConstraints(min_length=1, max_length=500)] = Field(
        description="Where the client's written agreement is (email, letter)")


class ServiceOrderBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["backup", "transfer"]
    price_ht: Decimal = Field(gt=0, max_digits=10, decimal_places=2, description="Euros before tax (R8.3-ht)")
    request_note: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="The client's emailed request and its acknowledgement")


class KeysBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ssh_keys: list[Annotated[str, StringConstraints(min_length=1, max_length=16384)]] = Field(
        min_length=1, max_length=100)


def _compromise_out(session: SessionDep, settings: SettingsDep, record: Compromise) -> CompromiseOut:
    not_before = reinstall_not_before(compromise.notice_time(session, record), compromise.calendar(settings))
    return CompromiseOut(
        id=record.id, vps_id=record.vps_id, reported_at=record.reported_at, reinstall_not_before=not_before,
        reinstall_job_id=record.reinstall_job_id, image=record.image,
        customer_agreement_at=record.customer_agreement_at, backup_invoice_id=record.backup_invoice_id,
        transfer_invoice_id=record.transfer_invoice_id, resolved_at=record.resolved_at)


@router.post("/compromise", status_code=status.HTTP_201_CREATED, response_model=CompromiseOut)
def report_compromise(vps_id: str, body: CompromiseBody, session: SessionDep, settings: SettingsDep,
                      staff: StaffPrincipal) -> CompromiseOut:
    """R6.2-notice (staff): the VPS was hacked.  Cuts it off (unless `cut_off: false`), emails the
    client, schedules the reinstall with the ordered OS and answers when it may run at the earliest."""
    vps = visible_vps(session, staff, vps_id)
    record, not_before = compromise.report(session, settings, staff, vps, body.details, body.cut_off,
                                           body.ssh_keys)
    out = _compromise_out(session, settings, record)
    out.reinstall_not_before = not_before
    return out


@router.get("/compromise", response_model=CompromiseOut)
def get_compromise(vps_id: str, session: SessionDep, settings: SettingsDep,
                   principal: CurrentPrincipal) -> CompromiseOut:
    """The open compromise report of the VPS (the customer sees their own)."""
    vps = visible_vps(session, principal, vps_id)
    record = compromise.open_compromise(session, vps)
    if record is None:
        raise NotFound("no open compromise report for this VPS")
    return _compromise_out(session, settings, record)


@router.post("/compromise/agreement", status_code=status.HTTP_200_OK, response_model=CompromiseOut)
def record_agreement(vps_id: str, body: AgreementBody, session: SessionDep, settings: SettingsDep,
                     staff: StaffPrincipal) -> CompromiseOut:
    """R6.2-notice (staff): record the client's written agreement to an earlier reinstall; the
    scheduled reinstall may then run at once."""
    vps = visible_vps(session, staff, vps_id)
    return _compromise_out(session, settings, compromise.record_agreement(session, vps, body.note))


@router.put("/compromise/ssh-keys", response_model=CompromiseOut)
def set_reinstall_keys(vps_id: str, body: KeysBody, session: SessionDep, settings: SettingsDep,
                       principal: CurrentPrincipal) -> CompromiseOut:
    """R6.2-reinstall, R6.1-root: the client's public keys for root on the reinstalled system."""
    vps = visible_vps(session, principal, vps_id)
    return _compromise_out(session, settings, compromise.set_reinstall_keys(session, settings, vps, body.ssh_keys))


@router.post("/compromise/orders", status_code=status.HTTP_201_CREATED, response_model=CompromiseOut)
def order_service(vps_id: str, body: ServiceOrderBody, session: SessionDep, settings: SettingsDep,
                  staff: StaffPrincipal) -> CompromiseOut:
    """R6.2-backup, R6.2-transfer (staff): the client asked for a backup or a data transfer and the
    request was acknowledged: it is invoiced, and starts once the invoice is paid; the reinstall
    waits for it."""
    vps = visible_vps(session, staff, vps_id)
    compromise.order_service(session, staff, vps, body.kind, body.price_ht, body.request_note)
    record = compromise.open_compromise(session, vps)
    assert record is not None
    return _compromise_out(session, settings, record)


@router.get("/events", response_model=list[VpsEventOut])
def vps_events(vps_id: str, session: SessionDep, principal: CurrentPrincipal) -> list[VpsEventOut]:
    """The VPS's action log: who asked what, when, each step and its result."""
    vps = visible_vps(session, principal, vps_id)
    rows = session.exec(
        select(JobEvent, Job).join(Job, col(Job.id) == col(JobEvent.job_id))
        .where(JobEvent.vps_id == vps.id).order_by(col(JobEvent.id))
    ).all()
    events = [
        VpsEventOut(at=e.at, job_id=j.id, operation=j.kind, requested_by=j.requested_by, step=e.step,
                    status=e.status, message=e.message, actor=e.actor)
        for e, j in rows
    ]
    audits = session.exec(select(Audit).where(Audit.vps_id == vps.id)).all()
    events += [
        VpsEventOut(at=a.at, job_id=None, operation=a.action, requested_by=a.actor, step=a.action, status="info",
                    message=a.detail, actor=a.actor)
        for a in audits
    ]
    return sorted(events, key=lambda e: e.at or datetime.min.replace(tzinfo=UTC))
