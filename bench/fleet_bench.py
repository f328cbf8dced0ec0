"""Placement and reconciliation as the fleet grows.

- Placement of one VPS (compute/hosts.best_host: one SQL query sums the allocations, keeps the
  hosts where it fits, orders them by free memory; SQLite, the embedded default), among 10, 100
  and 1,000 hosts holding 10 VPS each (one in ten with a data disk), anywhere and in one site.
  Beside it, the peer: the same choice made in Python after reading every host and its
  allocations (compute/hosts.candidates + compute/placement.choose_host), checked to agree.
- One reconciliation pass (workflows/reconciler.reconcile): 1, 10 and 100 hosts of 100 running
  domains each, every one a VPS recorded running.  The hosts are libvirt ``test:///`` hosts (the
  libvirt test driver, in process, one node file each): the real driver code, one
  getAllDomainStats per host and pass, without a network round trip.  Beside it, the floor: the
  bare getAllDomainStats calls of the same pass.

Targets: placement among the most hosts under 5 ms (median) and at most half the peer's time; a
pass over the most domains under 5 s, at most 10 x its floor, and its time per domain at most
1.5 x that of one host.

    python -m bench.fleet_bench          # writes its section of docs/benchmarks.md
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlmodel import Session, select

from bench.report import Figure, Result, Target, count, quick
from orchestrator.compute.hosts import Drivers, best_host, candidates, policy
from orchestrator.compute.placement import Resources, choose_host
from orchestrator.core.db import make_engine
from orchestrator.core.models import Customer, Host, Incident, Vps, VpsStatus
from orchestrator.core.settings import Settings
from orchestrator.workflows import reconciler
from tests.conftest import base_settings

KEY = "fleet"
HEADING = "Fleet: placement and reconciliation as it grows"
VPS_PER_HOST = 10
DOMAINS_PER_HOST = 100
PLACEMENT_MS = 5.0  # among the most hosts, median
PASS_SECONDS = 5.0  # over the most domains
PEER_SHARE = 0.5  # the SQL placement at most half the time of reading every host
FLOOR_TIMES = 10.0  # a pass at most 10 x its bare getAllDomainStats calls
GROWTH = 1.5  # a pass's time per domain, most hosts / one host


def _settings(tmp: Path) -> Settings:
    settings = base_settings(tmp)
    settings.periodic.reconcile_restart = False
    return settings


def placement(tmp: Path, hosts: int, placements: int) -> tuple[float, float, float]:
    """Median of one placement (compute/hosts.best_host: one SQL query) among every host, among
    the hosts of one site (a third of them), and of the same choice made in Python after reading
    every host and its allocations (compute/hosts.candidates + placement.choose_host) (ms)."""
    settings = _settings(tmp)
    engine = make_engine(settings)
    with Session(engine) as session:
        customer = Customer(name="bench", email="bench@example.test")
        session.add(customer)
        session.flush()
        for h in range(hosts):
            host = Host(name=f"h{h}", uri=f"test:///h{h}", site=("Paris", "Marseille", "Lyon")[h % 3],
                        vcpus=32, memory_mib=256 * 1024, disk_gib=4000)
            session.add(host)
            session.flush()
            for v in range(VPS_PER_HOST):
                disks = [{"id": f"d{h}-{v}", "size_gib": 10, "target": "vdb", "volume": "x"}] if v == 0 else []
                session.add(Vps(name=f"v{h}-{v}", customer_id=customer.id or 0, host_id=host.id, image="tiny",
                                vcpus=2, memory_mib=4096, disk_gib=40, status=VpsStatus.running, data_disks=disks))
        session.commit()
    want, rules = Resources(2, 4096, 40), policy(settings)
    anywhere, in_site, read_all = [], [], []
    for _ in range(placements):
        with Session(engine) as session:
            session.connection()  # a placement runs inside the order's transaction, begun before
            start = time.perf_counter()
            chosen = best_host(session, want, rules)
            anywhere.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            best_host(session, want, rules, site="Paris")
            in_site.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            again = choose_host(candidates(session), want, rules)
            read_all.append((time.perf_counter() - start) * 1000)
        assert chosen.host_id == again.host_id
    engine.dispose()
    return statistics.median(anywhere), statistics.median(in_site), statistics.median(read_all)


def _node_file(directory: Path, host: int, ids: list[str]) -> Path:
    domains = "".join(f"<domain type='test'><name>vps-{vps_id}</name><uuid>{vps_id}</uuid><memory>262144</memory>"
                      f"<vcpu>1</vcpu><os><type>hvm</type></os></domain>" for vps_id in ids)
    path = directory / f"node-{host}.xml"
    path.write_text(f"<node><cpu><mhz>2000</mhz><model>i686</model><active>2</active><nodes>1</nodes>"
                    f"<sockets>1</sockets><cores>2</cores><threads>1</threads></cpu><memory>16777216</memory>"
                    f"{domains}</node>")
    return path


def reconcile_pass(tmp: Path, hosts: int, passes: int) -> tuple[float, float]:
    """Median wall time of one reconcile pass, and of the bare getAllDomainStats calls (ms)."""
    settings = _settings(tmp)
    engine = make_engine(settings)
    uris = []
    with Session(engine) as session:
        customer = Customer(name="bench", email="bench@example.test")
        session.add(customer)
        session.flush()
        for h in range(hosts):
            ids = [str(uuid.uuid4()) for _ in range(DOMAINS_PER_HOST)]
            uri = f"test://{_node_file(tmp, h, ids)}"
            uris.append(uri)
            host = Host(name=f"h{h}", uri=uri, site="Paris", vcpus=32, memory_mib=256 * 1024, disk_gib=4000)
            session.add(host)
            session.flush()
            for vps_id in ids:
                session.add(Vps(id=vps_id, name="v", customer_id=customer.id or 0, host_id=host.id, image="tiny",
                                vcpus=1, memory_mib=256, disk_gib=2, status=VpsStatus.running))
        session.commit()
    drivers = Drivers()
    try:
        reconciler.reconcile(engine, settings, drivers)  # connections opened once, as in a worker
        timings = []
        for _ in range(passes):
            start = time.perf_counter()
            reconciler.reconcile(engine, settings, drivers)
            timings.append((time.perf_counter() - start) * 1000)
        floor = []
        for _ in range(passes):
            start = time.perf_counter()
            for uri in uris:
                assert len(drivers.for_uri(uri).list_domains()) == DOMAINS_PER_HOST
            floor.append((time.perf_counter() - start) * 1000)
        with Session(engine) as session:
            assert session.exec(select(Incident)).first() is None  # every domain ran as recorded
    finally:
        drivers.close()
        engine.dispose()
    return statistics.median(timings), statistics.median(floor)


def measure() -> Result:
    host_counts = (10, 100, 300) if quick() else (10, 100, 1000)
    reconcile_hosts = (1, 10, 30) if quick() else (1, 10, 100)
    placements, passes = count(200, 30), count(5, 3)
    def listed(counts: tuple[int, ...]) -> str:
        return ", ".join(f"{n:,}" for n in counts[:-1]) + f" and {counts[-1]:,}"

    doc = [
        "- Placement of one VPS (compute/hosts.best_host: one SQL query sums the allocations, keeps the "
        "hosts where it fits, orders them by free memory; SQLite, the embedded default), among "
        f"{listed(host_counts)} hosts holding {VPS_PER_HOST} VPS each (one in ten with a data disk), anywhere "
        "and in one site. Beside it, the peer: the same choice made in Python after reading every host and "
        "its allocations (compute/hosts.candidates + compute/placement.choose_host), checked to agree.",
        f"- One reconciliation pass (workflows/reconciler.reconcile): {listed(reconcile_hosts)} hosts of "
        f"{DOMAINS_PER_HOST} running domains each, every one a VPS recorded running. The hosts are libvirt "
        "`test:///` hosts (the libvirt test driver, in process, one node file each): the real driver code, "
        "one getAllDomainStats per host and pass, without a network round trip. Beside it, the floor: the "
        "bare getAllDomainStats calls of the same pass.",
    ]
    lines = ["`python -m bench.fleet_bench`:", "", *doc, "",
             f"Placement of one VPS ({VPS_PER_HOST} VPS per host, records on SQLite; median of {placements}):", "",
             f"| hosts | VPS recorded | among every host | / {host_counts[0]} hosts | in one site (a third) | "
             "every host read, chosen in Python (peer) | SQL / peer |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    placed = []
    for hosts in host_counts:
        with tempfile.TemporaryDirectory() as tmp:
            median, in_site, peer = placement(Path(tmp), hosts, placements)
        placed.append((hosts, median, in_site, peer))
        lines.append(f"| {hosts:,} | {hosts * VPS_PER_HOST:,} | {median:.2f} ms | {median / placed[0][1]:.1f}x | "
                     f"{in_site:.2f} ms | {peer:.2f} ms | {median / peer:.2f}x |")
        print(lines[-1], flush=True)
    lines += ["", f"One reconciliation pass ({DOMAINS_PER_HOST} running domains per libvirt test:/// host, "
              f"median of {passes}):", "",
              "| hosts | domains | pass | bare getAllDomainStats (floor) | pass / floor | per domain |",
              "|---:|---:|---:|---:|---:|---:|"]
    passed = []
    for hosts in reconcile_hosts:
        with tempfile.TemporaryDirectory() as tmp:
            median, floor = reconcile_pass(Path(tmp), hosts, passes)
        domains = hosts * DOMAINS_PER_HOST
        passed.append((domains, median, floor))
        lines.append(f"| {hosts} | {domains:,} | {median:.0f} ms | {floor:.1f} ms | {median / floor:.1f}x | "
                     f"{median * 1000 / domains:.0f} µs |")
        print(lines[-1], flush=True)
    lines.append("")
    most, (domains, pass_ms, floor_ms) = placed[-1], passed[-1]
    per_domain = [median / d for d, median, _ in passed]
    targets = [
        Target(f"fleet: placement among {most[0]:,} hosts (median)", most[1], PLACEMENT_MS, unit="ms",
               relative=False),
        Target(f"fleet: placement among {most[0]:,} hosts, one SQL query / every host read and chosen in Python",
               most[1] / most[3], PEER_SHARE),
        Target(f"fleet: one reconciliation pass over {domains:,} domains (median)", pass_ms / 1000, PASS_SECONDS,
               unit="s", relative=False),
        Target(f"fleet: reconciliation pass / its bare getAllDomainStats calls, {domains:,} domains",
               pass_ms / floor_ms, FLOOR_TIMES),
        Target(f"fleet: reconciliation time per domain, {domains:,} domains / {passed[0][0]:,}",
               per_domain[-1] / per_domain[0], GROWTH),
    ]
    figures = [
        Figure("fleet-placement", "Placement of one VPS as hosts grow", "hosts (10 VPS each)", "median (ms)",
               {"one SQL query, every host": [(h, m) for h, m, _, _ in placed],
                "one SQL query, one site": [(h, s) for h, _, s, _ in placed],
                "peer: every host read, chosen in Python": [(h, p) for h, _, _, p in placed]}, logx=True),
        Figure("fleet-reconcile", "One reconciliation pass as domains grow", "running domains (100 per host)",
               "median (ms)", {"reconciliation pass": [(d, m) for d, m, _ in passed],
                               "floor: bare getAllDomainStats": [(d, f) for d, _, f in passed]}, logx=True),
    ]
    return Result(KEY, HEADING, lines, targets, figures)


if __name__ == "__main__":
    from bench.run import main

    raise SystemExit(main([KEY]))
