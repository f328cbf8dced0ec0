"""A worker killed at a named point of a job (orchestrator/core/faults), then another started.

``Drill`` keeps one worker process at a time over a test module, armed through a file: a point is
armed, a job asked, and the worker must die with SIGKILL at exactly that point of that job, on
its first attempt — the fault log it wrote just before dying says so, and nothing else counts.
The next worker takes the job back at once (its predecessor's process is gone from this
machine), runs it to success on a second attempt, and the host must then hold exactly what the
records say.  A point the job never reaches fails the case as soon as the job ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import libvirt
import pytest
from sqlmodel import Session, col, select

from orchestrator.compute.hosts import Drivers, register_host
from orchestrator.core.accounts import create_customer
from orchestrator.core.auth import Principal
from orchestrator.core.db import make_engine
from orchestrator.core.models import Job, JobEvent, Role, Vps
from orchestrator.hypervisor.libvirt_driver import refresh_pool
from orchestrator.operations import create
from tests.conftest import (
    TEST_POOL,
    URI,
    ask_job,
    base_settings,
    cleanup_host,
    client_key,
    libvirt_available,
    register_image,
)

STAFF = Principal(Role.support, None, "crash-test")
T = TypeVar("T", Job, Vps)


def need_libvirt() -> None:
    if not libvirt_available():
        pytest.fail(f"libvirtd is not reachable at {URI} (scripts/test.sh starts one)")


class Drill:
    def __init__(self, tmp: Path, **overrides: Any) -> None:
        self.tmp = tmp
        self.arm_file = tmp / "kill-at"
        self.arm_file.write_text("")
        self.fault_log = tmp / "faults.log"
        # A guest asked to shut down while it boots hears the button again after 3 s, not 10.
        self.settings = base_settings(tmp, **{"fault_kill_at": f"@{self.arm_file}", "fault_log": self.fault_log,
                                              "shutdown_retry_seconds": 3.0, **overrides})
        self.engine = make_engine(self.settings)
        self.proc: subprocess.Popen[bytes] | None = None
        self.worker_log = tmp / "worker.log"
        self.starts = 0
        drivers = Drivers()
        with Session(self.engine) as session:
            register_host(session, self.settings, drivers, "local", URI, "Marseille")
            create_customer(session, "alice", "alice@example.test", "fr", actor="tests")
            session.commit()
        drivers.close()
        register_image(self.engine, self.settings)
        self.key, self.public_key = client_key(tmp)

    # --- the worker process -------------------------------------------------------------------
    def start(self) -> None:
        handle = self.worker_log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "worker"],
                                     env={**os.environ, **self.settings.as_environment()},
                                     stdout=handle, stderr=handle)
        self.starts += 1

    def running(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.start()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    # --- jobs -----------------------------------------------------------------------------------
    def ask(self, vps_id: str | None, operation: Any, params: Any) -> str:
        return ask_job(self.engine, self.settings, STAFF, vps_id, operation, params)

    def _read(self, model: type[T], key: str) -> T:
        with Session(self.engine) as session:
            row = session.get(model, key)
            assert row is not None, (model, key)
            session.expunge(row)
            return row

    def job(self, job_id: str) -> Job:
        return self._read(Job, job_id)

    def vps(self, vps_id: str) -> Vps:
        return self._read(Vps, vps_id)

    def finish(self, job_id: str, timeout: float = 300, expect: str = "succeeded") -> Job:
        """Wait for the job's end with a worker running; it must end ``expect``."""
        self.running()
        deadline = time.monotonic() + timeout
        while (job := self.job(job_id)).status not in ("succeeded", "failed", "cancelled"):
            assert time.monotonic() < deadline, f"job {job_id} ({job.kind}) not finished in {timeout} s: {job.step}"
            assert self.proc is not None and self.proc.poll() is None, \
                f"the worker died (exit {self.proc.returncode if self.proc else None}) with no point armed"
            time.sleep(0.05)
        assert job.status == expect, (job.kind, job.status, job.error)
        return job

    def create_vps(self, name: str = "drill") -> str:
        job_id = self.ask(None, create.CreateVps, create.VpsCreate(
            name=name, image="tiny", vcpus=1, memory_mib=192, disk_gib=1, ssh_keys=[self.public_key],
            customer="alice", reason="test: a VPS made without an order"))
        vps_id = self.job(job_id).vps_id
        assert vps_id is not None
        self.finish(job_id)
        return vps_id

    # --- the kill ---------------------------------------------------------------------------------
    def points(self, job_id: str) -> list[dict[str, Any]]:
        if not self.fault_log.exists():
            return []
        return [r for r in map(json.loads, self.fault_log.read_text().splitlines()) if r["job"] == job_id]

    def killed_at(self, point: str, ask: Callable[[], str], timeout: float = 300, expect: str = "succeeded",
                  between: Callable[[], None] | None = None) -> str:
        """Arm ``point``, ask the job, see the worker die there, (``between``: look at what the
        death left), start another, see it finish the job (``expect``) on a second attempt.
        Answers the job's id."""
        kind, when, step = point.split(":")
        self.running()
        self.arm_file.write_text(point)
        job_id = ask()
        assert self.job(job_id).kind == kind
        dying = self.proc
        assert dying is not None
        deadline = time.monotonic() + timeout
        while dying.poll() is None:
            job = self.job(job_id)
            assert job.status not in ("succeeded", "failed", "cancelled"), \
                f"{point}: never reached, the job ended {job.status} ({job.error}); points reached: " \
                f"{[r['point'] for r in self.points(job_id)]}"
            assert time.monotonic() < deadline, f"{point}: the worker did not die in {timeout} s"
            time.sleep(0.02)
        self.arm_file.write_text("")
        assert dying.returncode == -signal.SIGKILL, f"{point}: the worker ended otherwise ({dying.returncode})"
        last = self.points(job_id)[-1]
        assert (last["point"], last["attempt"], last["action"], last["pid"]) == (point, 1, "kill", dying.pid), last
        assert self.job(job_id).status == "running"  # its lease still holds it: nobody gave it back
        if between is not None:
            between()

        self.start()
        job = self.finish(job_id, timeout, expect)
        assert job.attempts == 2, (point, job.attempts)
        with Session(self.engine) as session:
            said = [e.message for e in session.exec(select(JobEvent).where(JobEvent.job_id == job_id)
                                                    .order_by(col(JobEvent.id))).all()]
        assert any(f"worker process {dying.pid} holding the job is gone" in m for m in said), said
        assert "resumed after a lost lease (attempt 2)" in said, said
        again = [r["point"] for r in self.points(job_id) if r["attempt"] == 2]
        if when in ("before", "after", "during") and step not in ("succeed", "rollback"):
            # the step the worker died in (or right after, unrecorded) runs again, whole
            assert f"{kind}:before:{step}" in again, (point, again)
        return job_id

    # --- what the host holds ------------------------------------------------------------------------
    def on_host(self, vps_id: str) -> dict[str, Any]:
        """The domain of ``vps_id`` on the host ("running", "defined" or None), its volumes in the
        VPS pool by their last name part, and how many domains of this module's VPS the host holds."""
        with Session(self.engine) as session:
            ours = {v.id.lower() for v in session.exec(select(Vps)).all()}
        conn = libvirt.open(URI)
        try:
            try:
                dom = conn.lookupByUUIDString(vps_id)
                domain: str | None = "running" if dom.isActive() else "defined"
            except libvirt.libvirtError:
                domain = None
            pool = conn.storagePoolLookupByName(TEST_POOL)
            refresh_pool(pool)
            volumes = sorted(v.split("-")[-1] for v in pool.listVolumes() if vps_id in v)
            total = len([d for d in conn.listAllDomains(0) if d.UUIDString().lower() in ours])
            return {"domain": domain, "volumes": volumes, "domains": total}
        finally:
            conn.close()

    def backups_on_host(self, vps_id: str) -> list[str]:
        conn = libvirt.open(URI)
        try:
            pool = conn.storagePoolLookupByName(self.settings.hosts.backup_pool)
            refresh_pool(pool)
            return sorted(v for v in pool.listVolumes() if vps_id in v)
        finally:
            conn.close()


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drill]:
    need_libvirt()
    drill = Drill(tmp_path_factory.mktemp("drill"))
    try:
        yield drill
    finally:
        drill.stop()
        cleanup_host(drill.settings, drill.engine)


def kill_points(kind: str, steps: list[str], whens: tuple[str, ...] = ("before", "after")) -> list[str]:
    return [f"{kind}:{when}:{step}" for step in steps for when in whens]


def thinned(points: list[str], slow: set[str]) -> list[Any]:
    """The points as test parameters, those in ``slow`` marked slow: the test command runs the
    others; the full run (``VPSCTL_TEST_DEBIAN=1 scripts/test.sh``) runs them all."""
    assert slow <= set(points), slow - set(points)
    return [pytest.param(p, marks=pytest.mark.slow) if p in slow else p for p in points]
