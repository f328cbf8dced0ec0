"""Bodies of /v1 answers: VPS, their disks, backups and action log."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from api.schemas.jobs import JobOut


class HostKeyOut(BaseModel):
    type: str
    fingerprint: str
    public_key: str


class VpsOut(BaseModel):
    id: str
    name: str
    customer: str
    status: str = Field(description="unknown while its host does not answer (last_known_status: what it was)")
    last_known_status: str | None = None
    task: str | None
    image: str
    vcpus: int
    memory_mib: int
    disk_gib: int
    host: str | None = Field(default=None, description="staff only: the host it runs on")
    site: str | None = Field(default=None, description="the data-centre site it runs in (R2-locations)")
    placement_group: str | None = None
    addresses: list[str]
    ssh_host_keys: list[HostKeyOut]
    data_disks: list[DiskOut]
    cut_off: bool
    cut_off_reason: str | None
    mail_blocked: bool
    suspend_reason: str | None
    error: str | None
    created_at: datetime | None
    updated_at: datetime | None


class DiskOut(BaseModel):
    id: str
    size_gib: int
    target: str


class VpsJobOut(BaseModel):
    vps: VpsOut
    job: JobOut


class BackupOut(BaseModel):
    id: str
    vps_id: str
    vps_name: str
    vps_deleted: bool = Field(description="The VPS is deleted: a backup its client kept (R10-after)")
    kind: str = Field(description="manual, export or before_reinstall")
    status: str = Field(description="creating, available or failed")
    size_bytes: int
    created_at: datetime | None
    note: str
    download: str | None = Field(default=None, description="Where to download an export (qcow2)")
    consistency: str = Field(description="quiesced: the guest agent froze the running guest's filesystems "
                                         "for the copy; crash-consistent: no agent answered (the disk as a "
                                         "power cut leaves it); stopped: copied while powered off; unknown: "
                                         "made before this was recorded")
    quiesced: bool = Field(description="The guest's filesystems were frozen for the copy (consistency quiesced)")


class VpsEventOut(BaseModel):
    at: datetime | None
    job_id: str | None
    operation: str
    requested_by: str
    step: str
    status: str
    message: str
    actor: str
