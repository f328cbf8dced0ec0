"""Request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# An RFC 1123 label: it becomes the guest's hostname, so it cannot carry markup or spaces.
VpsName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"),
]


class VpsCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: VpsName = Field(description="Hostname: lowercase letters, digits and '-', 1-63 characters")
    image: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    vcpus: int = Field(ge=1, le=1024)
    memory_mib: int = Field(ge=64, le=16 * 1024 * 1024)
    disk_gib: int = Field(ge=1, le=1024 * 1024)
    ssh_keys: list[Annotated[str, StringConstraints(min_length=1, max_length=16384)]] = Field(
        min_length=1, max_length=100, description="OpenSSH public keys for root"
    )
    customer: str | None = Field(
        default=None, max_length=100, description="Owner, for staff tokens only (customers own what they create)"
    )
    site: str | None = Field(default=None, max_length=64, description="Data-centre site (R2-locations)")


class HostKeyOut(BaseModel):
    type: str
    fingerprint: str
    public_key: str


class VpsOut(BaseModel):
    id: str
    name: str
    customer: str
    status: str
    task: str | None
    image: str
    vcpus: int
    memory_mib: int
    disk_gib: int
    host: str | None
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


class EventOut(BaseModel):
    at: datetime | None
    step: str
    status: str
    message: str
    actor: str


class ProgressOut(BaseModel):
    done: int
    total: int
    step: str | None


class JobOut(BaseModel):
    id: str
    vps_id: str | None
    kind: str
    status: str
    progress: ProgressOut
    attempts: int
    error: str | None
    requested_by: str
    created_at: datetime | None
    scheduled_at: datetime | None = Field(
        default=None, description="A deadline job runs at this instant, not before (e.g. R6.2-notice, R8.7-default)")
    started_at: datetime | None
    finished_at: datetime | None
    events: list[EventOut]


class VpsJobOut(BaseModel):
    vps: VpsOut
    job: JobOut


class ResizePlanOut(BaseModel):
    mode: str = Field(description="live: applied to the running guest; cold: stop, change, start")
    reboot: bool = Field(description="whether the VPS will be restarted")
    vcpus: int
    memory_mib: int
    disk_gib: int


class JobAccepted(BaseModel):
    job: JobOut
    plan: ResizePlanOut | None = None


class StopBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    force: bool = Field(default=False, description="Skip the graceful shutdown and power off at once")


class RebootBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hard: bool = Field(default=False, description="Reset instead of asking the guest to reboot")


class SuspendBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Literal["customer", "billing", "abuse", "security"] | None = None


class ResizeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vcpus: int | None = Field(default=None, ge=1, le=1024)
    memory_mib: int | None = Field(default=None, ge=64, le=16 * 1024 * 1024)
    disk_gib: int | None = Field(default=None, ge=1, le=1024 * 1024)
    reason: str | None = Field(default=None, max_length=500, description="Why staff resize (recorded)")


class ReinstallBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str | None = Field(default=None, max_length=64, description="Default: the OS the VPS was ordered with")
    ssh_keys: list[Annotated[str, StringConstraints(min_length=1, max_length=16384)]] = Field(
        min_length=1, max_length=100, description="New root credentials: OpenSSH public keys"
    )
    confirm_data_loss: bool = Field(description="Must be true: the VPS's disk is erased")
    keep_old_disk: bool = Field(default=False, description="Keep the old root disk as a backup")


class BackupBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=500)


class RestoreBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backup_id: str = Field(max_length=64)
    confirm_data_loss: bool = Field(description="Must be true: the current disk is replaced")


class BackupOut(BaseModel):
    id: str
    kind: str
    status: str
    size_bytes: int
    created_at: datetime | None
    note: str
    download: str | None = Field(default=None, description="Where to download an export (qcow2)")


class DiskBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size_gib: int = Field(ge=1, le=1024 * 1024)


class DiskOut(BaseModel):
    id: str
    size_gib: int
    target: str


class MailBlockBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    complaint: str = Field(default="", max_length=500, description="The spam complaint behind it (R6.4-spam)")


class CutOffBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Literal["hacked", "security_update_missing", "dangerous_application", "abuse"]
    details: str = Field(default="", max_length=2000, description="Told to the client in the cut-off notice")


class ReconnectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    corrective_measures: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class VpsEventOut(BaseModel):
    at: datetime | None
    job_id: str | None
    operation: str
    requested_by: str
    step: str
    status: str
    message: str
    actor: str


class ImageOut(BaseModel):
    name: str
    os: str
    os_family: str
    format: str
    size_bytes: int
    virtual_size_bytes: int
    sha256: str
    min_disk_gib: int
    min_memory_mib: int
    description: str
    built_at: datetime | None


class ResourcesOut(BaseModel):
    vcpus: int
    memory_mib: int
    disk_gib: int


class HostOut(BaseModel):
    id: int
    name: str
    uri: str
    site: str
    state: str
    domain_type: str
    capacity: ResourcesOut
    allocated: ResourcesOut
    updated_at: datetime | None


class Health(BaseModel):
    status: str
    version: str
    details: dict[str, Any] = {}
