"""Lists that scale: ``GET /v1/vps`` a page at a time (api/pages.py) as one customer's VPS grow.

The real application in process (authentication, the Guard, routing, the query, serialisation;
no network), on SQLite (the embedded default) and, when ``$VPSCTL_TEST_POSTGRES_URL`` is set, a
PostgreSQL schema of its own.  One customer holds every VPS; beside their first page, measured in
the same run and in turn with it: the same call for a customer who has none (the floor:
everything but reading the page), a page half-way down the list (by cursor), and staff's first
page over everyone's.  Targets, on each database: the first page's p99 under 30 ms at every size;
the first page's median at the largest size at most 1.5 x at the smallest (size costs nothing);
the half-way page's median at most 1.5 x the first page's (depth costs nothing).
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from api.app import create_app
from bench.report import Figure, Result, Target, count, percentile, quick
from orchestrator.core.accounts import create_customer
from orchestrator.core.auth import create_token
from orchestrator.core.models import Customer, Host, Role, Vps, VpsStatus
from tests.databases import empty_database

KEY = "lists"
HEADING = "Lists: GET /v1/vps a page at a time"
TARGET_P99_MS = 30.0
TARGET_GROWTH = 1.5
PATHS = ("first", "half-way", "staff", "floor")


def timed(client: TestClient, path: str, token: str) -> tuple[float, dict[str, Any]]:
    began = time.perf_counter()
    answer = client.get(path, headers={"Authorization": f"Bearer {token}"})
    took = (time.perf_counter() - began) * 1000
    assert answer.status_code == 200, answer.text
    return took, dict(answer.json())


Call = tuple[TestClient, str, str]  # client, path, token


def setup(kind: str, size: int, tmp: Path, stack: ExitStack) -> dict[str, Call]:
    """An application over a database of its own where customer ``many`` holds ``size`` VPS,
    open until ``stack`` closes; the four calls measured on it, by name."""
    settings = stack.enter_context(empty_database(kind, tmp / f"{kind}-{size}"))
    unlimited = settings.api.model_copy(update={"rate_per_minute": 10_000_000})  # a bench calls faster
    app = create_app(settings.model_copy(update={"api": unlimited}), run_worker=False)
    engine = app.state.engine
    stack.callback(engine.dispose)
    with Session(engine) as session:
        for name in ("many", "none"):
            create_customer(session, name, f"{name}@example.test", "en", actor="bench")
        session.commit()
        many, none = create_token(session, Role.customer, "many"), create_token(session, Role.customer, "none")
        staff = create_token(session, Role.support)
        host = Host(name="h", uri="test:///default", site="Paris")
        session.add(host)
        session.flush()
        owner = session.exec(select(Customer.id).where(Customer.name == "many")).one()
        assert owner is not None
        session.add_all([Vps(name=f"v{i}", customer_id=owner, host_id=host.id, image="tiny", vcpus=1,
                             memory_mib=256, disk_gib=2, status=VpsStatus.running) for i in range(size)])
        session.commit()
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE vps")
            conn.commit()
    client = stack.enter_context(TestClient(app))
    cursor = None
    for _ in range(size // 2 // 500):  # 500 a page to half-way
        _, page = timed(client, "/v1/vps?limit=500" + (f"&cursor={cursor}" if cursor else ""), many)
        cursor = page["next"]
    half_way = "/v1/vps" + (f"?cursor={cursor}" if cursor else "")
    return {"first": (client, "/v1/vps", many), "half-way": (client, half_way, many),
            "staff": (client, "/v1/vps", staff), "floor": (client, "/v1/vps", none)}


def run(kind: str, sizes: tuple[int, ...], samples: int, tmp: Path) -> dict[int, dict[str, dict[str, float]]]:
    """p50 and p99 (ms) of each call, by size and name.  Every size has its application open at
    once, and each round takes every call of every size in turn: the machine's load weighs on
    them all alike, and the ratios between them hold."""
    with ExitStack() as stack:
        calls = {size: setup(kind, size, tmp, stack) for size in sizes}
        times: dict[tuple[int, str], list[float]] = {(size, name): [] for size in sizes for name in PATHS}
        warm_up = min(20, max(5, samples // 4))  # rounds not counted
        for i in range(warm_up + samples):
            for size in sizes:
                for name, (client, path, token) in calls[size].items():
                    took = timed(client, path, token)[0]
                    if i >= warm_up:
                        times[size, name].append(took)
    return {size: {name: {"p50": percentile(times[size, name], 0.5), "p99": percentile(times[size, name], 0.99)}
                   for name in PATHS} for size in sizes}


def measure(kinds: list[str] | None = None, sizes: tuple[int, ...] | None = None,
            samples: int | None = None) -> Result:
    kinds = kinds or ["sqlite"] + (["postgresql"] if os.environ.get("VPSCTL_TEST_POSTGRES_URL") else [])
    sizes = sizes or ((100, 2_000) if quick() else (100, 1_000, 10_000))
    samples = samples or count(300, 60)
    table = ["| database | VPS | first page p50 | first page p99 | half-way p50 | half-way p99 | staff p99 | "
             "floor p50 | floor p99 | first / floor (p50) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    targets: list[Target] = []
    series: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            found = run(kind, sizes, samples, Path(tmp))
            for size, t in found.items():
                table.append(f"| {kind} | {size:,} | {t['first']['p50']:.1f} | {t['first']['p99']:.1f} | "
                             f"{t['half-way']['p50']:.1f} | {t['half-way']['p99']:.1f} | {t['staff']['p99']:.1f} | "
                             f"{t['floor']['p50']:.1f} | {t['floor']['p99']:.1f} | "
                             f"{t['first']['p50'] / t['floor']['p50']:.2f}x |")
            series[f"{kind}: first page p50"] = [(size, t["first"]["p50"]) for size, t in found.items()]
            series[f"{kind}: first page p99"] = [(size, t["first"]["p99"]) for size, t in found.items()]
            series[f"{kind}: floor p50 (no VPS)"] = [(size, t["floor"]["p50"]) for size, t in found.items()]
            small, large = found[sizes[0]], found[sizes[-1]]
            worst = max(found, key=lambda size: found[size]["first"]["p99"])
            targets += [
                Target(f"lists, {kind}: first page p99, worst size ({worst:,} VPS)", found[worst]["first"]["p99"],
                       TARGET_P99_MS, unit="ms", relative=False),
                Target(f"lists, {kind}: first page p50 at {sizes[-1]:,} VPS / at {sizes[0]:,}",
                       large["first"]["p50"] / small["first"]["p50"], TARGET_GROWTH),
                Target(f"lists, {kind}: half-way page p50 / first page p50 at {sizes[-1]:,} VPS",
                       large["half-way"]["p50"] / large["first"]["p50"], TARGET_GROWTH),
            ]
    lines = [
        "`python -m bench.list_bench`: the application in process (authentication, Guard, routing, query, "
        "serialisation; no network), 50 VPS a page, newest first; one customer holds them all. Milliseconds "
        f"over {samples} calls of each kind per row, taken in turn with every other kind and size (each size "
        "in a database of its own, all open at once): the first page, a page "
        "half-way down the list (by cursor), staff's first page over everyone's, and the floor: the same "
        "call for a customer with no VPS. Keyset pages read from an index (`ix_vps_owner_newest`, "
        "`ix_vps_newest`), so depth and size should cost nothing.",
        "",
        *table,
        "",
    ]
    figure = Figure("lists", "GET /v1/vps, first page, as one customer's VPS grow", "VPS held by the customer",
                    "ms", series, logx=True,
                    bounds={f"target: first page p99 under {TARGET_P99_MS:.0f} ms": TARGET_P99_MS})
    return Result(KEY, HEADING, lines, targets, [figure])


if __name__ == "__main__":
    from bench.run import main

    raise SystemExit(main([KEY]))
