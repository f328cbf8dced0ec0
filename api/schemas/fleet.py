"""Bodies of /v1 answers: images, hosts and their capacity, health."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


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
