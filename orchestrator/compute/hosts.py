"""Hypervisor hosts: registration (pool + network prepared, capacity read) and the drivers that
reach them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Float, Integer, String, bindparam, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from orchestrator.compute import hostaccess
from orchestrator.compute.designer import CLEAN_TRAFFIC, HOST_FILTERS
from orchestrator.compute.hostaccess import SshFiles
from orchestrator.compute.placement import Candidate, Policy, Resources, choose_host
from orchestrator.contract.sites import check_site
from orchestrator.core.clock import utcnow
from orchestrator.core.errors import InvalidRequest, NotFound
from orchestrator.core.models import Audit, Host, Vps, VpsStatus
from orchestrator.core.settings import Settings
from orchestrator.hypervisor import HypervisorDriver, NetworkConfig, PoolConfig

DriverFactory = Callable[[str], HypervisorDriver]

# A VPS in these statuses holds nothing on its host.
NOT_ALLOCATED = (VpsStatus.deleted, VpsStatus.error)


def default_driver_factory(uri: str) -> HypervisorDriver:
    from orchestrator.hypervisor.libvirt_driver import LibvirtDriver

    return LibvirtDriver(uri)


class HostAddress(Protocol):
    """What reaching a host takes: its URI and, for qemu+ssh://, the SSH host key recorded."""

    @property
    def uri(self) -> str: ...

    @property
    def ssh_host_key(self) -> str | None: ...


class Drivers:
    """One driver (one connection) per host, shared by the threads of a process.  A qemu+ssh://
    host is reached only once it presented its recorded SSH host key (compute/hostaccess.py)."""

    def __init__(self, factory: DriverFactory = default_driver_factory) -> None:
        self._factory = factory
        self._drivers: dict[tuple[str, str | None], HypervisorDriver] = {}
        self._lock = threading.Lock()
        self._ssh = SshFiles()

    def for_host(self, host: HostAddress) -> HypervisorDriver:
        key = (host.uri, host.ssh_host_key)
        with self._lock:
            if key in self._drivers:
                return self._drivers[key]
        hostaccess.verify_host_key(host.uri, host.ssh_host_key)  # outside the lock: a network round trip
        with self._lock:
            if key not in self._drivers:
                self._drivers[key] = self._factory(self._ssh.connection_uri(host.uri, host.ssh_host_key))
            return self._drivers[key]

    def for_uri(self, uri: str) -> HypervisorDriver:
        """A local host's driver (qemu:///system, qemu+unix://): no SSH host key to check."""
        return self.for_host(HostAt(uri))

    def close(self) -> None:
        with self._lock:
            for driver in self._drivers.values():
                driver.close()
            self._drivers.clear()
        self._ssh.close()


@dataclass(frozen=True)
class HostAt:
    uri: str
    ssh_host_key: str | None = None


HOST_STATES = ("enabled", "draining", "disabled", "unreachable")


def register_host(
    session: Session, settings: Settings, drivers: Drivers, name: str, uri: str, site: str,
    guest_proxy_command: str | None = None, ssh_host_key: str | None = None,
    migration_address: str | None = None,
) -> Host:
    """Add or refresh a host: prepare its storage pool and guest network, read its capacity.
    ``guest_proxy_command``: how its guests are reached (None: as the installation's setting).
    ``ssh_host_key``: for a qemu+ssh:// host, its SSH host key or fingerprint, checked against
    the key it presents before anything is sent (compute/hostaccess.py).  ``migration_address``:
    where other hosts reach its QEMU for a live migration (None: it moves VPS cold only)."""
    site = check_site(site)  # R2-locations: hosts stand only in the contract's sites
    known = session.exec(select(Host).where(Host.name == name)).first()
    recorded = known.ssh_host_key if known is not None and known.uri == uri else None
    key = hostaccess.accept_host_key(uri, ssh_host_key, recorded)
    driver = drivers.for_host(HostAt(uri, key))
    info = driver.host_info()
    prepared = settings.hosts
    pool = driver.ensure_pool(PoolConfig(prepared.storage_pool, str(prepared.storage_pool_path)))
    driver.ensure_pool(PoolConfig(prepared.backup_pool, str(prepared.backup_pool_path)))
    driver.ensure_network(NetworkConfig(prepared.guest_network, prepared.guest_bridge, prepared.guest_subnet))
    ensure_guest_filters(driver)
    host = known or Host(name=name, uri=uri)
    host.uri = uri
    host.ssh_host_key = key
    host.site = site
    if host.state in ("unreachable", ""):
        host.state = "enabled"  # it answered just now; draining and disabled are staff's to lift
    host.guest_proxy_command = guest_proxy_command
    host.migration_address = migration_address
    host.domain_type = info.domain_type
    host.vcpus = info.vcpus
    host.memory_mib = info.memory_mib
    host.disk_gib = pool.capacity_bytes >> 30
    host.pool_name = settings.hosts.storage_pool
    host.network_name = settings.hosts.guest_network
    host.updated_at = utcnow()
    session.add(host)
    session.commit()
    return host


