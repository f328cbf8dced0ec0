"""Lists that scale: ``GET /v1/vps`` over 10,000 VPS, a page at a time (api/pages.py).

The real application in process (authentication, the Guard, routing, the query, serialisation;
no network), on SQLite (the embedded default) and, when ``$VPSCTL_TEST_POSTGRES_URL`` is set, a
PostgreSQL schema of its own.  One customer holds 10,000 VPS; beside them, measured in the same
run: the same call for a customer who has none (the floor: everything but reading the page), a
page deep in the list (after 5,000, by cursor), and staff's first page over everyone's.  How it
grows: the same at 100 and 1,000 VPS.  Target: first page p99 under 30 ms.  Writes
docs/benchmarks.md (section "lists").
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from api.app import create_app
from bench.common import provenance, write_section
from orchestrator.core.accounts import create_customer
from orchestrator.core.auth import create_token
from orchestrator.core.models import Customer, Host, Role, Vps, VpsStatus
from tests.databases import empty_database

SIZES = (100, 1_000, 10_000)
SAMPLES = 300
TARGET_MS = 30.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def timed(client: TestClient, path: str, token: str) -> tuple[float, dict[str, Any]]:
    began = time.perf_counter()
    answer = client.get(path, headers={"Authorization": f"Bearer {token}"})
    took = (time.perf_counter() - began) * 1000
    assert answer.status_code == 200, answer.text
    return took, dict(answer.json())


def measure(client: TestClient, path: str, token: str) -> tuple[float, float]:
    for _ in range(20):  # warm-up
        timed(client, path, token)
    times = [timed(client, path, token)[0] for _ in range(SAMPLES)]
    return percentile(times, 0.5), percentile(times, 0.99)


def run(kind: str, size: int, tmp: Path) -> str:
    with empty_database(kind, tmp / f"{kind}-{size}") as settings:
        unlimited = settings.api.model_copy(update={"rate_per_minute": 10_000_000})  # a bench calls faster
        app = create_app(settings.model_copy(update={"api": unlimited}), run_worker=False)
        engine = app.state.engine
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
        with TestClient(app) as client:
            floor = measure(client, "/v1/vps", none)
            first = measure(client, "/v1/vps", many)
            cursor = None
            for _ in range(size // 2 // 500):  # 500 a page to half-way
                _, page = timed(client, "/v1/vps?limit=500" + (f"&cursor={cursor}" if cursor else ""), many)
                cursor = page["next"]
            deep = measure(client, "/v1/vps" + (f"?cursor={cursor}" if cursor else ""), many)
            everyone = measure(client, "/v1/vps", staff)
        engine.dispose()
    return (f"| {kind} | {size:,} | {first[0]:.1f} | {first[1]:.1f} | {deep[1]:.1f} | {everyone[1]:.1f} | "
            f"{floor[1]:.1f} | {first[1] / floor[1]:.2f}x |")


def main() -> None:
    source = provenance()  # first: it needs the libvirtd that names the QEMU and libvirt versions
    kinds = ["sqlite"] + (["postgresql"] if os.environ.get("VPSCTL_TEST_POSTGRES_URL") else [])
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(kind, size, Path(tmp)) for kind in kinds for size in SIZES]
    write_section("lists", [
        "## lists: GET /v1/vps a page at a time",
        "",
        f"`python -m bench.list_bench` on {source}. The application in process (authentication, "
        "Guard, routing, query, serialisation; no network), 50 VPS a page, newest first; one customer "
        f"holds them all. Milliseconds over {SAMPLES} calls each: the first page, a page half-way down "
        "the list (by cursor), staff's first page over everyone's, and the floor: the same call for a "
        "customer with no VPS. Keyset pages read from an index (`ix_vps_owner_newest`, "
        "`ix_vps_newest`), so depth and size cost nothing.",
        "",
        "| database | VPS | first page p50 | first page p99 | half-way p99 | staff p99 | floor p99 | first / floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"Target: first page p99 under {TARGET_MS:.0f} ms.",
        "",
    ])


if __name__ == "__main__":
    main()
