from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import col, select

from api.deps import SessionDep, StaffPrincipal
from api.schemas.fleet import HostOut, ResourcesOut
from api.scopes import scoped
from orchestrator.compute.hosts import allocations
from orchestrator.compute.placement import Resources
from orchestrator.core.models import Host

router = APIRouter(prefix="/v1/hosts", tags=["hosts"], dependencies=[scoped("hosts")])


@router.get("", response_model=list[HostOut])
def list_hosts(session: SessionDep, _staff: StaffPrincipal) -> list[HostOut]:
    """Hypervisor hosts with their capacity and what is allocated on them (staff only)."""
    used = allocations(session)
    out = []
    for host in session.exec(select(Host).order_by(col(Host.id))).all():
        allocated = used.get(host.id or 0, Resources(0, 0, 0))
        out.append(
            HostOut(
                id=host.id or 0, name=host.name, uri=host.uri, site=host.site, state=host.state,
                domain_type=host.domain_type,
                capacity=ResourcesOut(vcpus=host.vcpus, memory_mib=host.memory_mib, disk_gib=host.disk_gib),
                allocated=ResourcesOut(vcpus=allocated.vcpus, memory_mib=allocated.memory_mib,
                                       disk_gib=allocated.disk_gib),
                updated_at=host.updated_at,
            )
        )
    return out
