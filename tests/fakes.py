"""An in-memory hypervisor driver keeping the promises of orchestrator/hypervisor/base.py, for
tests that need many operations run end to end quickly (the sweep of staff measures).  Never the
only proof of what a hypervisor does: every operation also runs on the real libvirtd in
tests/integration."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.core.errors import HypervisorError
from orchestrator.hypervisor import (
    ConsoleStream,
    DiskConfig,
    DomainConfig,
    DomainInfo,
    DomainState,
    FilterRef,
    HostInfo,
    InterfaceConfig,
    Lease,
    LiveBackup,
    NetworkConfig,
    NwFilter,
    PoolConfig,
    PoolInfo,
    VolumeConfig,
)

GIB = 1 << 30


@dataclass
class FakeDomain:
    config: DomainConfig
    state: DomainState = DomainState.shutoff
    link_up: bool = True
    filter: FilterRef | None = None  # the running domain's interface filter
    vcpus: int = 0
    memory_mib: int = 0
    disks: list[str] = field(default_factory=list)
    guest_agent: bool = False  # a guest agent answers (freezes the filesystems for a backup)


LEASES: dict[str, str] = {}  # MAC -> address, over every fake host of the process


@dataclass
class FakeHost:
    """What the fake hypervisor holds: pools of volumes (name -> capacity), domains, nwfilters
    (libvirt's clean-traffic among them), each network's DHCP host entries (MAC -> address) and
    the leases a test made its DHCP server hold."""

    pools: dict[str, dict[str, int]] = field(default_factory=dict)
    domains: dict[str, FakeDomain] = field(default_factory=dict)
    filters: dict[str, NwFilter | None] = field(default_factory=lambda: {"clean-traffic": None})
    pinned: dict[str, dict[str, str]] = field(default_factory=dict)
    leases: dict[str, dict[str, Lease]] = field(default_factory=dict)  # network -> address -> lease

    def snapshot(self) -> FakeHost:
        return copy.deepcopy(self)


class FakeDriver:
    def __init__(self, uri: str, host: FakeHost | None = None) -> None:
        self.uri = uri
        self.state = host or FakeHost()

    # --- host, storage, network --------------------------------------------------------------
    def host_info(self) -> HostInfo:
        return HostInfo(hostname="fake", vcpus=64, memory_mib=262_144, domain_type="qemu")

    def ensure_pool(self, config: PoolConfig) -> PoolInfo:
        self.state.pools.setdefault(config.name, {})
        return PoolInfo(config.name, config.path, 10_000 * GIB, 10_000 * GIB)

    def ensure_network(self, config: NetworkConfig) -> None:
        return None

    def ensure_filter(self, config: NwFilter) -> None:
        self.state.filters[config.name] = config

    def require_filter(self, name: str) -> None:
        if name not in self.state.filters:
            raise HypervisorError(f"{self.uri} has no nwfilter {name!r}")

    def pin_address(self, network: str, mac: str, address: str) -> None:
        entries = self.state.pinned.setdefault(network, {})
        if any(ip == address and other != mac.lower() for other, ip in entries.items()):
            raise HypervisorError(f"{address} is pinned for another MAC in {network}")
        entries[mac.lower()] = address

    def unpin_address(self, network: str, mac: str) -> bool:
        return self.state.pinned.get(network, {}).pop(mac.lower(), None) is not None

    def lease_of(self, network: str, address: str) -> Lease | None:
        """The leases a test gave the network (``FakeHost.leases``): the fake's DHCP server keeps
        no others."""
        return self.state.leases.get(network, {}).get(address)

    def _pool(self, pool: str) -> dict[str, int]:
        if pool not in self.state.pools:
            raise HypervisorError(f"no pool {pool}")
        return self.state.pools[pool]

    def volume_path(self, pool: str, name: str) -> str | None:
        return f"/fake/{pool}/{name}" if name in self._pool(pool) else None

    def upload_volume(self, pool: str, config: VolumeConfig, source: Path, sha256: str | None = None) -> str:
        return self.create_volume(pool, config)

    def create_volume(self, pool: str, config: VolumeConfig, content: bytes | None = None) -> str:
        volumes = self._pool(pool)
        if config.name in volumes and volumes[config.name] != config.capacity_bytes:
            raise HypervisorError(f"volume {config.name} exists with another size")
        volumes[config.name] = config.capacity_bytes
        return f"/fake/{pool}/{config.name}"

    def list_volumes(self, pool: str) -> list[str]:
        return sorted(self._pool(pool))

    def delete_volume(self, pool: str, name: str, wipe: bool = False) -> bool:
        return self._pool(pool).pop(name, None) is not None

    def volume_capacity(self, pool: str, name: str) -> int | None:
        return self._pool(pool).get(name)

    def resize_volume(self, pool: str, name: str, size_bytes: int) -> None:
        volumes = self._pool(pool)
        if size_bytes < volumes.get(name, 0):
            raise HypervisorError("volumes never shrink")
        volumes[name] = size_bytes

    def copy_volume(self, src_pool: str, src: str, dst_pool: str, dst: str) -> int:
        size = self._pool(src_pool)[src]
        self._pool(dst_pool)[dst] = size
        return size

    def download_volume(self, pool: str, name: str) -> Iterator[bytes]:
        yield b"QFI\xfb" + bytes(min(self._pool(pool)[name], 4096) - 4)

    def describe_volume(self, pool: str, name: str) -> VolumeConfig | None:
        size = self._pool(pool).get(name)
        return None if size is None else VolumeConfig(name=name, capacity_bytes=size)

    def receive_volume(self, pool: str, config: VolumeConfig, chunks: Iterable[bytes],
                       progress: Callable[[int], None] | None = None) -> int:
        self.create_volume(pool, config)
        written = 0
        for chunk in chunks:
            written += len(chunk)
            if progress is not None:
                progress(written)
        return written

    # --- domains -----------------------------------------------------------------------------
    def _domain(self, uuid: str) -> FakeDomain:
        if uuid not in self.state.domains:
            raise HypervisorError(f"no domain {uuid}")
        return self.state.domains[uuid]

    def domain(self, uuid: str) -> DomainInfo | None:
        found = self.state.domains.get(uuid)
        return DomainInfo(uuid, found.config.name, found.state) if found else None

    def list_domains(self) -> list[DomainInfo]:
        return [DomainInfo(u, d.config.name, d.state) for u, d in self.state.domains.items()]

    def define_domain(self, config: DomainConfig) -> None:
        existing = self.state.domains.get(config.uuid)
        if existing is None:
            self.state.domains[config.uuid] = FakeDomain(config)
        else:
            existing.config = config

    def start_domain(self, uuid: str) -> None:
        dom = self._domain(uuid)
        if dom.state == DomainState.shutoff:
            dom.state = DomainState.running
            dom.vcpus, dom.memory_mib = dom.config.vcpus, dom.config.memory_mib
            dom.link_up = all(i.link_up for i in dom.config.interfaces)
            dom.filter = dom.config.interfaces[0].filter if dom.config.interfaces else None
            dom.disks = [d.target for d in dom.config.disks]

    def destroy_domain(self, uuid: str) -> None:
        if uuid in self.state.domains:
            self.state.domains[uuid].state = DomainState.shutoff

    def undefine_domain(self, uuid: str) -> None:
        self.state.domains.pop(uuid, None)

    def interface_addresses(self, uuid: str) -> list[str]:
        """What the network's DHCP server leased: the address pinned for the MAC, else the next
        free one of the (one, site-wide) test subnet, the same for a MAC every time."""
        dom = self._domain(uuid)
        if dom.state != DomainState.running or not dom.link_up:
            return []
        mac = dom.config.interfaces[0].mac.lower() if dom.config.interfaces else uuid
        for entries in self.state.pinned.values():
            if mac in entries:
                return [entries[mac]]
        if mac not in LEASES:
            LEASES[mac] = f"192.0.2.{10 + len(LEASES) % 240}"
        return [LEASES[mac]]

    def shutdown_domain(self, uuid: str) -> None:
        self.destroy_domain(uuid)  # the fake guest always hears the button

    def reboot_domain(self, uuid: str, hard: bool) -> None:
        self._domain(uuid)

    def suspend_domain(self, uuid: str) -> None:
        dom = self._domain(uuid)
        if dom.state == DomainState.running:
            dom.state = DomainState.paused

    def resume_domain(self, uuid: str) -> None:
        dom = self._domain(uuid)
        if dom.state == DomainState.paused:
            dom.state = DomainState.running

    def set_vcpus_live(self, uuid: str, count: int) -> None:
        self._domain(uuid).vcpus = count

    def set_memory_live(self, uuid: str, mib: int) -> None:
        self._domain(uuid).memory_mib = mib

    def memory_stats(self, uuid: str) -> dict[str, int]:
        return {"actual": self._domain(uuid).memory_mib * 1024}

    def block_resize_live(self, uuid: str, target: str, size_bytes: int) -> None:
        dom = self._domain(uuid)
        disk = next(d for d in dom.config.disks if d.target == target)
        self.resize_volume(disk.pool, disk.volume, size_bytes)

    def attach_disk_live(self, uuid: str, disk: DiskConfig) -> None:
        dom = self._domain(uuid)
        if disk.target not in dom.disks:
            dom.disks.append(disk.target)

    def detach_disk_live(self, uuid: str, disk: DiskConfig) -> None:
        dom = self._domain(uuid)
        if disk.target in dom.disks:
            dom.disks.remove(disk.target)

    def set_link_live(self, uuid: str, interface: InterfaceConfig) -> None:
        dom = self._domain(uuid)
        dom.link_up, dom.filter = interface.link_up, interface.filter

    def live_filter(self, uuid: str, mac: str) -> FilterRef | None:
        dom = self.state.domains.get(uuid)
        return None if dom is None or dom.state == DomainState.shutoff else dom.filter

    def live_link_up(self, uuid: str, mac: str) -> bool | None:
        dom = self.state.domains.get(uuid)
        return None if dom is None or dom.state == DomainState.shutoff else dom.link_up

    def interface_counters(self, uuid: str) -> tuple[int, int] | None:
        dom = self.state.domains.get(uuid)
        return (0, 0) if dom is not None and dom.state == DomainState.running else None

    def backup_disk_live(self, uuid: str, target: str, dst_pool: str, dst: str, timeout: float,
                         quiesce: bool = True) -> LiveBackup:
        dom = self._domain(uuid)
        disk = next(d for d in dom.config.disks if d.target == target)
        size = self.copy_volume(disk.pool, disk.volume, dst_pool, dst)
        if quiesce and dom.guest_agent:
            return LiveBackup(size, quiesced=True, frozen=1, detail="quiesced: the fake agent froze 1 filesystem")
        return LiveBackup(size, quiesced=False, frozen=0, detail="crash-consistent: no guest agent answered")

    def open_console(self, uuid: str) -> ConsoleStream:
        raise HypervisorError("the fake hypervisor has no console")

    def close(self) -> None:
        return None
