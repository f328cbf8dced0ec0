"""What a customer may hold and ask for themself, set by staff (``None``: the default setting)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from orchestrator.core.models.types import time_field


class Quota(SQLModel, table=True):
    customer_id: int = Field(foreign_key="customer.id", primary_key=True)
    vps: int | None = None  # VPS not deleted
    vcpus: int | None = None
    memory_mib: int | None = None
    disk_gib: int | None = None  # root disks and data disks
    backups: int | None = None  # backups and exports kept, or asked for
    active_backups: int | None = None  # backups and exports being made at once (each a full-disk copy)
    updated_by: str = Field(default="", max_length=100)
    updated_at: datetime | None = time_field(now=True)
