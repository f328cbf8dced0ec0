"""Helpers for lifecycle tests: order a tiny VPS and run commands in it."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import libvirt
import paramiko
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session, col, select

from orchestrator.core.models import WorkerStatus
from tests.conftest import URI, Api, client_key, ssh_run


class Guest:
    def __init__(self, api: Api, token: str, vps: dict[str, Any], key: paramiko.PKey) -> None:
        self.api, self.token, self.key = api, token, key
        self.id: str = vps["id"]
        self.proxy: str | None = None  # how its host's guests are reached, when not the main test host

    @property
    def record(self) -> dict[str, Any]:
        return dict(self.api.call("GET", f"/v1/vps/{self.id}", self.token).json())

    def ssh(self, command: str, timeout: float = 30) -> str:
        vps = self.record
        return ssh_run(vps["addresses"][0], vps["ssh_host_keys"][0]["public_key"], self.key, command, timeout,
                       self.proxy)

    def ssh_eventually(self, command: str, within: float = 90) -> str:
        deadline = time.monotonic() + within
        while True:
            try:
                return self.ssh(command, timeout=10)
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def do(self, operation: str, body: dict[str, Any] | None = None, token: str | None = None) -> dict[str, Any]:
        """Ask for an operation, wait for its job, return the job."""
        response = self.api.call("POST", f"/v1/vps/{self.id}/{operation}", token or self.token, json=body or {})
        assert response.status_code == 202, response.text
        return self.api.wait_job(response.json()["job"]["id"], token or self.token)

    def domain(self) -> libvirt.virDomain:
        conn = libvirt.open(URI)
        return conn.lookupByUUIDString(self.id)

    def serial_log(self) -> str:
        path = Path(f"/var/log/libvirt/qemu/vps-{self.id}-serial.log")
        return path.read_text(errors="replace") if path.exists() else ""


def order(api: Api, tmp_path: Path, token: str | None = None, unbilled: bool = False, **sizes: int | str) -> Guest:
    """A customer's VPS, ordered from a plan of these sizes (``unbilled``: made by staff for that
    customer without an order, for tests that subscribe it themselves), its create job done."""
    key, public = client_key(tmp_path)
    body = {"name": "life", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [public]}
    body.update(sizes)
    token = token or api.alice
    # R8.1-setup-fee: a customer orders from a plan
    response = api.unbilled(api.customer_of(token), json=body) if unbilled else api.order(token, json=body)
    assert response.status_code == 202, response.text
    job = api.wait_job(response.json()["job"]["id"], token)
    assert job["status"] == "succeeded", job
    return Guest(api, token, response.json()["vps"], key)


def eventually(probe: Any, within: float = 60, what: str = "condition") -> Any:
    """Poll ``probe`` until it returns something true, and return that; fail after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {within} s")
        time.sleep(0.25)


def mem_total_mib(guest: Guest) -> int:
    return int(guest.ssh("grep MemTotal /proc/meminfo").split()[1]) // 1024


def worker_looked(api: Api, since: datetime, what: str = "the worker's look at the queue") -> WorkerStatus:
    """Positive evidence that the in-process worker looked at the queue and found no job ready, by
    its clock at or after ``since`` (its record, orchestrator/engine/status.py): what a test
    asserts has not run was, at that moment, judged not to be due."""
    def probe() -> WorkerStatus | None:
        with Session(api.engine) as session:
            row = session.exec(select(WorkerStatus).where(col(WorkerStatus.stopped_at).is_(None),
                                                          col(WorkerStatus.idle_at) >= since)).first()
            if row is not None:
                session.expunge(row)
            return row

    return eventually(probe, 60, what)  # type: ignore[no-any-return]


def periodic(api: Api, task: str) -> tuple[int, int, dict[str, int]]:
    """A periodic duty's runs and failures so far and the facts of its last run that ended well,
    as ``GET /metrics`` shows them."""
    response = api.call("GET", "/metrics", api.support)
    assert response.status_code == 200, response.text
    runs, failures, facts = 0, 0, {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.labels.get("task") != task:
                continue
            if sample.name == "vpsctl_periodic_runs_total":
                runs = int(sample.value)
            elif sample.name == "vpsctl_periodic_failures_total":
                failures = int(sample.value)
            elif sample.name == "vpsctl_periodic_last_run_facts":
                facts[sample.labels["fact"]] = int(sample.value)
    return runs, failures, facts


def runs_after(api: Api, task: str, count: int, within: float = 60) -> dict[str, int]:
    """Once ``count`` more runs of ``task`` ended, none failing (the first may have begun before
    this call), the facts of the last one."""
    before, failed, _facts = periodic(api, task)

    def probe() -> dict[str, int] | None:
        runs, failures, facts = periodic(api, task)
        assert failures == failed, f"{failures - failed} runs of {task} failed"
        return facts if runs >= before + count else None

    return eventually(probe, within, f"{count} more runs of {task}")  # type: ignore[no-any-return]
