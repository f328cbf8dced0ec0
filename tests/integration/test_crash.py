"""A worker killed (SIGKILL) in the middle of a create or a delete: once a worker runs again the
job resumes, and the host ends holding exactly what the recorded status says."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import libvirt
import pytest
from sqlmodel import Session, col, select

from orchestrator.compute.hosts import Drivers, register_host
from orchestrator.core.accounts import create_customer
from orchestrator.core.auth import Principal
from orchestrator.core.db import make_engine
from orchestrator.core.models import Customer, Job, JobEvent, Role, Vps
from orchestrator.core.settings import Settings
from orchestrator.operations import create, delete
from tests.conftest import TEST_POOL, URI, ask_job, base_settings, cleanup_host, client_key, register_image

pytestmark = pytest.mark.libvirt
STAFF = Principal(Role.support, None, "crash-test")


def settings_env(settings: Settings) -> dict[str, str]:
    return {**os.environ, **settings.as_environment()}


class Workers:
    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings = settings
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        handle = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "worker"],
                                     env=settings_env(self.settings), stdout=handle, stderr=handle)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def world(tmp_path: Path, requires_libvirt: None) -> Any:
    settings = base_settings(tmp_path)
    engine = make_engine(settings)
    drivers = Drivers()
    with Session(engine) as session:
        register_host(session, settings, drivers, "local", URI, "Marseille")
        customer = create_customer(session, "alice", "alice@example.test", "fr", actor="tests")
        session.commit()
        customer_id = customer.id
    drivers.close()
    register_image(engine, settings)
    workers = Workers(settings, tmp_path / "worker.log")
    yield settings, engine, customer_id, workers
    workers.stop()
    cleanup_host(settings, engine)


def wait_for(engine: Any, job_id: str, predicate: Any, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with Session(engine) as session:
            if predicate(session):
                return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id}: condition not met in {timeout} s")


def step_started(job_id: str, step: str) -> Any:
    return lambda s: s.exec(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.step == step,
                                                   JobEvent.status == "started")).first() is not None


def kill_and_resume(engine: Any, workers: Workers, job_id: str, kill_at: str) -> None:
    """SIGKILL the worker once the job has started ``kill_at``, start another, wait for the end."""
    wait_for(engine, job_id, step_started(job_id, kill_at))
    workers.kill()
    workers.start()
    wait_for(engine, job_id, finished(job_id))


def finished(job_id: str) -> Any:
    return lambda s: s.get(Job, job_id).status in ("succeeded", "failed")


def on_host(engine: Any, vps_id: str) -> dict[str, Any]:
    """What the host holds of ``vps_id``, and how many domains it holds of this test's VPS (the
    ones its database records: other test runs may share the libvirtd)."""
    with Session(engine) as session:
        ours = {vps.id.lower() for vps in session.exec(select(Vps)).all()}
    conn = libvirt.open(URI)
    try:
        try:
            dom = conn.lookupByUUIDString(vps_id)
            domain = "running" if dom.isActive() else "defined"
        except libvirt.libvirtError:
            domain = None
        pool = conn.storagePoolLookupByName(TEST_POOL)
        pool.refresh(0)
        volumes = sorted(v.split("-")[-1] for v in pool.listVolumes() if vps_id in v)
        return {"domain": domain, "volumes": volumes,
                "domains_total": len([d for d in conn.listAllDomains(0) if d.UUIDString().lower() in ours])}
    finally:
        conn.close()


def order(settings: Settings, engine: Any, customer_id: int, tmp_path: Path) -> tuple[str, str]:
    _key, public = client_key(tmp_path)
    with Session(engine) as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        name = customer.name
    job_id = ask_job(engine, settings, STAFF, None, create.CreateVps, create.VpsCreate(
        name="crash", image="tiny", vcpus=1, memory_mib=192, disk_gib=1, ssh_keys=[public], customer=name,
        reason="test: a VPS made without an order"))
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None and job.vps_id is not None
        return job.vps_id, job_id


def killed_and_resumed(engine: Any, workers: Workers, job_id: str, kill_at: str) -> None:
    """SIGKILL the worker once the job has started ``kill_at``, check the lease still holds the
    job, start another worker, and check it resumed the job after the lease expired and finished
    it: the second of exactly two attempts."""
    wait_for(engine, job_id, step_started(job_id, kill_at))
    workers.kill()
    with Session(engine) as session:
        assert session.get(Job, job_id).status == "running"  # the lease still holds it
    workers.start()
    wait_for(engine, job_id, finished(job_id))
    with Session(engine) as session:
        job = session.get(Job, job_id)
        resumed = session.exec(select(JobEvent).where(JobEvent.job_id == job_id,
                                                      col(JobEvent.message).contains("lost lease"))).all()
        assert job.status == "succeeded", job.error
        assert resumed, "the second worker resumed the job after the lease expired"
        assert job.attempts == 2


@pytest.mark.parametrize("kill_at", ["upload_image", "create_seed", "start_domain", "wait_for_address"])
def test_create_survives_a_killed_worker(world: Any, tmp_path: Path, kill_at: str) -> None:
    settings, engine, customer_id, workers = world
    vps_id, job_id = order(settings, engine, customer_id, tmp_path)
    workers.start()
    killed_and_resumed(engine, workers, job_id, kill_at)
    with Session(engine) as session:
        vps = session.get(Vps, vps_id)
        assert vps.status == "running" and vps.addresses
    assert on_host(engine, vps_id) == {"domain": "running", "volumes": ["root.qcow2", "seed.iso"], "domains_total": 1}


@pytest.mark.parametrize("kill_at", ["destroy_domain", "undefine_domain", "discard_volumes"])
def test_delete_survives_a_killed_worker(world: Any, tmp_path: Path, kill_at: str) -> None:
    settings, engine, customer_id, workers = world
    vps_id, job_id = order(settings, engine, customer_id, tmp_path)
    workers.start()
    wait_for(engine, job_id, finished(job_id))
    with Session(engine) as session:
        assert session.get(Job, job_id).status == "succeeded"
    delete_job = ask_job(engine, settings, STAFF, vps_id, delete.DeleteVps, delete.DeleteParams(confirm_data_loss=True))
    wait_for(engine, delete_job, step_started(delete_job, kill_at))
    workers.kill()
    workers.start()
    wait_for(engine, delete_job, finished(delete_job))
    with Session(engine) as session:
        assert session.get(Job, delete_job).status == "succeeded"
        assert session.get(Vps, vps_id).status == "deleted"
    assert on_host(engine, vps_id) == {"domain": None, "volumes": [], "domains_total": 0}


def test_create_that_cannot_finish_rolls_back(world: Any, tmp_path: Path) -> None:
    """A guest that never answers SSH in time: the job fails and removes everything it made."""
    settings, engine, customer_id, workers = world
    workers.settings = settings.replace(ssh_ready_timeout_seconds=0.5, guest_proxy_command="false")
    vps_id, job_id = order(settings, engine, customer_id, tmp_path)
    workers.start()
    wait_for(engine, job_id, finished(job_id))
    with Session(engine) as session:
        job, vps = session.get(Job, job_id), session.get(Vps, vps_id)
        assert job.status == "failed" and "SSH" in (job.error or "")
        assert vps.status == "error" and vps.error
    assert on_host(engine, vps_id) == {"domain": None, "volumes": [], "domains_total": 0}


def created(world: Any, tmp_path: Path) -> tuple[str, Any]:
    settings, engine, customer_id, workers = world
    vps_id, job_id = order(settings, engine, customer_id, tmp_path)
    workers.start()
    wait_for(engine, job_id, finished(job_id))
    with Session(engine) as session:
        assert session.get(Job, job_id).status == "succeeded"
        return vps_id, session.get(Vps, vps_id)


def truthful(engine: Any, vps_id: str) -> str:
    """The recorded status and what libvirt reports agree; returns the status."""
    with Session(engine) as session:
        vps = session.get(Vps, vps_id)
        status, task = vps.status, vps.task
    domain = on_host(engine, vps_id)["domain"]
    assert task is None
    assert (status in ("running", "cut_off")) == (domain == "running"), (status, domain)
    return str(status)


@pytest.mark.parametrize("kill_at", ["stop_if_cold", "grow_disk", "redefine", "start_if_cold"])
def test_cold_resize_survives_a_killed_worker(world: Any, tmp_path: Path, kill_at: str) -> None:
    from orchestrator.operations import resize

    settings, engine, _customer_id, workers = world
    vps_id, vps = created(world, tmp_path)
    job_id = ask_job(engine, settings, STAFF, vps_id, resize.ResizeVps,
                     resize.ResizeBody(memory_mib=512, disk_gib=2, reason="crash test"))
    with Session(engine) as session:
        assert session.get(Job, job_id).params["plan"]["reboot"] is True
    kill_and_resume(engine, workers, job_id, kill_at)
    with Session(engine) as session:
        assert session.get(Job, job_id).status == "succeeded", session.get(Job, job_id).error
        vps = session.get(Vps, vps_id)
        assert (vps.memory_mib, vps.disk_gib) == (512, 2)
    assert truthful(engine, vps_id) == "running"
    conn = libvirt.open(URI)
    try:
        dom = conn.lookupByUUIDString(vps_id)
        # the definition carries the new size (the balloon reaches it once the guest's driver loads)
        assert f"<currentMemory unit='KiB'>{512 * 1024}</currentMemory>" in dom.XMLDesc(
            libvirt.VIR_DOMAIN_XML_INACTIVE)
        assert dom.blockInfo("vda")[0] == 2 << 30
    finally:
        conn.close()


@pytest.mark.parametrize("kill_at", ["create_new_seed", "stop_old_system", "start_new_system", "retire_old_disk"])
def test_reinstall_survives_a_killed_worker(world: Any, tmp_path: Path, kill_at: str) -> None:
    from orchestrator.operations import reinstall

    settings, engine, _customer_id, workers = world
    vps_id, _ = created(world, tmp_path)
    _key, public = client_key(tmp_path)
    job_id = ask_job(engine, settings, STAFF, vps_id, reinstall.ReinstallVps,
                     reinstall.ReinstallBody(ssh_keys=[public], confirm_data_loss=True))
    kill_and_resume(engine, workers, job_id, kill_at)
    with Session(engine) as session:
        job, vps = session.get(Job, job_id), session.get(Vps, vps_id)
        assert job.status == "succeeded", job.error
        assert vps.root_generation == 1 and vps.ssh_authorized_keys == [public]
    assert truthful(engine, vps_id) == "running"
    assert on_host(engine, vps_id)["volumes"] == ["1.iso", "1.qcow2"]


@pytest.mark.parametrize("kill_at", ["copy_backup", "switch_disk", "wait_for_address"])
def test_restore_survives_a_killed_worker(world: Any, tmp_path: Path, kill_at: str) -> None:
    from orchestrator.operations import backup, restore

    settings, engine, _customer_id, workers = world
    vps_id, _ = created(world, tmp_path)
    backup_job = ask_job(engine, settings, STAFF, vps_id, backup.BackupVps, backup.BackupParams(kind="manual"))
    wait_for(engine, backup_job, finished(backup_job))
    job_id = ask_job(engine, settings, STAFF, vps_id, restore.RestoreVps,
                     restore.RestoreBody(backup_id=backup_job, confirm_data_loss=True))
    kill_and_resume(engine, workers, job_id, kill_at)
    with Session(engine) as session:
        job, vps = session.get(Job, job_id), session.get(Vps, vps_id)
        assert job.status == "succeeded", job.error
        assert vps.root_generation == 1
    assert truthful(engine, vps_id) == "running"
    assert on_host(engine, vps_id)["volumes"] == ["1.iso", "1.qcow2"]
