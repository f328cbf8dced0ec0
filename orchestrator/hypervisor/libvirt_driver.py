"""The libvirt implementation of HypervisorDriver: the only module that imports ``libvirt``."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import libvirt

from orchestrator.core import faults
from orchestrator.core.errors import HypervisorError, StorageFull, TransientError
from orchestrator.hypervisor.base import DomainInfo, DomainState, HostInfo, Lease, LiveBackup, PoolInfo
from orchestrator.hypervisor.config import (
    BackupConfig,
    DhcpHostConfig,
    DiskConfig,
    DomainConfig,
    FilterRef,
    InterfaceConfig,
    NetworkConfig,
    NwFilter,
    PoolConfig,
    VolumeConfig,
    parse_dhcp_hosts,
    parse_filter_ref,
    parse_link_state,
)

log = logging.getLogger(__name__)

# libvirt prints every error on stderr by default; we turn them into exceptions instead.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

_TRANSIENT = {
    libvirt.VIR_ERR_NO_CONNECT,
    libvirt.VIR_ERR_RPC,
    libvirt.VIR_ERR_SYSTEM_ERROR,
    libvirt.VIR_ERR_OPERATION_TIMEOUT,
    libvirt.VIR_ERR_AGENT_UNRESPONSIVE,
}
_MISSING = {
    libvirt.VIR_ERR_NO_DOMAIN,
    libvirt.VIR_ERR_NO_STORAGE_VOL,
    libvirt.VIR_ERR_NO_STORAGE_POOL,
    libvirt.VIR_ERR_NO_NETWORK,
}
_STATES = {
    libvirt.VIR_DOMAIN_RUNNING: DomainState.running,
    libvirt.VIR_DOMAIN_BLOCKED: DomainState.running,
    libvirt.VIR_DOMAIN_PAUSED: DomainState.paused,
    libvirt.VIR_DOMAIN_PMSUSPENDED: DomainState.paused,
    libvirt.VIR_DOMAIN_SHUTDOWN: DomainState.running,  # shutting down: still running
    libvirt.VIR_DOMAIN_SHUTOFF: DomainState.shutoff,
    libvirt.VIR_DOMAIN_CRASHED: DomainState.crashed,
}
_CHUNK = 1 << 20
T = TypeVar("T")


# strerror(ENOSPC): what libvirt, qemu-img and QEMU say, whichever of them met the full filesystem.
NO_SPACE = "No space left on device"


def _out_of_space(message: str, pool: str | None, uri: str) -> StorageFull:
    where = f"storage pool '{pool}' on {uri}" if pool else f"host {uri}"
    return StorageFull(f"{where} is out of space: {message.strip()}")


def _translate(exc: libvirt.libvirtError, pool: str | None = None, uri: str = "") -> HypervisorError:
    """A libvirt error as ours: worth retrying, out of space (``pool``: the pool written to), or
    a plain refusal."""
    code = exc.get_error_code()
    message = exc.get_error_message() or str(exc)
    if NO_SPACE in message:
        return _out_of_space(message, pool, uri)
    if code in _TRANSIENT:
        # Which host's daemon broke off ("Cannot write data: Broken pipe" says nothing of it).
        return TransientError(f"libvirt at {uri}: {message}" if uri else message)
    return HypervisorError(message)


def _network(conn: libvirt.virConnect, name: str) -> libvirt.virNetwork | None:
    """The network by that name; None when the host has none."""
    try:
        return conn.networkLookupByName(name)
    except libvirt.libvirtError as exc:
        if _is_missing(exc):
            return None
        raise


def _is_missing(exc: libvirt.libvirtError) -> bool:
    return exc.get_error_code() in _MISSING


class LibvirtDriver:
    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._conn: libvirt.virConnect | None = None
        self._lock = threading.Lock()

    # --- connection ------------------------------------------------------------------------
    def _connection(self) -> libvirt.virConnect:
        with self._lock:
            if self._conn is not None:
                try:
                    if self._conn.isAlive():
                        return self._conn
                except libvirt.libvirtError:
                    pass
                self._conn = None
            try:
                self._conn = libvirt.open(self.uri)
            except libvirt.libvirtError as exc:
                raise TransientError(f"cannot connect to {self.uri}: {exc}") from exc
            return self._conn

    def _call(self, fn: Callable[[libvirt.virConnect], T], pool: str | None = None) -> T:
        """``fn`` on the connection, libvirt's errors translated (``pool``: the one it writes to,
        named when it is out of space)."""
        try:
            return fn(self._connection())
        except libvirt.libvirtError as exc:
            raise _translate(exc, pool, self.uri) from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except libvirt.libvirtError:
                    pass
                self._conn = None

    # --- host ------------------------------------------------------------------------------
    def host_info(self) -> HostInfo:
        def query(conn: libvirt.virConnect) -> HostInfo:
            _model, memory_mib, cpus, *_ = conn.getInfo()
            return HostInfo(
                hostname=conn.getHostname(),
                vcpus=int(cpus),
                memory_mib=int(memory_mib),
                domain_type=self._best_domain_type(conn),
            )

        return self._call(query)

    @staticmethod
    def _best_domain_type(conn: libvirt.virConnect) -> str:
        # Ask libvirt rather than look for /dev/kvm: the device can exist while KVM is unusable
        # (the start-up script then hides it from libvirtd).
        try:
            conn.getDomainCapabilities(None, "x86_64", None, "kvm", 0)
            return "kvm"
        except libvirt.libvirtError:
            return "qemu"

    # --- storage ---------------------------------------------------------------------------
    def ensure_pool(self, config: PoolConfig) -> PoolInfo:
        def ensure(conn: libvirt.virConnect) -> PoolInfo:
            try:
                pool = conn.storagePoolLookupByName(config.name)
            except libvirt.libvirtError as exc:
                if not _is_missing(exc):
                    raise
                pool = conn.storagePoolDefineXML(config.to_xml(), 0)
                pool.build(0)
            if not pool.isActive():
                pool.create(0)
            pool.setAutostart(1)
            refresh_pool(pool)
            _state, capacity, _allocation, available = pool.info()
            return PoolInfo(config.name, config.path, int(capacity), int(available))

        return self._call(ensure)

    def _pool(self, conn: libvirt.virConnect, name: str) -> libvirt.virStoragePool:
        pool = conn.storagePoolLookupByName(name)
        if not pool.isActive():
            pool.create(0)
        return pool

    def volume_path(self, pool: str, name: str) -> str | None:
        def lookup(conn: libvirt.virConnect) -> str | None:
            try:
                return str(self._pool(conn, pool).storageVolLookupByName(name).path())
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
                    return None
                raise

        return self._call(lookup)

    def create_volume(self, pool: str, config: VolumeConfig, content: bytes | None = None) -> str:
        def create(conn: libvirt.virConnect) -> str:
            vol = self._pool(conn, pool).createXML(config.to_xml(), 0)
            if content is not None:
                try:
                    self._send(conn, vol, len(content), _bytes_reader(content))
                except BaseException:
                    vol.delete(0)
                    raise
            return str(vol.path())

        return self._call(create, pool=pool)

    def upload_volume(self, pool: str, config: VolumeConfig, source: Path, sha256: str | None = None) -> str:
        size = source.stat().st_size

        def upload(conn: libvirt.virConnect) -> str:
            vol = self._pool(conn, pool).createXML(config.to_xml(), 0)
            try:
                with source.open("rb") as handle:
                    self._send(conn, vol, size, lambda n: handle.read(n))
                if sha256 is not None:
                    # Read back through the same connection: the host holds the file, byte for byte.
                    digest = hashlib.sha256()
                    stream = conn.newStream(0)
                    vol.download(stream, 0, 0, 0)
                    for chunk in _stream_chunks(stream, size):
                        digest.update(chunk)
                    if digest.hexdigest() != sha256:
                        raise TransientError(f"volume {config.name} reached the host damaged (sha256 "
                                             f"{digest.hexdigest()[:16]}..., expected {sha256[:16]}...)")
            except BaseException:
                vol.delete(0)
                raise
            return str(vol.path())

        return self._call(upload, pool=pool)

    @staticmethod
    def _send(
        conn: libvirt.virConnect, vol: libvirt.virStorageVol, size: int, read: Callable[[int], bytes]
    ) -> None:
        # A stream goes through the libvirt connection, so this works on a remote host too.
        stream = conn.newStream(0)
        vol.upload(stream, 0, size, 0)
        sent = 0

        def chunk(_stream: libvirt.virStream, nbytes: int, _opaque: object) -> bytes:
            nonlocal sent
            if sent:
                faults.during()  # a crash test's point: the upload has begun, not ended
            data = read(min(nbytes, _CHUNK))
            sent += len(data)
            return data

        try:
            stream.sendAll(chunk, None)
            stream.finish()
        except BaseException:
            _abort_quietly(stream)
            raise

    def list_volumes(self, pool: str) -> list[str]:
        def names(conn: libvirt.virConnect) -> list[str]:
            handle = self._pool(conn, pool)
            handle.refresh(0)
            return sorted(str(n) for n in handle.listVolumes())

        return self._call(names)

    def delete_volume(self, pool: str, name: str, wipe: bool = False) -> bool:
        return self._call(lambda conn: _delete_if_present(self._pool(conn, pool), name, wipe))

    # --- networks --------------------------------------------------------------------------
    def ensure_network(self, config: NetworkConfig) -> None:
        def ensure(conn: libvirt.virConnect) -> None:
            try:
                net = conn.networkLookupByName(config.name)
            except libvirt.libvirtError as exc:
                if not _is_missing(exc):
                    raise
                net = conn.networkDefineXML(config.to_xml())
            if not net.isActive():
                net.create()
            net.setAutostart(1)

        self._call(ensure)

    def pin_address(self, network: str, mac: str, address: str) -> None:
        def pin(conn: libvirt.virConnect) -> None:
            net = conn.networkLookupByName(network)
            pinned = parse_dhcp_hosts(net.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE)).get(mac.lower())
            if pinned == address:
                return
            command = libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST if pinned is None \
                else libvirt.VIR_NETWORK_UPDATE_COMMAND_MODIFY
            net.update(command, libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST, -1,
                       DhcpHostConfig(mac=mac, ip=address).to_xml(), _network_update_flags(net))

        self._call(pin)

    def unpin_address(self, network: str, mac: str) -> bool:
        def unpin(conn: libvirt.virConnect) -> bool:
            net = _network(conn, network)
            if net is None:
                return False
            pinned = parse_dhcp_hosts(net.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE)).get(mac.lower())
            if pinned is None:
                return False
            net.update(libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE, libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST, -1,
                       DhcpHostConfig(mac=mac, ip=pinned).to_xml(), _network_update_flags(net))
            return True

        return self._call(unpin)

    def lease_of(self, network: str, address: str) -> Lease | None:
        def query(conn: libvirt.virConnect) -> Lease | None:
            net = _network(conn, network)
            if net is None or not net.isActive():
                return None
            for lease in net.DHCPLeases() or []:  # the server's own record: expired ones are not listed
                if lease.get("ipaddr") == address:
                    expires = datetime.fromtimestamp(int(lease.get("expirytime") or 0), tz=UTC)
                    return Lease(address=address, mac=str(lease.get("mac", "")).lower(), expires_at=expires)
            return None

        return self._call(query)

    # --- network filters -------------------------------------------------------------------
    def ensure_filter(self, config: NwFilter) -> None:
        def define(conn: libvirt.virConnect) -> None:
            # Defining again under the same UUID updates the rules; libvirt re-applies them to
            # every interface using the filter, so a filter already as asked is left alone.
            try:
                existing = conn.nwfilterLookupByName(config.name)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_NWFILTER:
                    raise
                existing = None
            uuid = existing.UUIDString() if existing is not None else None
            if existing is not None and _same_filter(existing.XMLDesc(0), config.to_xml(uuid)):
                return
            conn.nwfilterDefineXML(config.to_xml(uuid))

        self._call(define)

    def require_filter(self, name: str) -> None:
        def lookup(conn: libvirt.virConnect) -> None:
            try:
                conn.nwfilterLookupByName(name)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_NWFILTER:
                    raise
                raise HypervisorError(
                    f"{self.uri} has no nwfilter {name!r}: guests cannot be isolated from each other "
                    "(libvirt ships it: Debian package libvirt-daemon-config-nwfilter)") from exc

        self._call(lookup)

    # --- domains ---------------------------------------------------------------------------
    def _lookup(self, conn: libvirt.virConnect, uuid: str) -> libvirt.virDomain | None:
        try:
            return conn.lookupByUUIDString(uuid)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise

    @staticmethod
    def _info(dom: libvirt.virDomain) -> DomainInfo:
        state, _reason = dom.state(0)
        return DomainInfo(dom.UUIDString(), dom.name(), _STATES.get(state, DomainState.other))

    def domain(self, uuid: str) -> DomainInfo | None:
        def lookup(conn: libvirt.virConnect) -> DomainInfo | None:
            dom = self._lookup(conn, uuid)
            return None if dom is None else self._info(dom)

        return self._call(lookup)

    def list_domains(self) -> list[DomainInfo]:
        """Every domain of the host and its state in one round trip (getAllDomainStats; a
        domain's name and UUID travel with it)."""
        def stats(conn: libvirt.virConnect) -> list[DomainInfo]:
            return [DomainInfo(dom.UUIDString(), dom.name(), _STATES.get(int(values.get("state.state", -1)),
                                                                        DomainState.other))
                    for dom, values in conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE, 0)]

        return self._call(stats)

    def define_domain(self, config: DomainConfig) -> None:
        self._call(lambda conn: conn.defineXML(config.to_xml()))

    def _with_domain(self, uuid: str, action: Callable[[libvirt.virDomain], Any]) -> None:
        def run(conn: libvirt.virConnect) -> None:
            dom = self._lookup(conn, uuid)
            if dom is not None:
                action(dom)

        self._call(run)

    def start_domain(self, uuid: str) -> None:
        def start(dom: libvirt.virDomain) -> None:
            if not dom.isActive():
                dom.create()

        self._running(uuid, start)

    def destroy_domain(self, uuid: str) -> None:
        def destroy(dom: libvirt.virDomain) -> None:
            if dom.isActive():
                dom.destroy()

        self._with_domain(uuid, destroy)

    def undefine_domain(self, uuid: str) -> None:
        flags = (
            libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
            | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
            | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
            | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
        )
        self._with_domain(uuid, lambda dom: dom.undefineFlags(flags))

    def interface_addresses(self, uuid: str) -> list[str]:
        def query(conn: libvirt.virConnect) -> list[str]:
            dom = self._lookup(conn, uuid)
            if dom is None or not dom.isActive():
                return []
            found = dom.interfaceAddresses(libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, 0)
            return sorted(
                {addr["addr"] for iface in (found or {}).values() for addr in iface.get("addrs") or []}
            )

        return self._call(query)


    # --- power ---------------------------------------------------------------------------
    def _running(self, uuid: str, action: Callable[[libvirt.virDomain], Any]) -> None:
        def run(conn: libvirt.virConnect) -> None:
            dom = self._lookup(conn, uuid)
            if dom is None:
                raise HypervisorError(f"domain {uuid} is not defined")
            action(dom)

        self._call(run)

    def shutdown_domain(self, uuid: str) -> None:
        def shutdown(dom: libvirt.virDomain) -> None:
            if dom.isActive():
                dom.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)

        self._running(uuid, shutdown)

    def reboot_domain(self, uuid: str, hard: bool) -> None:
        def reboot(dom: libvirt.virDomain) -> None:
            if hard:
                dom.reset(0)
            else:
                dom.reboot(libvirt.VIR_DOMAIN_REBOOT_ACPI_POWER_BTN)

        self._running(uuid, reboot)

    def suspend_domain(self, uuid: str) -> None:
        def suspend(dom: libvirt.virDomain) -> None:
            if dom.state(0)[0] != libvirt.VIR_DOMAIN_PAUSED:
                dom.suspend()

        self._running(uuid, suspend)

    def resume_domain(self, uuid: str) -> None:
        def resume(dom: libvirt.virDomain) -> None:
            if dom.state(0)[0] == libvirt.VIR_DOMAIN_PAUSED:
                dom.resume()

        self._running(uuid, resume)

    # --- live changes --------------------------------------------------------------------
    def set_vcpus_live(self, uuid: str, count: int) -> None:
        def set_vcpus(dom: libvirt.virDomain) -> None:
            if dom.vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_LIVE) != count:
                dom.setVcpusFlags(count, libvirt.VIR_DOMAIN_AFFECT_LIVE)

        self._running(uuid, set_vcpus)

    def set_memory_live(self, uuid: str, mib: int) -> None:
        self._running(uuid, lambda dom: dom.setMemoryFlags(mib * 1024, libvirt.VIR_DOMAIN_AFFECT_LIVE))

    def memory_stats(self, uuid: str) -> dict[str, int]:
        stats: dict[str, int] = {}
        self._running(uuid, lambda dom: stats.update(dom.memoryStats()))
        return stats

    def block_resize_live(self, uuid: str, target: str, size_bytes: int) -> None:
        def grow(dom: libvirt.virDomain) -> None:
            if dom.blockInfo(target, 0)[0] < size_bytes:
                dom.blockResize(target, size_bytes, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)

        self._running(uuid, grow)

    def volume_capacity(self, pool: str, name: str) -> int | None:
        def capacity(conn: libvirt.virConnect) -> int | None:
            try:
                return int(self._pool(conn, pool).storageVolLookupByName(name).info()[1])
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
                    return None
                raise

        return self._call(capacity)

    def resize_volume(self, pool: str, name: str, size_bytes: int) -> None:
        def resize(conn: libvirt.virConnect) -> None:
            vol = self._pool(conn, pool).storageVolLookupByName(name)
            current = int(vol.info()[1])
            if size_bytes < current:
                raise HypervisorError(f"refusing to shrink {name} from {current} to {size_bytes} bytes")
            if size_bytes > current:
                vol.resize(size_bytes, 0)

        self._call(resize, pool=pool)

    def _has_target(self, dom: libvirt.virDomain, target: str) -> bool:
        root = ET.fromstring(dom.XMLDesc(0))  # noqa: S314  (libvirt's own XML)
        return any(t.get("dev") == target for t in root.iter("target"))

    def attach_disk_live(self, uuid: str, disk: DiskConfig) -> None:
        def attach(dom: libvirt.virDomain) -> None:
            if dom.isActive() and not self._has_target(dom, disk.target):
                dom.attachDeviceFlags(disk.to_xml(), libvirt.VIR_DOMAIN_AFFECT_LIVE)

        self._running(uuid, attach)

    def detach_disk_live(self, uuid: str, disk: DiskConfig) -> None:
        def detach(dom: libvirt.virDomain) -> None:
            if not dom.isActive() or not self._has_target(dom, disk.target):
                return
            dom.detachDeviceFlags(disk.to_xml(), libvirt.VIR_DOMAIN_AFFECT_LIVE)
            # The guest must let go of the device; wait until it is really gone.
            deadline = time.monotonic() + 30
            while self._has_target(dom, disk.target):
                if time.monotonic() > deadline:
                    raise HypervisorError(f"the guest did not release {disk.target} within 30 s")
                time.sleep(0.2)

        self._running(uuid, detach)

    def set_link_live(self, uuid: str, interface: InterfaceConfig) -> None:
        def update(dom: libvirt.virDomain) -> None:
            if dom.isActive():
                dom.updateDeviceFlags(interface.to_xml(), libvirt.VIR_DOMAIN_AFFECT_LIVE)

        self._running(uuid, update)

    def live_filter(self, uuid: str, mac: str) -> FilterRef | None:
        def query(conn: libvirt.virConnect) -> FilterRef | None:
            dom = self._lookup(conn, uuid)
            if dom is None or not dom.isActive():
                return None
            return parse_filter_ref(dom.XMLDesc(0), mac)

        return self._call(query)

    def live_link_up(self, uuid: str, mac: str) -> bool | None:
        def query(conn: libvirt.virConnect) -> bool | None:
            dom = self._lookup(conn, uuid)
            if dom is None or not dom.isActive():
                return None
            return parse_link_state(dom.XMLDesc(0), mac)

        return self._call(query)

    def interface_counters(self, uuid: str) -> tuple[int, int] | None:
        def query(conn: libvirt.virConnect) -> tuple[int, int] | None:
            dom = self._lookup(conn, uuid)
            if dom is None or not dom.isActive():
                return None
            root = ET.fromstring(dom.XMLDesc(0))  # noqa: S314  (libvirt's own XML)
            devices = [t.get("dev") for t in root.findall("./devices/interface/target")]
            rx = tx = 0
            for dev in devices:
                if dev:
                    # (rx_bytes, rx_packets, rx_errs, rx_drop, tx_bytes, ...), seen from the guest
                    stats = dom.interfaceStats(dev)
                    rx, tx = rx + int(stats[0]), tx + int(stats[4])
            return rx, tx

        return self._call(query)


    # --- copies ----------------------------------------------------------------------------
    def copy_volume(self, src_pool: str, src: str, dst_pool: str, dst: str) -> int:
        def copy(conn: libvirt.virConnect) -> int:
            source = self._pool(conn, src_pool).storageVolLookupByName(src)
            target_pool = self._pool(conn, dst_pool)
            capacity = int(source.info()[1])
            config = VolumeConfig(name=dst, capacity_bytes=capacity)
            _delete_if_present(target_pool, dst)  # a copy left half-done by a crash
            made = target_pool.createXMLFrom(config.to_xml(), source, 0)
            return int(made.info()[2])

        return self._call(copy, pool=dst_pool)

    def backup_disk_live(self, uuid: str, target: str, dst_pool: str, dst: str, timeout: float,
                         quiesce: bool = True) -> LiveBackup:
        def backup(conn: libvirt.virConnect) -> LiveBackup:
            dom = self._lookup(conn, uuid)
            if dom is None or not dom.isActive():
                raise HypervisorError(f"domain {uuid} is not running")
            pool = self._pool(conn, dst_pool)
            path = _pool_path(pool) + "/" + dst
            if dom.jobInfo()[0] != libvirt.VIR_DOMAIN_JOB_NONE:
                dom.abortJob()  # a backup left running by a crashed worker: it still writes its file
                ends = time.monotonic() + 30
                while dom.jobInfo()[0] != libvirt.VIR_DOMAIN_JOB_NONE and time.monotonic() < ends:
                    time.sleep(0.1)
            _delete_if_present(pool, dst, unlisted=True)  # the file a crashed or failed copy left
            # The copy's point in time is when the backup job begins (QEMU copies each block
            # before the guest overwrites it): the filesystems stay frozen only that long.
            frozen, detail = _freeze(dom) if quiesce else (0, "crash-consistent: not asked to quiesce")
            try:
                dom.backupBegin(BackupConfig(target=target, path=path).to_xml(), None, 0)
            finally:
                if quiesce:
                    _thaw(dom, frozen)
            faults.during()  # a crash test's point: QEMU's backup job runs
            deadline = time.monotonic() + timeout
            while dom.jobInfo()[0] != libvirt.VIR_DOMAIN_JOB_NONE:
                if time.monotonic() > deadline:
                    dom.abortJob()
                    raise HypervisorError(f"backup of {target} did not finish within {timeout:.0f} s")
                time.sleep(0.1)
            stats = dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
            if stats.get("type") != libvirt.VIR_DOMAIN_JOB_COMPLETED:
                failure = f"backup of {target} failed: {stats.get('errmsg', 'unknown error')}"
                raise _out_of_space(failure, dst_pool, self.uri) if NO_SPACE in failure else HypervisorError(failure)
            refresh_pool(pool)
            size = int(pool.storageVolLookupByName(dst).info()[2])
            return LiveBackup(size_bytes=size, quiesced=frozen > 0, frozen=frozen, detail=detail)

        return self._call(backup, pool=dst_pool)

    def download_volume(self, pool: str, name: str) -> Iterator[bytes]:
        conn = self._connection()
        try:
            vol = self._pool(conn, pool).storageVolLookupByName(name)
            size = int(vol.info()[2])
            stream = conn.newStream(0)
            vol.download(stream, 0, 0, 0)
        except libvirt.libvirtError as exc:
            raise _translate(exc) from exc
        return _stream_chunks(stream, size)

    def migrate_live(self, uuid: str, target: Any, migrate_uri: str, disks: list[str],
                     progress: Callable[[int, int], None] | None = None, timeout: float = 1800.0,
                     bandwidth_mib: int = 0) -> None:
        if not isinstance(target, LibvirtDriver):
            raise HypervisorError("a live migration goes between two libvirt hosts")
        flags = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
                 | libvirt.VIR_MIGRATE_NON_SHARED_DISK | libvirt.VIR_MIGRATE_AUTO_CONVERGE)
        params: dict[str, Any] = {libvirt.VIR_MIGRATE_PARAM_URI: migrate_uri,
                                  libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS: disks}
        if bandwidth_mib:
            params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = bandwidth_mib
        listen = urlsplit(migrate_uri).hostname
        if listen:
            params[libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS] = listen
        conn, dconn = self._connection(), target._connection()
        try:
            dom = self._lookup(conn, uuid)
        except libvirt.libvirtError as exc:
            raise _translate(exc) from exc
        if dom is None or not dom.isActive():
            raise HypervisorError(f"domain {uuid} is not running here")
        failure: list[libvirt.libvirtError] = []

        def migrate() -> None:  # blocks until the domain runs there (or the migration failed)
            try:
                dom.migrate3(dconn, params, flags)
            except libvirt.libvirtError as exc:
                failure.append(exc)

        mover = threading.Thread(target=migrate, name=f"migrate-{uuid}", daemon=True)
        mover.start()
        deadline = time.monotonic() + timeout
        while mover.is_alive():
            mover.join(0.2)
            if not mover.is_alive():
                break
            with contextlib.suppress(libvirt.libvirtError):
                stats = dom.jobStats(0)
                if stats and stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE) != libvirt.VIR_DOMAIN_JOB_NONE:
                    faults.during()  # a crash test's point: the migration is under way
                if progress is not None and stats:
                    progress(int(stats.get("data_processed", 0)), int(stats.get("data_total", 0)))
            if time.monotonic() > deadline:
                with contextlib.suppress(libvirt.libvirtError):
                    dom.abortJob()
                mover.join(30.0)
                raise HypervisorError(f"the live migration did not end within {timeout:.0f} s: aborted")
        if failure:
            raise _translate(failure[0]) from failure[0]

    def describe_volume(self, pool: str, name: str) -> VolumeConfig | None:
        def describe(conn: libvirt.virConnect) -> VolumeConfig | None:
            try:
                vol = self._pool(conn, pool).storageVolLookupByName(name)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
                    return None
                raise
            root = ET.fromstring(vol.XMLDesc(0))  # noqa: S314  (libvirt's own XML)
            fmt = root.find("target/format")
            backing = root.findtext("backingStore/path")
            backing_format = root.find("backingStore/format")
            return VolumeConfig(
                name=name, capacity_bytes=int(vol.info()[1]),
                format=fmt.get("type", "raw") if fmt is not None else "raw",
                backing_path=backing or None,
                backing_format=backing_format.get("type", "qcow2") if backing_format is not None else "qcow2")

        return self._call(describe)

    def receive_volume(self, pool: str, config: VolumeConfig, chunks: Iterable[bytes],
                       progress: Callable[[int], None] | None = None) -> int:
        def receive(conn: libvirt.virConnect) -> int:
            vol = self._pool(conn, pool).createXML(config.to_xml(), 0)
            written = 0
            try:
                stream = conn.newStream(0)
                vol.upload(stream, 0, 0, 0)  # 0: as many bytes as the stream brings
                try:
                    for chunk in chunks:
                        view = memoryview(chunk)
                        while view:
                            sent = stream.send(view.tobytes())
                            if sent < 0:
                                raise HypervisorError(f"volume {config.name}: the stream refused data")
                            view = view[sent:]
                        written += len(chunk)
                        if progress is not None:
                            progress(written)
                        faults.during()
                    stream.finish()
                except BaseException:
                    _abort_quietly(stream)
                    raise
            except BaseException:
                with contextlib.suppress(libvirt.libvirtError):
                    vol.delete(0)
                raise
            return written

        return self._call(receive, pool=pool)


    # --- console ---------------------------------------------------------------------------
    def open_console(self, uuid: str) -> LibvirtConsole:
        def open_(conn: libvirt.virConnect) -> LibvirtConsole:
            dom = self._lookup(conn, uuid)
            if dom is None or not dom.isActive():
                raise HypervisorError("the VPS is not running: no console")
            # A connection of its own: a blocked read must not hold up the driver's other calls.
            console_conn = libvirt.open(self.uri)
            stream = console_conn.newStream(0)
            console_conn.lookupByUUIDString(uuid).openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
            return LibvirtConsole(console_conn, stream)

        return self._call(open_)