def capacity(settings: Settings, driver: HypervisorDriver) -> Resources:
    """What the host has now: CPUs and memory (libvirt's node info) and the size of its storage
    pool (made sure of, as at registration)."""
    info = driver.host_info()
    pool = driver.ensure_pool(PoolConfig(settings.hosts.storage_pool, str(settings.hosts.storage_pool_path)))
    return Resources(info.vcpus, info.memory_mib, pool.capacity_bytes >> 30)


def find_host(session: Session, key: str) -> Host:
    """A host by name, or by id when ``key`` is a number and no host has that name."""
    host = session.exec(select(Host).where(Host.name == key)).first()
    if host is None and key.isdigit():
        host = session.get(Host, int(key))
    if host is None:
        raise NotFound(f"no host {key}")
    return host


def set_host_state(session: Session, host: Host, state: str, actor: str) -> Host:
    """Staff's ``enable``/``disable`` (``draining`` is set by a drain, ``unreachable`` by the
    reconciler); audited."""
    if state not in HOST_STATES:
        raise InvalidRequest(f"state: one of {', '.join(HOST_STATES)}")
    if host.state != state:
        session.add(Audit(actor=actor[:100], action=f"host.{state}", detail=f"{host.name}: was {host.state}"))
        host.state = state
        host.updated_at = utcnow()
        session.add(host)
        session.flush()
    return host


def ensure_guest_filters(driver: HypervisorDriver) -> None:
    """The nwfilters every guest interface references: libvirt's clean-traffic must be there (a
    host without it would run guests free to take each other's addresses: refused), ours are
    defined or brought up to date."""
    driver.require_filter(CLEAN_TRAFFIC)
    for config in HOST_FILTERS:
        driver.ensure_filter(config)


def policy(settings: Settings) -> Policy:
    return Policy(
        cpu_allocation_ratio=settings.capacity.cpu_allocation_ratio,
        ram_allocation_ratio=settings.capacity.ram_allocation_ratio,
        disk_allocation_ratio=settings.capacity.disk_allocation_ratio,
        reserved_memory_mib=settings.capacity.reserved_memory_mib,
        reserved_disk_gib=settings.capacity.reserved_disk_gib,
    )


def allocations(session: Session, hosts: Any = None) -> dict[int, Resources]:
    """What the VPS on each host hold (``hosts``: a query of host ids to restrict it to): one
    aggregate query, read as columns."""
    held = [col(Vps.host_id).is_not(None), col(Vps.status).not_in(NOT_ALLOCATED)]
    if hosts is not None:
        held.append(col(Vps.host_id).in_(hosts))
    rows = session.connection().execute(
        sa_select(col(Vps.host_id), func.sum(col(Vps.vcpus)), func.sum(col(Vps.memory_mib)),
                  func.sum(col(Vps.disk_gib) + col(Vps.data_disk_gib_total)))
        .where(*held).group_by(col(Vps.host_id))).all()
    return {host_id: Resources(int(vcpus), int(memory), int(disk))
            for host_id, vcpus, memory, disk in rows if host_id is not None}


def candidates(session: Session, site: str | None = None, host_id: int | None = None) -> list[Candidate]:
    """The enabled hosts (of ``site``, or the one ``host_id``), with their capacity and
    allocations: the filter is the database's, and the rows are read as columns, not ORM
    objects (a placement among a thousand hosts reads them all)."""
    wanted = sa_select(col(Host.id)).where(col(Host.state) == "enabled")
    if site is not None:
        wanted = wanted.where(col(Host.site) == site)
    if host_id is not None:
        wanted = wanted.where(col(Host.id) == host_id)
    used = allocations(session, wanted if (site is not None or host_id is not None) else None)
    rows = session.connection().execute(
        sa_select(col(Host.id), col(Host.name), col(Host.site), col(Host.vcpus), col(Host.memory_mib),
                  col(Host.disk_gib)).where(col(Host.id).in_(wanted))).all()
    return [Candidate(host_id=row_id, name=name, site=row_site, total=Resources(vcpus, memory, disk),
                      allocated=used.get(row_id, Resources(0, 0, 0)))
            for row_id, name, row_site, vcpus, memory, disk in rows if row_id is not None]


