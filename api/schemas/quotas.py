"""Bodies of /v1 requests and answers: per-customer quotas (orchestrator/compute/quotas.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

Count = Field(default=None, ge=0, le=1 << 30)


class Amounts(BaseModel):
    vps: int = Field(description="VPS not deleted")
    vcpus: int
    memory_mib: int
    disk_gib: int = Field(description="Root disks and data disks")
    backups: int = Field(description="Backups and exports kept or asked for")
    active_backups: int = Field(description="Backups and exports being made at once")


class QuotaBody(BaseModel):
    """The fields given replace the customer's quota; null puts one back to the default."""

    model_config = ConfigDict(extra="forbid")
    vps: int | None = Count
    vcpus: int | None = Count
    memory_mib: int | None = Count
    disk_gib: int | None = Count
    backups: int | None = Count
    active_backups: int | None = Count


class QuotaOut(BaseModel):
    customer_id: int
    limits: Amounts = Field(description="What the customer may hold (their own, or the default)")
    usage: Amounts = Field(description="What they hold now")
    custom: list[str] = Field(description="The limits staff set for this customer; the others are the defaults")
