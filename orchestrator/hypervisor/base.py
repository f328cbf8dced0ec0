"""The promises every hypervisor driver keeps.

Every mutating call is idempotent where it can be, so that an operation resumed after a crash
can simply run its step again:
- creating something that already exists with the same identity is not an error for
  ``ensure_*``; ``create_*`` calls raise only when asked to create over a different object;
- deleting, destroying or undefining something that does not exist succeeds;
- errors come out as ``HypervisorError`` (or ``TransientError`` when a retry may succeed), never
  as a library's own exception type.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from orchestrator.hypervisor.config import (
    DiskConfig,
    DomainConfig,
    FilterRef,
    InterfaceConfig,
    NetworkConfig,
    NwFilter,
    PoolConfig,
    VolumeConfig,
)


class DomainState(enum.StrEnum):
    running = "running"
    paused = "paused"
    shutoff = "shutoff"
    crashed = "crashed"
    other = "other"


@dataclass(frozen=True)
class HostInfo:
    hostname: str
    vcpus: int
    memory_mib: int
    domain_type: str  # best working type: kvm if the host can, else qemu


@dataclass(frozen=True)
class PoolInfo:
    name: str
    path: str
    capacity_bytes: int
    available_bytes: int


@dataclass(frozen=True)
class DomainInfo:
    uuid: str
    name: str
    state: DomainState


@dataclass(frozen=True)
class Lease:
    """A lease the network's DHCP server holds: ``address`` is ``mac``'s until ``expires_at``
    (UTC); the server gives it to no other MAC before then, a DHCP host entry notwithstanding."""

    address: str
    mac: str
    expires_at: datetime


@dataclass(frozen=True)
class LiveBackup:
    """A copy of a running domain's disk: ``quiesced`` when the guest agent froze the guest's
    filesystems (``frozen`` of them) while the copy's point in time was taken, else a
    crash-consistent copy; ``detail`` says which, and why (the agent's answer)."""

    size_bytes: int
    quiesced: bool
    frozen: int
    detail: str


class ConsoleStream(Protocol):
    def read(self) -> bytes:
        """Blocks until the guest writes something; b"" once the console is closed."""
        ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class HypervisorDriver(Protocol):
    uri: str

    def host_info(self) -> HostInfo: ...

    def ensure_pool(self, config: PoolConfig) -> PoolInfo: ...

    def ensure_network(self, config: NetworkConfig) -> None: ...

    def ensure_filter(self, config: NwFilter) -> None:
        """Define the nwfilter, or update its rules; rules already as asked are left alone (libvirt
        rebuilds the rules of every interface using a filter that is defined again)."""
        ...

    def require_filter(self, name: str) -> None:
        """HypervisorError unless the host has that nwfilter (one libvirt ships, such as clean-traffic)."""
        ...

    def pin_address(self, network: str, mac: str, address: str) -> None:
        """A DHCP host entry in the network (live and persistent): its DHCP server gives ``address``
        to ``mac`` and to no other; an entry of that MAC with another address is replaced."""
        ...

    def unpin_address(self, network: str, mac: str) -> bool:
        """Remove the MAC's DHCP host entry; False when there was none (or no such network)."""
        ...

    def lease_of(self, network: str, address: str) -> Lease | None:
        """The DHCP server's current lease of ``address`` in the network (None: none, or no such
        network)."""
        ...

    def volume_path(self, pool: str, name: str) -> str | None:
        """The volume's path on the host, or None when it does not exist."""
        ...

    def upload_volume(self, pool: str, config: VolumeConfig, source: Path, sha256: str | None = None) -> str:
        """Create the volume and fill it with the local file's bytes; returns its path.  With
        ``sha256``, the volume is read back and must have that digest (TransientError, and no
        volume left, otherwise)."""
        ...

    def create_volume(self, pool: str, config: VolumeConfig, content: bytes | None = None) -> str: ...

    def list_volumes(self, pool: str) -> list[str]: ...

    def delete_volume(self, pool: str, name: str, wipe: bool = False) -> bool:
        """Delete (after zeroing when ``wipe``); False when it did not exist."""
        ...

    def domain(self, uuid: str) -> DomainInfo | None: ...

    def list_domains(self) -> list[DomainInfo]: ...

    def define_domain(self, config: DomainConfig) -> None: ...

    def start_domain(self, uuid: str) -> None: ...

    def destroy_domain(self, uuid: str) -> None: ...

    def undefine_domain(self, uuid: str) -> None: ...

    def interface_addresses(self, uuid: str) -> list[str]: ...

    # --- power ---------------------------------------------------------------------------
    def shutdown_domain(self, uuid: str) -> None:
        """Ask the guest to power off (ACPI); returns at once."""
        ...

    def reboot_domain(self, uuid: str, hard: bool) -> None:
        """Soft: ACPI reboot request to the guest.  Hard: reset the virtual machine."""
        ...

    def suspend_domain(self, uuid: str) -> None: ...

    def resume_domain(self, uuid: str) -> None: ...

    # --- live changes (the persistent definition is changed by define_domain) -------------
    def set_vcpus_live(self, uuid: str, count: int) -> None: ...

    def set_memory_live(self, uuid: str, mib: int) -> None: ...

    def memory_stats(self, uuid: str) -> dict[str, int]: ...

    def block_resize_live(self, uuid: str, target: str, size_bytes: int) -> None: ...

    def resize_volume(self, pool: str, name: str, size_bytes: int) -> None:
        """Grow a volume of a stopped domain; never shrinks (refused)."""
        ...

    def volume_capacity(self, pool: str, name: str) -> int | None: ...

    def attach_disk_live(self, uuid: str, disk: DiskConfig) -> None:
        """Hot-plug a disk into the running domain (no-op if its target is already there)."""
        ...

    def detach_disk_live(self, uuid: str, disk: DiskConfig) -> None:
        """Unplug a disk from the running domain (no-op if its target is not there)."""
        ...

    def set_link_live(self, uuid: str, interface: InterfaceConfig) -> None:
        """Apply the interface's link state (carrier up or down) and its nwfilter reference to the
        running domain."""
        ...

    def live_filter(self, uuid: str, mac: str) -> FilterRef | None:
        """The nwfilter reference of the running domain's interface with that MAC (None when the
        domain is not running, or the interface has no filter)."""
        ...

    def live_link_up(self, uuid: str, mac: str) -> bool | None:
        """The running domain's link state for that MAC (None when not running)."""
        ...

    def interface_counters(self, uuid: str) -> tuple[int, int] | None:
        """Bytes received and sent by the running domain's network interfaces since they were
        created (they start again from zero when the domain is started again); None when the
        domain is missing or not running."""
        ...

    # --- copies ----------------------------------------------------------------------------
    def copy_volume(self, src_pool: str, src: str, dst_pool: str, dst: str) -> int:
        """A standalone qcow2 copy (backing chain flattened) of a volume not in use; returns bytes."""
        ...

    def backup_disk_live(self, uuid: str, target: str, dst_pool: str, dst: str, timeout: float,
                         quiesce: bool = True) -> LiveBackup:
        """A point-in-time copy of a running domain's disk (libvirt push-mode backup, the guest keeps
        running).  With ``quiesce`` the guest agent is asked first to freeze the guest's filesystems
        (flushed, writes held) and they are thawed as soon as the copy's point in time is taken,
        whatever happens; when no agent answers the copy is crash-consistent (``quiesced`` False)."""
        ...

    def download_volume(self, pool: str, name: str) -> Iterator[bytes]:
        """The volume's bytes, streamed through the libvirt connection."""
        ...

    def describe_volume(self, pool: str, name: str) -> VolumeConfig | None:
        """What it takes to make the same volume elsewhere (capacity, format, backing file), or
        None when it does not exist."""
        ...

    def receive_volume(self, pool: str, config: VolumeConfig, chunks: Iterable[bytes],
                       progress: Callable[[int], None] | None = None) -> int:
        """Create the volume and fill it with ``chunks`` (another host's ``download_volume``)
        through the libvirt connection, calling ``progress`` with the bytes written so far;
        returns the bytes written.  A copy that fails leaves no volume behind."""
        ...

    def migrate_live(self, uuid: str, target: HypervisorDriver, migrate_uri: str, disks: list[str],
                     progress: Callable[[int, int], None] | None = None, timeout: float = 1800.0,
                     bandwidth_mib: int = 0) -> None:
        """Move the running domain to ``target``'s host while it runs (libvirt live migration with
        non-shared storage: ``disks`` mirrored into the volumes made beforehand on the target, then
        memory; the target's QEMU listens at ``migrate_uri``, ``tcp://ADDRESS``).  Defined there,
        undefined here once it runs there; ``progress(bytes done, bytes in all)`` while it goes;
        ``bandwidth_mib``: MiB/s at most (0: no limit).  A failure leaves it running here."""
        ...

    # --- console ---------------------------------------------------------------------------
    def open_console(self, uuid: str) -> ConsoleStream:
        """The domain's serial console as a byte stream (taking it over from any other client)."""
        ...

    def close(self) -> None: ...
