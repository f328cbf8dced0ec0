"""R10-after: an erasure whose worker died mid-way converges once a worker runs again: the domain
and every volume of the VPS are gone, the VPS is ``deleted``, and the one Erasure record names
every volume that was there, including those removed before the worker died.

The death is laid down exactly rather than raced: the erasure's steps are too quick for a SIGKILL
to land reliably inside one. The host and the job are left as a worker killed halfway through
``discard_volumes`` leaves them (domain destroyed and undefined, the root disk deleted, the seed
not yet, the volumes named in the job, the lease expired); a new worker process takes it over."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import libvirt
import pytest
from sqlmodel import Session, select

from orchestrator.core.clock import utcnow
from orchestrator.core.models import Erasure, Job, JobStatus, Vps, VpsStatus
from orchestrator.operations import erase
from tests.conftest import TEST_POOL, URI, ask_job
from tests.integration import test_crash
from tests.integration.test_crash import STAFF, finished, on_host, order, wait_for

pytestmark = pytest.mark.libvirt
world = test_crash.world  # the same world: a worker process to start, the test host cleaned after


def volumes(vps_id: str) -> list[str]:
    conn = libvirt.open(URI)
    try:
        pool = conn.storagePoolLookupByName(TEST_POOL)
        pool.refresh(0)
        return sorted(v for v in pool.listVolumes() if vps_id in v)
    finally:
        conn.close()


def die_halfway(vps: Vps, job_id: str, engine: Any, before: list[str]) -> None:
    conn = libvirt.open(URI)
    try:
        dom = conn.lookupByUUIDString(vps.id)
        dom.destroy()
        dom.undefine()
        pool = conn.storagePoolLookupByName(TEST_POOL)
        pool.storageVolLookupByName(vps.root_volume).delete(0)
    finally:
        conn.close()
    with Session(engine) as session:
        job = session.get(Job, job_id)
        record = session.get(Vps, vps.id)
        assert job is not None and record is not None
        job.status, job.attempts, job.step = JobStatus.running, 1, "discard_volumes"
        job.steps_done = ["destroy_domain", "undefine_domain"]
        job.params = {**job.params, "erased_volumes": before}
        job.lease_owner, job.lease_expires_at = "killed-worker", utcnow() - timedelta(seconds=1)
        job.started_at = utcnow()
        record.status = VpsStatus.deleting
        session.add(job)
        session.add(record)
        session.commit()


def test_erase_resumed_after_a_dead_worker_converges_and_records_everything(world: Any, tmp_path: Path) -> None:
    settings, engine, customer_id, workers = world
    vps_id, job_id = order(settings, engine, customer_id, tmp_path)
    workers.start()
    wait_for(engine, job_id, finished(job_id))
    workers.stop()
    before = volumes(vps_id)
    assert len(before) == 2  # root disk and seed
    with Session(engine, expire_on_commit=False) as session:
        vps = session.get(Vps, vps_id)
        assert vps is not None and vps.status == "running"
        session.expunge(vps)
    erase_job = ask_job(engine, settings, STAFF, vps_id, erase.EraseVps, erase.EraseParams(reason="test"))
    die_halfway(vps, erase_job, engine, before)
    assert len(volumes(vps_id)) == 1  # the seed is still there

    workers.start()
    wait_for(engine, erase_job, finished(erase_job))
    with Session(engine) as session:
        job = session.get(Job, erase_job)
        assert job is not None and job.status == "succeeded", job.error if job else None
        assert job.attempts == 2  # taken over after the lease expired, not started again
        record = session.get(Vps, vps_id)
        assert record is not None and record.status == "deleted"
        [erasure] = session.exec(select(Erasure).where(Erasure.vps_id == vps_id)).all()
    assert sorted(erasure.volumes) == before and erasure.job_id == erase_job
    assert on_host(engine, vps_id) == {"domain": None, "volumes": [], "domains_total": 0}
