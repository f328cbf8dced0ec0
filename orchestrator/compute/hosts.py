"""Hypervisor hosts: registration (pool + network prepared, capacity read) and the drivers that
reach them."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlmodel import Session, col, select

from orchestrator.compute.designer import CLEAN_TRAFFIC, HOST_FILTERS
from orchestrator.compute.placement import Candidate, Policy, Resources
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


class Drivers:
    """One driver (one connection) per host URI, shared by the threads of a process."""

    def __init__(self, factory: DriverFactory = default_driver_factory) -> None:
        self._factory = factory
        self._drivers: dict[str, HypervisorDriver] = {}
        self._lock = threading.Lock()

    def for_uri(self, uri: str) -> HypervisorDriver:
        with self._lock:
            if uri not in self._drivers:
                self._drivers[uri] = self._factory(uri)
            return self._drivers[uri]

    def close(self) -> None:
        with self._lock:
            for driver in self._drivers.values():
                driver.close()
            self._drivers.clear()


HOST_STATES = ("enabled", "draining", "disabled", "unreachable")


def register_host(
    session: Session, settings: Settings, drivers: Drivers, name: str, uri: str, site: str,
    guest_proxy_command: str | None = None,
) -> Host:
    """Add or refresh a host: prepare its storage pool and guest network, read its capacity.
    ``guest_proxy_command``: how its guests are reached (None: as the installation's setting)."""
    site = check_site(site)  # R2-locations: hosts stand only in the contract's sites
    driver = drivers.for_uri(uri)
    info = driver.host_info()
    prepared = settings.hosts
    pool = driver.ensure_pool(PoolConfig(prepared.storage_pool, str(prepared.storage_pool_path)))
    driver.ensure_pool(PoolConfig(prepared.backup_pool, str(prepared.backup_pool_path)))
    driver.ensure_network(NetworkConfig(prepared.guest_network, prepared.guest_bridge, prepared.guest_subnet))
    ensure_guest_filters(driver)
    host = session.exec(select(Host).where(Host.name == name)).first() or Host(name=name, uri=uri)
    host.uri = uri
    host.site = site
    if host.state in ("unreachable", ""):
        host.state = "enabled"  # it answered just now; draining and disabled are staff's to lift
    host.guest_proxy_command = guest_proxy_command
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


def allocations(session: Session) -> dict[int, Resources]:
    used: dict[int, Resources] = {}
    rows = session.exec(
        select(Vps).where(col(Vps.host_id).is_not(None), col(Vps.status).not_in(NOT_ALLOCATED))
    ).all()
    for vps in rows:
        before = used.get(vps.host_id or 0, Resources(0, 0, 0))
        used[vps.host_id or 0] = Resources(before.vcpus + vps.vcpus, before.memory_mib + vps.memory_mib,
                                           before.disk_gib + vps.disk_gib + vps.data_disk_gib)
    return used


def candidates(session: Session) -> list[Candidate]:
    used = allocations(session)
    return [
        Candidate(
            host_id=host.id,
            name=host.name,
            site=host.site,
            total=Resources(host.vcpus, host.memory_mib, host.disk_gib),
            allocated=used.get(host.id, Resources(0, 0, 0)),
        )
        for host in session.exec(select(Host).where(Host.state == "enabled")).all()
        if host.id is not None
    ]