class LibvirtConsole:
    """A serial console over a blocking libvirt stream."""

    def __init__(self, conn: libvirt.virConnect, stream: libvirt.virStream) -> None:
        self._conn, self._stream = conn, stream
        self._closed = threading.Event()

    def read(self) -> bytes:
        if self._closed.is_set():
            return b""
        try:
            data = self._stream.recv(4096)
        except libvirt.libvirtError:
            return b""
        return b"" if isinstance(data, int) else bytes(data)

    def write(self, data: bytes) -> None:
        if not self._closed.is_set():
            try:
                self._stream.send(data)
            except libvirt.libvirtError as exc:
                raise _translate(exc) from exc

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        for action in (self._stream.abort, self._conn.close):
            try:
                action()
            except libvirt.libvirtError:
                pass


# How long the guest agent may take to answer a freeze or thaw (flushing dirty pages first).
AGENT_TIMEOUT_SECONDS = 60


def _freeze(dom: libvirt.virDomain) -> tuple[int, str]:
    """Ask the guest agent to freeze every filesystem of the guest: (how many it froze, what
    happened).  No agent (no channel, nothing listening in the guest, no answer in time): 0."""
    try:
        dom.agentSetResponseTimeout(AGENT_TIMEOUT_SECONDS, 0)
        frozen = int(dom.fsFreeze(None, 0))
    except libvirt.libvirtError as exc:
        return 0, f"crash-consistent: the guest agent did not freeze the filesystems ({exc.get_error_message()})"
    if frozen <= 0:
        return 0, "crash-consistent: the guest agent froze no filesystem"
    return frozen, f"quiesced: the guest agent froze {frozen} filesystem(s) while the copy began"