def _placement_query() -> Any:
    """The statement of ``best_host``, built once: everything that varies is a bound parameter."""
    used = (sa_select(col(Vps.host_id).label("host_id"), func.sum(col(Vps.vcpus)).label("vcpus"),
                      func.sum(col(Vps.memory_mib)).label("memory"),
                      func.sum(col(Vps.disk_gib) + col(Vps.data_disk_gib_total)).label("disk"))
            .where(col(Vps.host_id).is_not(None), col(Vps.status).not_in(NOT_ALLOCATED))
            .group_by(col(Vps.host_id)).subquery())
    vcpus, memory, disk = (func.coalesce(used.c.vcpus, 0), func.coalesce(used.c.memory, 0),
                           func.coalesce(used.c.disk, 0))
    # Typed: PostgreSQL would read an untyped ratio beside an integer column as an integer.
    usable_memory = (col(Host.memory_mib) - bindparam("reserved_memory", type_=Integer)) \
        * bindparam("ram_ratio", type_=Float)
    site = bindparam("site", type_=String)
    return (sa_select(col(Host.id), col(Host.name), col(Host.site), col(Host.vcpus), col(Host.memory_mib),
                      col(Host.disk_gib), vcpus, memory, disk)
            .outerjoin(used, used.c.host_id == col(Host.id))
            .where(col(Host.state) == "enabled", or_(site.is_(None), col(Host.site) == site),
                   col(Host.id).not_in(bindparam("avoid", expanding=True)),
                   vcpus + bindparam("vcpus", type_=Integer)
                   <= col(Host.vcpus) * bindparam("cpu_ratio", type_=Float),
                   memory + bindparam("memory", type_=Integer) <= usable_memory,
                   disk + bindparam("disk", type_=Integer)
                   <= (col(Host.disk_gib) - bindparam("reserved_disk", type_=Integer))
                   * bindparam("disk_ratio", type_=Float))
            .order_by((usable_memory - memory).desc(), col(Host.id)).limit(1))


_PLACEMENT = _placement_query()


def best_host(session: Session, want: Resources, rules: Policy, site: str | None = None,
              avoid: frozenset[int] = frozenset()) -> Candidate:
    """``placement.choose_host`` among the enabled hosts, done by the database: one query sums
    the allocations, keeps the hosts where ``want`` fits (with the overcommit ratios and
    reservations), orders them by free memory and returns the first, so a placement among a
    thousand hosts reads one row.  When none fits, the hosts are read to say why (choose_host)."""
    row = session.connection().execute(_PLACEMENT, {
        "reserved_memory": rules.reserved_memory_mib, "ram_ratio": rules.ram_allocation_ratio, "site": site,
        "avoid": sorted(avoid), "vcpus": want.vcpus, "cpu_ratio": rules.cpu_allocation_ratio,
        "memory": want.memory_mib, "disk": want.disk_gib, "reserved_disk": rules.reserved_disk_gib,
        "disk_ratio": rules.disk_allocation_ratio}).first()
    if row is None:
        return choose_host(candidates(session, site), want, rules, site=site, avoid=avoid)  # raises, saying why
    host_id, name, host_site, total_vcpus, total_memory, total_disk, used_vcpus, used_memory, used_disk = row
    return Candidate(host_id=host_id, name=name, site=host_site,
                     total=Resources(total_vcpus, total_memory, total_disk),
                     allocated=Resources(int(used_vcpus), int(used_memory), int(used_disk)))


def hosts_of_group(session: Session, customer_id: int, group: str | None) -> frozenset[int]:
    """The hosts holding a VPS of the customer's placement group (anti-affinity: a new VPS of
    the group goes on none of them)."""
    if not group:
        return frozenset()
    return frozenset(h for h in session.exec(select(Vps.host_id).where(
        Vps.customer_id == customer_id, Vps.placement_group == group, col(Vps.host_id).is_not(None),
        col(Vps.status).not_in(NOT_ALLOCATED))).all() if h is not None)
