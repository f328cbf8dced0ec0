"""Hypervisor hosts (staff): list them with their capacity and allocations, register one, take
one out of placement (``disable``) or put it back (``enable``), and empty one (``drain``).  A
customer sees locations, never hosts."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlmodel import Session, select

from api.deps import SessionDep, SettingsDep, StaffPrincipal
from api.openapi import located
from api.pages import Cursor, Limit, Order, Page, filtered, page_of
from api.schemas.fleet import DrainBody, DrainOut, EvacuateBody, EvacuateOut, HostIn, HostOut, LeftOut, ResourcesOut
from api.scopes import scoped
from orchestrator.compute.hostaccess import HostKeyMismatch, fingerprint
from orchestrator.compute.hosts import Drivers, allocations, find_host, register_host, set_host_state
from orchestrator.compute.placement import Resources
from orchestrator.core.errors import Conflict, HypervisorError, InvalidRequest
from orchestrator.core.models import Host
from orchestrator.workflows import drain, evacuation

router = APIRouter(prefix="/v1/hosts", tags=["hosts"], dependencies=[scoped("hosts")])


def host_out(session: Session, host: Host) -> HostOut:
    allocated = allocations(session).get(host.id or 0, Resources(0, 0, 0))
    return HostOut(
        id=host.id or 0, name=host.name, uri=host.uri, site=host.site, state=host.state,
        domain_type=host.domain_type, guest_proxy_command=host.guest_proxy_command,
        ssh_host_key_fingerprint=fingerprint(host.ssh_host_key) if host.ssh_host_key else None,
        migration_address=host.migration_address,
        capacity=ResourcesOut(vcpus=host.vcpus, memory_mib=host.memory_mib, disk_gib=host.disk_gib),
        allocated=ResourcesOut(vcpus=allocated.vcpus, memory_mib=allocated.memory_mib,
                               disk_gib=allocated.disk_gib),
        updated_at=host.updated_at,
    )


@router.get("", response_model=Page[HostOut])
def list_hosts(
    session: SessionDep, _staff: StaffPrincipal,
    site: Annotated[str | None, Query(max_length=64, description="The data-centre site (R2-locations)")] = None,
    state: Literal["enabled", "draining", "disabled", "unreachable"] | None = None,
    limit: Limit = 50, cursor: Cursor = None, order: Order = "desc",
) -> Page[HostOut]:
    """Hypervisor hosts with their capacity and what is allocated on them (staff only), the last
    registered first, a page at a time."""
    query = filtered(select(Host), ((Host.site, site), (Host.state, state)), Host.updated_at, None, None)
    rows, after = page_of(session, query, (Host.id,), cursor, limit, order)
    return Page[HostOut](items=[host_out(session, host) for host in rows], next=after)


@router.post("", response_model=HostOut, status_code=201, responses={201: located("/v1/hosts/{name}")})
def add_host(body: HostIn, session: SessionDep, settings: SettingsDep, _staff: StaffPrincipal) -> HostOut:
    """Register a host (or refresh one of that name): its storage pools, guest network and
    filters are prepared through libvirt and its capacity read.  A host that does not answer at
    ``uri`` is refused (422) and nothing is recorded.  A qemu+ssh:// host is registered with its
    SSH host key (``ssh_host_key``: the key or its fingerprint), which it must present; without it
    the answer is 422 with the fingerprint it presents; a host registered again whose key changed
    is refused (409)."""
    drivers = Drivers()
    try:
        host = register_host(session, settings, drivers, body.name, body.uri, body.site, body.guest_proxy_command,
                             body.ssh_host_key, body.migration_address)
    except HostKeyMismatch as exc:
        session.rollback()
        raise Conflict(str(exc)) from exc
    except HypervisorError as exc:
        session.rollback()
        raise InvalidRequest(f"uri: the host does not answer as a libvirt host: {exc}") from exc
    finally:
        drivers.close()
    return host_out(session, host)


@router.get("/{host}", response_model=HostOut)
def get_host(host: str, session: SessionDep, _staff: StaffPrincipal) -> HostOut:
    """One host, by name or id."""
    return host_out(session, find_host(session, host))


@router.post("/{host}/disable", response_model=HostOut)
def disable_host(host: str, session: SessionDep, staff: StaffPrincipal) -> HostOut:
    """Take the host out of placement: no new VPS lands on it; those on it keep running."""
    record = set_host_state(session, find_host(session, host), "disabled", str(staff))
    session.commit()
    return host_out(session, record)


@router.post("/{host}/enable", response_model=HostOut)
def enable_host(host: str, session: SessionDep, staff: StaffPrincipal) -> HostOut:
    """Put the host back into placement."""
    record = set_host_state(session, find_host(session, host), "enabled", str(staff))
    session.commit()
    return host_out(session, record)


@router.post("/{host}/drain", response_model=DrainOut, status_code=202,
             responses={202: located("/v1/hosts/{host}", "Drain planned")})
def drain_host(host: str, body: DrainBody, session: SessionDep, settings: SettingsDep,
               staff: StaffPrincipal) -> DrainOut:
    """Move every VPS off the host at ``starts_at``: a maintenance of its VPS (refused naming
    R5.4-duration or R5.4-frequency; each customer notified at once), the host set ``draining``
    (no new VPS), and one cold migration per VPS as a job that starts with the window."""
    record = find_host(session, host)
    done = drain.drain(session, settings, staff, record, body.starts_at, body.duration_minutes, body.reason,
                       body.to_host)
    session.commit()
    return DrainOut(host=record.name, state=record.state, maintenance_id=done.maintenance.id,
                    starts_at=body.starts_at, jobs=[job.id for job in done.jobs])


@router.post("/{host}/evacuate", response_model=EvacuateOut, status_code=202,
             responses={202: located("/v1/hosts/{host}", "Evacuation started")})
def evacuate_host(host: str, body: EvacuateBody, session: SessionDep, settings: SettingsDep,
                  staff: StaffPrincipal) -> EvacuateOut:
    """R5.2-keep-running: the host is down; rebuild each of its VPS on another host from the
    latest copy of its backup kept off it (one job per VPS, at once; each customer told what was
    restored and from when).  Refused (409) while the host answers: drain it instead.  The VPS
    that cannot be rebuilt are listed with the reason."""
    record = find_host(session, host)
    done = evacuation.evacuate(session, settings, staff, record, body.reason, body.to_host)
    session.commit()
    return EvacuateOut(host=record.name, state=record.state, jobs=[job.id for job in done.jobs],
                       left=[LeftOut(vps_id=vps.id, name=vps.name, reason=why) for vps, why in done.left])
