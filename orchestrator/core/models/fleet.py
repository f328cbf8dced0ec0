"""The hypervisor hosts, the guest images, and which image is on which host."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from orchestrator.core.models.types import bytes_field, time_field


class Host(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=64)
    uri: str = Field(max_length=500)
    site: str = Field(default="", max_length=64)
    # enabled: takes new VPS; draining: its VPS are being moved off, takes none; disabled: taken
    # out by staff; unreachable: the reconciler could not reach it (its VPS are unknown)
    state: str = Field(default="enabled", max_length=16)
    domain_type: str = Field(default="qemu", max_length=16)
    vcpus: int = 0
    memory_mib: int = 0
    disk_gib: int = 0
    pool_name: str = Field(default="vpsctl", max_length=64)
    network_name: str = Field(default="vpsctl", max_length=64)
    # How the orchestrator reaches this host's guests (an SSH ProxyCommand, %h and %p for the
    # guest's address and port); None: directly, or by the installation's VPSCTL_GUEST_PROXY_COMMAND.
    guest_proxy_command: str | None = Field(default=None, max_length=500)
    # qemu+ssh:// hosts: the SSH host key recorded when the host was added ("ssh-ed25519 AAAA...");
    # every connection checks the host presents exactly this key.
    ssh_host_key: str | None = Field(default=None, max_length=2000)
    # The address other hosts reach this host's QEMU at for a live migration (None: cold moves only).
    migration_address: str | None = Field(default=None, max_length=255)
    updated_at: datetime | None = time_field(now=True)


class Image(SQLModel, table=True):
    name: str = Field(primary_key=True, max_length=64)
    os: str = Field(max_length=100)
    os_family: str = Field(default="linux", max_length=32)
    format: str = Field(default="qcow2", max_length=16)
    size_bytes: int = bytes_field()  # file size of the built image
    virtual_size_bytes: int = bytes_field()  # disk size the image describes
    sha256: str = Field(max_length=64)
    path: str = Field(max_length=1000)
    min_disk_gib: int = 1
    min_memory_mib: int = 128
    description: str = Field(default="", max_length=500)
    built_at: datetime | None = time_field()


class HostImage(SQLModel, table=True):
    """An image's base volume, fully uploaded to a host's pool (recorded only after the upload
    finished, so a volume left half-written by a crash is never used as a backing file)."""

    host_id: int = Field(foreign_key="host.id", primary_key=True)
    image_name: str = Field(primary_key=True, max_length=64)
    sha256: str = Field(primary_key=True, max_length=64)
    volume: str = Field(max_length=200)
    path: str = Field(max_length=1000)
    uploaded_at: datetime | None = time_field(now=True)
    # "uploading": job ``job_id`` took the upload (others wait for it); "ready": complete, checked
    state: str = Field(default="ready", max_length=16, sa_column_kwargs={"server_default": "ready"})
    job_id: str | None = Field(default=None, max_length=36)
