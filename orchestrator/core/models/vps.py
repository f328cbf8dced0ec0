"""VPS, their backups, and the traffic measured on them."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, event
from sqlmodel import Field, SQLModel

from orchestrator.core.models.types import UTCDateTime, bytes_field, json_field, new_id, time_field


class VpsStatus(enum.StrEnum):
    building = "building"
    running = "running"
    stopped = "stopped"
    suspended = "suspended"
    cut_off = "cut_off"
    error = "error"
    deleting = "deleting"
    deleted = "deleted"


class Vps(SQLModel, table=True):
    # Placement sums what each host's VPS hold from this index alone (compute/hosts.best_host).
    # Lists read a page newest first from an index, a customer's own or everyone's (api/pages.py).
    __table_args__ = (Index("ix_vps_placement", "host_id", "status", "vcpus", "memory_mib", "disk_gib",
                            "data_disk_gib_total"),
                      Index("ix_vps_owner_newest", "customer_id", "created_at", "id"),
                      Index("ix_vps_newest", "created_at", "id"))

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(index=True, max_length=63)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    host_id: int | None = Field(default=None, foreign_key="host.id", index=True)
    image: str = Field(max_length=64)
    vcpus: int
    memory_mib: int
    disk_gib: int
    # Live-resize ceilings, fixed in the definition; beyond them a resize needs a cold restart.
    max_vcpus: int = 0
    max_memory_mib: int = 0
    status: VpsStatus = Field(default=VpsStatus.building, index=True)
    # Bumped by each reinstall: the new root disk and seed live beside the old ones until the new
    # system is up, so a failed reinstall can go back.
    root_generation: int = 0
    # R5.5-cutoff: the network link is down, live and in the definition, until reconnected.
    cut_off: bool = False
    cut_off_reason: str | None = Field(default=None, max_length=64)
    # R6.4-spam: outbound mail (TCP 25, 465, 587) dropped by a filter; everything else flows.
    mail_blocked: bool = False
    suspend_reason: str | None = Field(default=None, max_length=32)
    suspended_by: str | None = Field(default=None, max_length=16)  # role that suspended it
    task: str | None = Field(default=None, max_length=32)
    mac: str = Field(default="", max_length=17)
    # Extra data disks: [{"id", "volume", "size_gib", "target"}]; the root disk is not among them.
    data_disks: list[dict[str, Any]] = json_field(list)
    # Anti-affinity: a customer's VPS of one placement group never share a host.
    placement_group: str | None = Field(default=None, max_length=64)
    # The sum of the data disks' sizes, kept at every write (below): placement sums it in SQL.
    data_disk_gib_total: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    ssh_authorized_keys: list[str] = json_field(list)  # public keys only
    ssh_host_keys: list[dict[str, str]] = json_field(list)  # public keys + fingerprints only
    addresses: list[str] = json_field(list)
    error: str | None = Field(default=None, max_length=2000)
    created_at: datetime | None = time_field(now=True)
    updated_at: datetime | None = time_field(now=True)
    deleted_at: datetime | None = time_field()

    @property
    def domain_name(self) -> str:
        # Derived from the UUID, never from user input (names reach libvirt only as escaped text).
        return f"vps-{self.id}"

    @property
    def volume_prefix(self) -> str:
        """Every volume of this VPS, in any pool, starts with this."""
        return f"vps-{self.id}-"

    @property
    def data_disk_gib(self) -> int:
        return sum(int(d["size_gib"]) for d in self.data_disks)

    def root_volume_for(self, generation: int) -> str:
        return f"vps-{self.id}-root.qcow2" if generation == 0 else f"vps-{self.id}-root-{generation}.qcow2"

    def seed_volume_for(self, generation: int) -> str:
        return f"vps-{self.id}-seed.iso" if generation == 0 else f"vps-{self.id}-seed-{generation}.iso"

    @property
    def root_volume(self) -> str:
        return self.root_volume_for(self.root_generation)

    @property
    def seed_volume(self) -> str:
        return self.seed_volume_for(self.root_generation)


@event.listens_for(Vps, "before_insert")
@event.listens_for(Vps, "before_update")
def _data_disk_total(_mapper: Any, _connection: Any, vps: Vps) -> None:
    vps.data_disk_gib_total = vps.data_disk_gib


class Backup(SQLModel, table=True):
    """A copy of a VPS's disk(s) kept in a storage pool of its host, and (``replica_host_id``)
    in the same pool of another host (operations/steps/replicas.py)."""

    # list pages (api/pages.py, migration 0017): the sort key after what the list is narrowed to
    __table_args__ = (Index("ix_backup_newest", "created_at", "id"),
                      Index("ix_backup_vps_newest", "vps_id", "created_at", "id"))

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    vps_id: str = Field(foreign_key="vps.id", index=True, max_length=36)
    kind: str = Field(max_length=32)  # manual | before_reinstall
    pool: str = Field(max_length=64)
    volume: str = Field(max_length=200)
    size_bytes: int = bytes_field()
    status: str = Field(default="available", max_length=16)  # creating | available | failed | deleted
    note: str = Field(default="", max_length=500)
    created_at: datetime | None = time_field(now=True)
    replica_host_id: int | None = Field(default=None, foreign_key="host.id")
    # quiesced: the guest agent froze the guest's filesystems while the copy began;
    # crash-consistent: a running guest's disk as a power cut would leave it (no agent answered);
    # stopped: copied from a disk nothing was writing to; unknown: made before this was recorded.
    consistency: str = Field(default="unknown", max_length=32, sa_column_kwargs={"server_default": "unknown"})


class TrafficSample(SQLModel, table=True):
    """Bytes through a VPS's interface during one hour (R5.4-hours: least harmful maintenance
    hour from measured traffic).  ``rx``/``tx`` are deltas over the hour starting ``hour``."""

    vps_id: str = Field(foreign_key="vps.id", primary_key=True, max_length=36)
    hour: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), primary_key=True))
    rx_bytes: int = bytes_field()
    tx_bytes: int = bytes_field()


class TrafficCounter(SQLModel, table=True):
    """The last interface counters read for a VPS, to turn the next reading into a delta."""

    vps_id: str = Field(foreign_key="vps.id", primary_key=True, max_length=36)
    rx_bytes: int = bytes_field()
    tx_bytes: int = bytes_field()
    read_at: datetime | None = time_field()
