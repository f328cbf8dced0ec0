"""Fault: PostgreSQL restarted under the API and a worker (docs/reliability.md, "Faults injected").

A PostgreSQL of the test's own (tests/pgserver.py: initdb in a directory of the test's, another
loopback port; the test run's shared server is not touched) holds the orchestrator's records; the
API is served by uvicorn on loopback and a worker runs its claim loop beside it (the in-memory
hypervisor of tests/fakes.py: the claim here is about the database).  A reboot is in the middle of
its step, three jobs of the VPS queued behind it (a backup, a rename, a reboot), when the server
is stopped.  While it is down the API answers ``503`` problem+json with ``Retry-After`` (never a
500), the claim loop meets the outage (logged) and goes on, and the reboot's end cannot be
recorded.  Once the server is started again on the same port the API answers again, the reboot is
taken up again (its step was not recorded done: it runs again, attempt 2) and every queued job
runs once: nothing lost."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from orchestrator.core.clock import utcnow
from orchestrator.core.models import Job, JobEvent
from tests.api.fakeworld import make_world
from tests.conftest import until as shared_until
from tests.fakes import FakeDriver, FakeHost
from tests.pgserver import PrivatePostgres
from tests.served import serving


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    server.start()
    try:
        yield server
    finally:
        server.remove()


class Gate:
    """The first reboot of the test holds its step until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.reboots: list[float] = []

    def driver(self, uri: str, host: FakeHost) -> FakeDriver:
        gate = self

        class Gated(FakeDriver):
            def reboot_domain(self, uuid: str, hard: bool) -> None:
                gate.reboots.append(time.monotonic())
                if len(gate.reboots) == 1:
                    gate.entered.set()
                    assert gate.release.wait(60), "the test never released the reboot"
                super().reboot_domain(uuid, hard)

        return Gated(uri, host)


until = functools.partial(shared_until, within=60)  # tests/conftest.until