def _thaw(dom: libvirt.virDomain, frozen: int) -> None:
    """Thaw the guest's filesystems: always after a freeze was asked (a freeze that timed out may
    still have happened in the guest).  When filesystems were frozen and every attempt fails, the
    error is raised: the guest cannot write until it is thawed."""
    message = ""
    for attempt in range(3):
        try:
            dom.fsThaw(None, 0)
            return
        except libvirt.libvirtError as exc:
            if frozen <= 0:
                return  # nothing was frozen: no agent to thaw with
            message = exc.get_error_message() or str(exc)
            log.error("thawing the filesystems of %s failed (attempt %d): %s", dom.UUIDString(), attempt + 1, message)
            time.sleep(1)
    raise HypervisorError(f"the guest's filesystems were frozen and could not be thawed: {message}")


def _delete_if_present(pool: libvirt.virStoragePool, name: str, wipe: bool = False, unlisted: bool = False) -> bool:
    """Delete a volume (zeroed first when ``wipe``); False when there was none.  ``unlisted``: the
    file may be there without the pool listing it (written by QEMU, e.g. a backup job's target),
    so the pool is refreshed to find it (not otherwise: a refresh is refused while another
    volume of the pool is being made)."""
    try:
        vol = pool.storageVolLookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
            raise
        if not unlisted:
            return False
        refresh_pool(pool)
        try:
            vol = pool.storageVolLookupByName(name)
        except libvirt.libvirtError as again:
            if again.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
                return False
            raise
    if wipe:
        vol.wipe(0)
    vol.delete(0)
    return True


