"""compute/hosts.best_host (the placement done by one SQL query) chooses exactly what
compute/placement.choose_host chooses from every host read (the rule written once in Python),
on random fleets: capacities, sites, states, VPS of every status with data disks, fractional
overcommit ratios, anti-affinity; or both refuse.  On SQLite and PostgreSQL."""

from __future__ import annotations

import random

from sqlalchemy import delete
from sqlmodel import Session

from orchestrator.compute.hosts import best_host, candidates
from orchestrator.compute.placement import Policy, Resources, choose_host
from orchestrator.core.db import make_engine
from orchestrator.core.errors import InsufficientCapacity
from orchestrator.core.models import Customer, Event, Host, Vps, VpsStatus
from orchestrator.core.settings import Settings

SITES = ("Paris", "Marseille", "Lyon")
STATES = ("enabled", "enabled", "enabled", "draining", "disabled", "unreachable")


def fleet(session: Session, rng: random.Random) -> None:
    customer = Customer(name="c", email="c@example.test")
    session.add(customer)
    session.flush()
    for h in range(rng.randint(1, 25)):
        host = Host(name=f"h{h}", uri=f"test:///h{h}", site=rng.choice(SITES), state=rng.choice(STATES),
                    vcpus=rng.choice((2, 4, 8, 16)), memory_mib=rng.choice((2048, 4096, 8192, 16384)),
                    disk_gib=rng.choice((20, 100, 500)))
        session.add(host)
        session.flush()
        for v in range(rng.randint(0, 6)):
            disks = [{"id": f"{h}-{v}-{d}", "size_gib": rng.randint(1, 30), "target": f"vd{'bcd'[d]}", "volume": "x"}
                     for d in range(rng.randint(0, 2))]
            session.add(Vps(name=f"v{h}-{v}", customer_id=customer.id or 0, host_id=host.id, image="tiny",
                            vcpus=rng.randint(1, 4), memory_mib=rng.choice((256, 512, 1024, 2048)),
                            disk_gib=rng.randint(1, 40), status=rng.choice(list(VpsStatus)), data_disks=disks))
    session.commit()


def test_the_sql_placement_chooses_what_the_python_rule_chooses(settings: Settings) -> None:
    rng = random.Random(20261129)
    engine = make_engine(settings)
    agreed = refused = 0
    for round_ in range(12):
        with Session(engine) as session:
            for table in (Vps, Host):
                for row in session.exec(__import__("sqlmodel").select(table)).all():
                    session.delete(row)
            session.commit()
            session.execute(delete(Event))  # the event log of the VPS made last round names their customers
            for row in session.exec(__import__("sqlmodel").select(Customer)).all():
                session.delete(row)
            session.commit()
            fleet(session, rng)
        for _ in range(25):
            want = Resources(rng.randint(1, 8), rng.choice((128, 512, 1024, 4096)), rng.randint(1, 80))
            rules = Policy(cpu_allocation_ratio=rng.choice((1.0, 1.5, 4.0)),
                           ram_allocation_ratio=rng.choice((1.0, 1.25, 1.5)),
                           disk_allocation_ratio=rng.choice((1.0, 1.1)),
                           reserved_memory_mib=rng.choice((0, 512)), reserved_disk_gib=rng.choice((0, 2)))
            site = rng.choice((None, *SITES))
            with Session(engine) as session:
                listed = candidates(session)
                avoid = frozenset(c.host_id for c in listed if rng.random() < 0.2)
                try:
                    expected = choose_host(listed, want, rules, site=site, avoid=avoid).host_id
                except InsufficientCapacity:
                    expected = None
                try:
                    chosen = best_host(session, want, rules, site=site, avoid=avoid)
                except InsufficientCapacity:
                    chosen = None
            assert (chosen.host_id if chosen else None) == expected, (round_, want, rules, site, avoid)
            if chosen is not None:
                mine = next(c for c in listed if c.host_id == chosen.host_id)
                assert chosen.allocated == mine.allocated and chosen.total == mine.total
                agreed += 1
            else:
                refused += 1
    engine.dispose()
    assert agreed > 50 and refused > 10  # both branches were exercised
