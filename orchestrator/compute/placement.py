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

    def free_memory(self, policy: Policy) -> float:
        """Exact free memory (before rounding down): the order of the hosts, most free first."""
        return (self.total.memory_mib - policy.reserved_memory_mib) * policy.ram_allocation_ratio \
            - self.allocated.memory_mib

    def free(self, policy: Policy) -> Resources:
        return Resources(
            vcpus=int(self.total.vcpus * policy.cpu_allocation_ratio) - self.allocated.vcpus,
            memory_mib=int((self.total.memory_mib - policy.reserved_memory_mib) * policy.ram_allocation_ratio)
            - self.allocated.memory_mib,
            disk_gib=int((self.total.disk_gib - policy.reserved_disk_gib) * policy.disk_allocation_ratio)
            - self.allocated.disk_gib,
        )


def _within(want: Resources, free: Resources) -> bool:
    return want.vcpus <= free.vcpus and want.memory_mib <= free.memory_mib and want.disk_gib <= free.disk_gib


def fits(candidate: Candidate, want: Resources, policy: Policy) -> bool:
    return _within(want, candidate.free(policy))


def choose_host(
    candidates: list[Candidate], want: Resources, policy: Policy, site: str | None = None,
    avoid: frozenset[int] = frozenset(),
) -> Candidate:
    """The fitting host with the most free memory (spreads load; memory is what runs out first),
    the lowest id among equals.  (compute/hosts.best_host makes the same choice in one SQL query.)

    ``site`` restricts the choice to one location (R2-locations); ``avoid``: hosts that must not
    take it (anti-affinity: they hold a VPS of its placement group)."""
    pool = [c for c in candidates if site is None or c.site == site]
    if not pool:
        where = f" in {site}" if site else ""
        raise InsufficientCapacity(f"no host is available{where}")
    if avoid:
        pool = [c for c in pool if c.host_id not in avoid]
        if not pool:
            where = f" in {site}" if site else ""
            raise InsufficientCapacity(f"every host{where} holds a VPS of this placement group already "
                                       "(anti-affinity): none is left for another")
    free = {c.host_id: c.free(policy) for c in pool}  # once per host: a thousand of them at times
    fitting = [c for c in pool if _within(want, free[c.host_id])]
    if not fitting:
        best = max(pool, key=lambda c: free[c.host_id].memory_mib)
        room = free[best.host_id]
        raise InsufficientCapacity(
            f"no host can hold {want.vcpus} vCPU, {want.memory_mib} MiB, {want.disk_gib} GiB; "
            f"the roomiest ({best.name}) has {max(room.vcpus, 0)} vCPU, "
            f"{max(room.memory_mib, 0)} MiB, {max(room.disk_gib, 0)} GiB free"
        )
    return max(fitting, key=lambda c: (c.free_memory(policy), -c.host_id))
