"""Database records for tests that need a VPS without a hypervisor behind it."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from orchestrator.core.models import Customer, Host, Vps, VpsStatus


def running_vps(session: Session, customer: Customer | None = None, **fields: Any) -> Vps:
    """A customer (``c`` unless given), a host on libvirt's test driver, and one running VPS in it,
    flushed (the caller commits)."""
    customer = customer or Customer(name="c")
    host = Host(name="h", uri="test:///default")
    session.add(customer)
    session.add(host)
    session.flush()
    values: dict[str, Any] = {"name": "web", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2,
                              "status": VpsStatus.running, **fields}
    vps = Vps(customer_id=customer.id, host_id=host.id, **values)
    session.add(vps)
    session.flush()
    return vps