def test_postgresql_restarted_under_the_api_and_a_worker(tmp_path: Path, postgres: PrivatePostgres,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    gate = Gate()
    world = make_world(tmp_path, "pg", driver=gate.driver, database_url=postgres.url, job_lease_seconds=3.0,
                       job_heartbeat_seconds=0.5, job_poll_seconds=0.1)
    api, vps_id = world.api, world.vps_id
    caplog.set_level(logging.WARNING, logger="orchestrator.engine.worker")
    worker = world.worker
    loop = worker.start_thread()
    try:
        with serving(api.client.app) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            def call(method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                return http.request(method, path, headers=headers, **kwargs)

            asked = []
            for operation, body in (("reboot", {"hard": True}), ("backup", {"note": "behind the reboot"}),
                                    ("rename", {"name": "renamed"}), ("reboot", {"hard": False})):
                answer = call("POST", f"/v1/vps/{vps_id}/{operation}", api.alice, json=body)
                assert answer.status_code == 202, answer.text
                asked.append(answer.json()["job"]["id"])
            reboot_id = asked[0]
            assert gate.entered.wait(30), "the reboot never reached its step"

            postgres.stop()
            stopped_at = utcnow()
            assert not postgres.running()
            for method, path, token in (("GET", f"/v1/vps/{vps_id}", api.alice), ("GET", "/v1/jobs", api.support),
                                        ("POST", f"/v1/vps/{vps_id}/reboot", api.alice), ("GET", "/healthz", None)):
                down = call(method, path, token, json={} if method == "POST" else None)
                assert down.status_code == 503, (method, path, down.status_code, down.text)
                assert down.headers["content-type"] == "application/problem+json"
                assert down.headers["retry-after"].isdigit()
                assert down.json()["status"] == 503 and "database" in down.json()["detail"]
            # The claim loop meets the outage and goes on.
            until("the claim loop meeting the outage",
                  lambda: [r for r in caplog.records if "claim" in r.getMessage() and "database" in r.getMessage()])
            gate.release.set()  # the reboot's step ends while nothing can be recorded
            until("the worker giving the reboot up to its lease",
                  lambda: [r for r in caplog.records if reboot_id in r.getMessage() and "database" in r.getMessage()])
            assert loop.is_alive() and not postgres.running()

            postgres.start()
            restarted_at = utcnow()
            assert call("GET", "/healthz").status_code == 200
            assert call("GET", f"/v1/vps/{vps_id}", api.alice).status_code == 200

            def finished() -> list[dict[str, Any]]:
                jobs = [call("GET", f"/v1/jobs/{job_id}", api.alice).json() for job_id in asked]
                return jobs if all(j["status"] in ("succeeded", "failed", "cancelled") for j in jobs) else []

            jobs = until("every job asked before the outage finished", finished)
            assert [j["status"] for j in jobs] == ["succeeded"] * 4, [(j["kind"], j["error"]) for j in jobs]
            # A job asked now runs too: the loop that met the outage still claims.
            again = call("POST", f"/v1/vps/{vps_id}/reboot", api.alice, json={"hard": True})
            assert again.status_code == 202, again.text
            asked.append(again.json()["job"]["id"])
            assert until("the job asked after the outage",
                         lambda: call("GET", f"/v1/jobs/{asked[-1]}", api.alice).json()["status"] == "succeeded")
    finally:
        gate.release.set()
        worker.stop()
        loop.join(timeout=30)

    with Session(api.engine) as session:
        rows = {job.id: job for job in session.exec(select(Job).where(col(Job.id).in_(asked))).all()}
        events = session.exec(select(JobEvent).where(JobEvent.job_id == reboot_id).order_by(col(JobEvent.id))).all()
        every = session.exec(select(Job).where(Job.vps_id == vps_id, col(Job.created_at) >= rows[reboot_id].created_at)
                             ).all()
    # The reboot: begun before the outage, taken up again after it, its step run a second time.
    begun = [e for e in events if e.step == "reboot" and e.status == "started"]
    assert begun and begun[0].at < stopped_at
    claims = [e for e in events if e.step == "claimed"]
    assert len(claims) == 2 and claims[0].at < stopped_at < restarted_at <= claims[1].at, [
        (e.step, e.status, e.at) for e in events]
    assert rows[reboot_id].attempts == 2 and len(gate.reboots) == 4  # twice for it, once for each other reboot
    # Every other job ran once, in the order asked; no job besides them (nothing lost or doubled).
    assert all(rows[job_id].attempts == 1 for job_id in asked[1:])
    assert {job.id for job in every} == set(asked)
    order = sorted(asked[:4], key=lambda job_id: rows[job_id].finished_at)
    assert order == asked[:4]
    assert world.vps().status == "running" and world.host.domains[vps_id].state.value == "running"
    assert world.vps().name == "renamed"


def test_a_step_that_meets_the_database_down_is_taken_up_again_without_using_an_attempt(
        tmp_path: Path, clock: Any) -> None:
    """The database answers again by the time the worker records the step's failure (a blip): the
    job is queued again at its step, the attempt not counted, nothing rolled back; it then ends.
    (The database's error is raised by the step here, as psycopg raises it through SQLAlchemy;
    the outage itself is the test above's.)"""
    blips: list[str] = []

    def driver(uri: str, host: FakeHost) -> FakeDriver:
        class Blip(FakeDriver):
            def reboot_domain(self, uuid: str, hard: bool) -> None:
                if not blips:
                    blips.append(uuid)
                    raise OperationalError("SELECT 1", {}, psycopg.OperationalError(
                        "server closed the connection unexpectedly"))
                super().reboot_domain(uuid, hard)

        return Blip(uri, host)

    world = make_world(tmp_path, "blip", driver=driver)
    api = world.api
    asked = api.call("POST", f"/v1/vps/{world.vps_id}/reboot", api.alice, json={"hard": True})
    assert asked.status_code == 202, asked.text
    job_id = asked.json()["job"]["id"]
    world.run()
    with Session(api.engine) as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == "queued" and job.attempts == 0
        # it keeps its place in its VPS's queue: not turned into a deadline job, still started
        assert job.scheduled_at is None and job.started_at is not None
        retry = session.exec(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.status == "retry")).one()
    assert "the database did not answer (server closed the connection unexpectedly)" in retry.message
    clock.advance(timedelta(seconds=3))
    world.run()
    done = api.call("GET", f"/v1/jobs/{job_id}", api.support).json()
    assert done["status"] == "succeeded" and done["attempts"] == 1, done
    assert not [e for e in done["events"] if e["step"] == "rollback"] and blips == [world.vps_id]
