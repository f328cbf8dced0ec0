"""Bodies of /v1 answers: images, hosts and their capacity, health."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.schemas.types import Instant

URI_SCHEMES = ("qemu", "qemu+unix", "qemu+ssh", "test")


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


URI_PATTERN = "^(" + "|".join(re.escape(scheme) for scheme in URI_SCHEMES) + ")://"


class HostIn(BaseModel):
    """A hypervisor host to register: its libvirt URI (``qemu:///system``,
    ``qemu+unix:///system?socket=...``, ``qemu+ssh://root@HOST/system``), its site (R2-locations)
    and, when its guests are not reached directly, how (``%h``, ``%p``: the guest's address and
    port), e.g. ``ssh -W %h:%p root@HOST``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9.-]*$")
    uri: str = Field(min_length=1, max_length=500, pattern=URI_PATTERN)
    site: str = Field(min_length=1, max_length=64)
    guest_proxy_command: str | None = Field(default=None, min_length=1, max_length=500)
    ssh_host_key: str | None = Field(
        default=None, min_length=10, max_length=2000,
        pattern=r"^(SHA256:[A-Za-z0-9+/]{43}|ssh-[a-z0-9-]+ [A-Za-z0-9+/=]+)",
        description="qemu+ssh:// hosts: the host's SSH key or its SHA256 fingerprint, checked against the key "
                    "the host presents before anything is sent (none: refused, the answer gives the "
                    "fingerprint presented, to be checked on the host)")

    migration_address: str | None = Field(
        default=None, min_length=1, max_length=255, pattern=r"^[A-Za-z0-9.:-]+$",
        description="The address other hosts reach this host's QEMU at for a live migration (none: cold only)")

    @field_validator("uri")
    @classmethod
    def _libvirt_uri(cls, uri: str) -> str:
        if not re.match(URI_PATTERN, uri):
            raise ValueError(f"a libvirt URI of one of the schemes {', '.join(URI_SCHEMES)}")
        return uri


class HostOut(BaseModel):
    id: int
    name: str
    uri: str
    site: str
    state: str
    domain_type: str
    guest_proxy_command: str | None = None
    ssh_host_key_fingerprint: str | None = None
    migration_address: str | None = None
    capacity: ResourcesOut
    allocated: ResourcesOut
    updated_at: datetime | None


class Health(BaseModel):
    status: str
    version: str
    details: dict[str, Any] = {}


class DrainBody(BaseModel):
    """When to empty the host: a maintenance window of its VPS (R5.4: at most an hour, at most once
    a week per VPS, notices sent at once), and optionally where to (a host name; none: the best
    host of each VPS's site)."""

    model_config = ConfigDict(extra="forbid")

    starts_at: Instant
    duration_minutes: int = Field(default=60, ge=1, le=24 * 60)
    reason: str = Field(default="the host is emptied for maintenance: the VPS moves to another host",
                        min_length=1, max_length=500)
    to_host: str | None = Field(default=None, min_length=1, max_length=64)


class DrainOut(BaseModel):
    host: str
    state: str
    maintenance_id: str
    starts_at: datetime
    jobs: list[str] = Field(description="the migrate job of each VPS, run at starts_at")


class EvacuateBody(BaseModel):
    """Why, and optionally where to (a host name; none: the best host of each VPS's site)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="its host is down", min_length=1, max_length=500)
    to_host: str | None = Field(default=None, min_length=1, max_length=64)


class LeftOut(BaseModel):
    vps_id: str
    name: str
    reason: str


class EvacuateOut(BaseModel):
    host: str
    state: str
    jobs: list[str] = Field(description="the evacuate job of each VPS rebuilt elsewhere, run at once")
    left: list[LeftOut] = Field(description="the VPS that cannot be rebuilt elsewhere, and why")
