"""A burst of requests, many more than the database connections of an API process, on the real
server: each is answered, none fails or times out waiting for a connection held by a request
that waits for a thread (api/admission.py; docs/benchmarks.md, Load, measured this stall)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import Api
from tests.served import serving

BURST = 150  # clients calling at the same instant: ten times the process's 15 connections


def test_a_burst_beyond_the_connection_pool_is_answered_in_full(offline_api: Api) -> None:
    api = offline_api
    listed = api.call("GET", "/v1/vps", api.support)
    assert listed.status_code == 200
    start = threading.Barrier(BURST)

    def call(port: int, n: int) -> int:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            start.wait(timeout=60)
            path = "/v1/vps?limit=50" if n % 2 else "/v1/jobs?limit=50"
            return client.get(path, headers={"Authorization": f"Bearer {api.support}"}).status_code

    with serving(api.client.app) as port, ThreadPoolExecutor(max_workers=BURST) as pool:
        statuses = list(pool.map(lambda n: call(port, n), range(BURST)))
    assert statuses == [200] * BURST, {s: statuses.count(s) for s in set(statuses)}
