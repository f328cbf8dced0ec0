"""Choose a host for a VPS.  Pure: capacities in, a decision out."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.core.errors import InsufficientCapacity


@dataclass(frozen=True)
class Resources:
    vcpus: int
    memory_mib: int
    disk_gib: int


@dataclass(frozen=True)
class Policy:
    cpu_allocation_ratio: float = 4.0
    ram_allocation_ratio: float = 1.0
    disk_allocation_ratio: float = 1.0
    reserved_memory_mib: int = 512
    reserved_disk_gib: int = 2


@dataclass(frozen=True)
class Candidate:
    host_id: int
    name: str
    site: str
    total: Resources
    allocated: Resources

    def free(self, policy: Policy) -> Resources:
        return Resources(
            vcpus=int(self.total.vcpus * policy.cpu_allocation_ratio) - self.allocated.vcpus,
            memory_mib=int((self.total.memory_mib - policy.reserved_memory_mib) * policy.ram_allocation_ratio)
            - self.allocated.memory_mib,
            disk_gib=int((self.total.disk_gib - policy.reserved_disk_gib) * policy.disk_allocation_ratio)
            - self.allocated.disk_gib,
        )


def fits(candidate: Candidate, want: Resources, policy: Policy) -> bool:
    free = candidate.free(policy)
    return want.vcpus <= free.vcpus and want.memory_mib <= free.memory_mib and want.disk_gib <= free.disk_gib


def choose_host(
    candidates: list[Candidate], want: Resources, policy: Policy, site: str | None = None
) -> Candidate:
    """The fitting host with the most free memory (spreads load; memory is what runs out first).

    ``site`` restricts the choice to one location (R2-locations)."""
    pool = [c for c in candidates if site is None or c.site == site]
    if not pool:
        where = f" in {site}" if site else ""
        raise InsufficientCapacity(f"no host is available{where}")
    fitting = [c for c in pool if fits(c, want, policy)]
    if not fitting:
        best = max(pool, key=lambda c: c.free(policy).memory_mib)
        free = best.free(policy)
        raise InsufficientCapacity(
            f"no host can hold {want.vcpus} vCPU, {want.memory_mib} MiB, {want.disk_gib} GiB; "
            f"the roomiest ({best.name}) has {max(free.vcpus, 0)} vCPU, "
            f"{max(free.memory_mib, 0)} MiB, {max(free.disk_gib, 0)} GiB free"
        )
    return max(fitting, key=lambda c: (c.free(policy).memory_mib, -c.host_id))
