"""Faults of a hypervisor host during a create (docs/reliability.md, "Faults injected").

The host is a libvirtd of this test module's own (scripts/extra-host.sh: its own network and
mount namespaces; the libvirtd the test run shares is never restarted), registered in Paris; the
main test host is in Marseille.  A VPS ordered in Paris is created there by the in-process worker.

- **libvirtd restarted during the job.**  Once the create waits for its guest's address, the
  host's libvirtd is killed (SIGKILL, alone: the guest's QEMU, dnsmasq and virtlogd run on); the
  job's next call to it fails, the job is queued again (a ``retry`` event, recorded while the
  daemon is down), the daemon is started again, and the job goes on from the step it was in to
  the end: the same guest process (never restarted), every step done once, SSH answering with the
  host key generated for it, nothing on the other host.
- **The host vanishes during the job.**  Every process of the host is killed (its guest too) and
  it does not come back: the job retries, then fails naming what it could not reach; the VPS is
  ``error`` holding no capacity on any host, the other host holds nothing of it, the client reads
  a plain public error.  When the host comes back, deleting the VPS removes what it left there.
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest
from sqlmodel import Session, col, select

from orchestrator.compute.hosts import allocations
from orchestrator.core.clock import utcnow
from orchestrator.core.db import make_engine
from orchestrator.core.models import Host, Job, JobEvent, Vps, VpsStatus
from orchestrator.hypervisor.libvirt_driver import refresh_pool
from tests.conftest import (
    TEST_POOL,
    URI,
    Api,
    base_settings,
    cleanup_host,
    client_key,
    libvirt_available,
    serving,
)
from tests.conftest import until as shared_until
from tests.integration.conftest import extra_host, run_host
from tests.integration.lifecycle import Guest
from tests.smtp import Server, free_port

pytestmark = pytest.mark.libvirt
PUBLIC_ERROR = "the operation did not complete; the provider's staff have the details"


@pytest.fixture(scope="module")
def fault_host() -> Iterator[dict[str, str]]:
    yield from extra_host("hf", 2380)


@contextlib.contextmanager
def live(tmp_path: Path, host: dict[str, str], **overrides: Any) -> Iterator[Api]:
    """The API with an in-process worker, the main test host (Marseille) and the fault host
    (Paris, ``hf``) registered."""
    if not libvirt_available():
        pytest.fail(f"libvirtd is not reachable at {URI}")
    smtp = Server(free_port())
    smtp.start()
    settings = base_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=smtp.port, outbox_poll_seconds=0.2,
                             **overrides)
    engine = make_engine(settings)
    try:
        with serving(settings, engine) as api:
            added = api.call("POST", "/v1/hosts", api.support, json={
                "name": "hf", "uri": host["uri"], "site": "Paris", "guest_proxy_command": host["proxy"]})
            assert added.status_code == 201, added.text
            yield api
    finally:
        cleanup_host(settings, engine)
        smtp.stop()


def order_in_paris(api: Api, tmp_path: Path) -> tuple[Guest, str]:
    key, public = client_key(tmp_path)
    ordered = api.order(api.alice, json={"name": "faulty", "image": "tiny", "vcpus": 1, "memory_mib": 256,
                                         "disk_gib": 2, "site": "Paris", "ssh_keys": [public]})
    assert ordered.status_code == 202, ordered.text
    return Guest(api, api.alice, ordered.json()["vps"], key), ordered.json()["job"]["id"]


def events(api: Api, job_id: str) -> list[JobEvent]:
    with Session(api.engine) as session:
        return list(session.exec(select(JobEvent).where(JobEvent.job_id == job_id).order_by(col(JobEvent.id))).all())


until = functools.partial(shared_until, within=120)  # tests/conftest.until


def event(api: Api, job_id: str, step: str, status: str) -> JobEvent | None:
    return next((e for e in events(api, job_id) if e.step == step and e.status == status), None)


def answers(uri: str) -> bool:
    try:
        libvirt.open(uri).close()
    except libvirt.libvirtError:
        return False
    return True


def qemu_of(host: dict[str, str], vps_id: str) -> int | None:
    """The pid of the guest's QEMU among the host's processes."""
    pids = subprocess.run(["ip", "netns", "pids", host["netns"]], capture_output=True, text=True).stdout.split()
    for pid in pids:
        with contextlib.suppress(OSError):
            if f"guest=vps-{vps_id}".encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                return int(pid)
    return None


def holds(uri: str, vps_id: str, pools: tuple[str, ...]) -> list[str]:
    """The domain and volumes a host holds of the VPS."""
    conn = libvirt.open(uri)
    try:
        found = []
        with contextlib.suppress(libvirt.libvirtError):
            conn.lookupByUUIDString(vps_id)
            found.append("domain")
        for name in pools:
            with contextlib.suppress(libvirt.libvirtError):
                pool = conn.storagePoolLookupByName(name)
                refresh_pool(pool)
                found += sorted(v for v in pool.listVolumes() if vps_id in v)
        return found
    finally:
        conn.close()


def test_libvirtd_restarted_during_a_create(tmp_path: Path, fault_host: dict[str, str]) -> None:
    with live(tmp_path, fault_host, job_max_attempts=6) as api:
        guest, job_id = order_in_paris(api, tmp_path)
        waiting = until("the create waiting for its guest's address",
                        lambda: event(api, job_id, "wait_for_address", "started"))
        qemu = qemu_of(fault_host, guest.id)
        assert qemu is not None
        killed_at = utcnow()  # the script's first act
        run_host("kill-libvirtd", fault_host)
        assert not answers(fault_host["uri"])
        assert event(api, job_id, "wait_for_address", "done") is None  # killed while the step was under way
        retry = until("the job queued again while libvirtd is down", lambda: event(api, job_id, "wait_for_address",
                                                                                    "retry"))
        assert not answers(fault_host["uri"])  # the retry was decided while the daemon was still down
        started_at = utcnow()
        run_host("start-libvirtd", fault_host)

        job = api.wait_job(job_id, api.support)
        assert job["status"] == "succeeded", (job["error"], job["events"][-5:])
        assert waiting.at is not None and retry.at is not None
        assert waiting.at < killed_at < retry.at < started_at
        assert f"libvirt at {fault_host['uri']}" in retry.message, retry.message  # the connection that broke
        found = event(api, job_id, "wait_for_address", "done")
        assert found is not None and found.at is not None and found.at > started_at  # the step ended once it was back
        done = [e.step for e in events(api, job_id) if e.status == "done"]
        assert done == ["upload_image", "create_root_disk", "create_seed", "define_domain", "start_domain",
                        "wait_for_address", "filter_address", "verify_ssh"]  # each once, in order
        with Session(api.engine) as session:
            row = session.get(Job, job_id)
            assert row is not None and row.attempts >= 2
        # Nothing lost: the same guest process, running, reached over SSH with its generated key.
        assert qemu_of(fault_host, guest.id) == qemu
        guest.proxy = fault_host["proxy"]
        # A reconcile pass while libvirtd was down may have recorded hf unreachable (its VPS then
        # read "unknown", as a CI run saw); a later pass finds it answering again.
        until("hf recorded answering",
              lambda: api.call("GET", "/v1/hosts/hf", api.support).json()["state"] == "enabled")
        assert guest.record["status"] == "running"
        assert guest.ssh_eventually("hostname").strip() == "faulty"
        pools = (TEST_POOL, TEST_POOL + "-backup")
        assert holds(fault_host["uri"], guest.id, pools) == [
            "domain", f"vps-{guest.id}-root.qcow2", f"vps-{guest.id}-seed.iso"]
        assert holds(URI, guest.id, pools) == []


def test_a_host_that_vanishes_during_a_create(tmp_path: Path, fault_host: dict[str, str]) -> None:
    with live(tmp_path, fault_host, job_max_attempts=2) as api:
        with Session(api.engine) as session:
            before = allocations(session)
            hf = session.exec(select(Host).where(Host.name == "hf")).one()
        guest, job_id = order_in_paris(api, tmp_path)
        until("the create under way on hf", lambda: event(api, job_id, "wait_for_address", "started"))
        assert qemu_of(fault_host, guest.id) is not None
        gone_at = utcnow()  # the script's first act
        run_host("down", fault_host)
        try:
            assert not answers(fault_host["uri"]) and qemu_of(fault_host, guest.id) is None
            job = api.wait_job(job_id, api.support)
            assert not answers(fault_host["uri"])  # it never came back while the job ran
            assert job["status"] == "failed"
            retries = [e for e in events(api, job_id) if e.status == "retry"]
            assert retries and all(e.at is not None and e.at > gone_at for e in retries)
            assert fault_host["uri"] in job["error"] or "hf" in job["error"], job["error"]
            rollback = event(api, job_id, "rollback", "failed")
            assert rollback is not None and "hf" in rollback.message, rollback
            assert api.call("GET", f"/v1/jobs/{job_id}", api.alice).json()["error"] == PUBLIC_ERROR
            with Session(api.engine) as session:
                record = session.get(Vps, guest.id)
                assert record is not None and record.status == VpsStatus.error and record.task is None
                assert record.error is not None and "hf" in record.error, record.error
                assert allocations(session).get(hf.id or 0) == before.get(hf.id or 0)  # nothing held on hf
            assert holds(URI, guest.id, (TEST_POOL, TEST_POOL + "-backup")) == []  # nor on the other host
        finally:
            run_host("up", fault_host)
        # Back: what the create left there goes with the VPS.
        assert holds(fault_host["uri"], guest.id, (TEST_POOL,)) != []
        deleted = api.call("DELETE", f"/v1/vps/{guest.id}?confirm_data_loss=true", api.alice)
        assert deleted.status_code == 202, deleted.text
        assert api.wait_job(deleted.json()["job"]["id"], api.alice)["status"] == "succeeded"
        assert holds(fault_host["uri"], guest.id, (TEST_POOL, TEST_POOL + "-backup")) == []