def refresh_pool(pool: libvirt.virStoragePool, tries: int = 20) -> None:
    """Refresh the pool's list, waiting a moment while libvirt refuses because another volume
    of the pool is being made ("has asynchronous jobs running")."""
    for attempt in range(tries):
        try:
            pool.refresh(0)
            return
        except libvirt.libvirtError as exc:
            if "asynchronous jobs" not in (exc.get_error_message() or "") or attempt == tries - 1:
                raise
            time.sleep(0.5)


def _network_update_flags(net: libvirt.virNetwork) -> int:
    """Change the persistent definition, and the running network (its DHCP server) when active."""
    flags = int(libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG)
    return flags | int(libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE) if net.isActive() else flags


def _same_filter(defined_xml: str, wanted_xml: str) -> bool:
    """Whether two nwfilter documents say the same (attributes in any order, layout ignored)."""

    def shape(element: ET.Element) -> tuple[Any, ...]:
        return (element.tag, sorted(element.attrib.items()), (element.text or "").strip(),
                [shape(child) for child in element])

    return shape(ET.fromstring(defined_xml)) == shape(ET.fromstring(wanted_xml))  # noqa: S314  (our XML, libvirt's)


def _pool_path(pool: libvirt.virStoragePool) -> str:
    path = ET.fromstring(pool.XMLDesc(0)).findtext("target/path")  # noqa: S314  (libvirt's own XML)
    if not path:
        raise HypervisorError(f"pool {pool.name()} has no target path")
    return path


def _stream_chunks(stream: libvirt.virStream, size: int) -> Iterator[bytes]:
    try:
        while True:
            chunk = stream.recv(_CHUNK)
            if isinstance(chunk, int):  # -2: would block (not in blocking mode); keep reading
                continue
            if not chunk:
                break
            yield chunk
            faults.during()  # a crash test's point: one chunk is through, the rest is not
        stream.finish()
    except BaseException:
        _abort_quietly(stream)
        raise


def _abort_quietly(stream: libvirt.virStream) -> None:
    """Abort a stream on the way out of an error; the original error is the one that matters."""
    with contextlib.suppress(libvirt.libvirtError):
        stream.abort()


def _bytes_reader(content: bytes) -> Callable[[int], bytes]:
    offset = 0

    def read(n: int) -> bytes:
        nonlocal offset
        chunk = content[offset : offset + n]
        offset += len(chunk)
        return chunk

    return read
