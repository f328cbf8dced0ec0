from __future__ import annotations

import pytest

from orchestrator.compute.placement import Candidate, Policy, Resources, choose_host, fits
from orchestrator.core.errors import InsufficientCapacity

POLICY = Policy(cpu_allocation_ratio=2.0, ram_allocation_ratio=1.0, disk_allocation_ratio=1.0,
                reserved_memory_mib=512, reserved_disk_gib=0)


def host(i: int, mem: int, used_mem: int = 0, site: str = "Paris") -> Candidate:
    return Candidate(i, f"h{i}", site, Resources(4, mem, 100), Resources(0, used_mem, 0))


def test_picks_the_host_with_most_free_memory() -> None:
    chosen = choose_host([host(1, 8192, 4096), host(2, 8192, 1024), host(3, 4096)], Resources(1, 1024, 10), POLICY)
    assert chosen.name == "h2"


def test_reserved_memory_and_cpu_ratio_count() -> None:
    assert fits(host(1, 2048), Resources(8, 1536, 10), POLICY)
    assert not fits(host(1, 2048), Resources(8, 1537, 10), POLICY)
    assert not fits(host(1, 2048), Resources(9, 1024, 10), POLICY)


def test_refusal_says_what_is_free() -> None:
    with pytest.raises(InsufficientCapacity, match=r"h1\) has 8 vCPU, 1536 MiB, 100 GiB free"):
        choose_host([host(1, 2048)], Resources(1, 4096, 1), POLICY)


def test_site_restricts_the_choice() -> None:
    hosts = [host(1, 8192, site="Paris"), host(2, 16384, site="Tokyo")]
    assert choose_host(hosts, Resources(1, 512, 1), POLICY, site="Paris").name == "h1"
    with pytest.raises(InsufficientCapacity, match="Oslo"):
        choose_host(hosts, Resources(1, 512, 1), POLICY, site="Oslo")
