"""A worker killed (SIGKILL) in the middle of a cold migration between two real hosts: once a
worker runs again the job resumes where it was, and the VPS ends running on exactly one host (the
target), with its volumes there and nothing left on the source."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import libvirt
import pytest
from sqlmodel import Session, select

from orchestrator.compute.hosts import Drivers, register_host
from orchestrator.core.models import Host, Job, Vps
from orchestrator.operations import migrate
from tests.conftest import ask_job
from tests.integration.test_crash import STAFF, created, finished, killed_and_resumed, on_host, wait_for
from tests.integration.test_crash import world as world
from tests.integration.test_fleet import on

pytestmark = pytest.mark.libvirt


@pytest.mark.parametrize("kill_at", ["copy_volumes", "start_target"])
def test_a_migration_survives_a_killed_worker(world: Any, second_host: dict[str, str], tmp_path: Path,
                                              kill_at: str) -> None:
    settings, engine, _customer_id, workers = world
    vps_id, _vps = created(world, tmp_path)  # on the main host, the only one yet
    drivers = Drivers()
    with Session(engine) as session:
        register_host(session, settings, drivers, "h2", second_host["uri"], "Marseille", second_host["proxy"])
    drivers.close()

    job_id = ask_job(engine, settings, STAFF, vps_id, migrate.MigrateVps, migrate.MigrateParams(to_host="h2"))
    killed_and_resumed(engine, workers, job_id, kill_at)
    with Session(engine) as session:
        vps = session.get(Vps, vps_id)
        h2 = session.exec(select(Host).where(Host.name == "h2")).one()
        assert vps.host_id == h2.id and vps.status == "running"
    assert on(second_host["uri"], vps_id) == {"domain": "running", "volumes": ["root.qcow2", "seed.iso"]}
    assert on_host(engine, vps_id) == {"domain": None, "volumes": [], "domains_total": 0}


def test_a_live_migration_survives_a_worker_killed_while_it_copies(
        world: Any, second_host: dict[str, str], third_host: dict[str, str], linked_hosts: dict[str, str],
        tmp_path: Path) -> None:
    """Killed while libvirt copies the running guest: libvirt calls the migration off (the guest
    runs on where it was, the target holds no running copy), the next worker moves it again, and
    it ends running on the target only."""
    settings, engine, _customer_id, workers = world
    settings.lifecycle.migration_bandwidth_mib = 2  # slow enough for the kill to land in the copy
    drivers = Drivers()
    with Session(engine) as session:
        for name, host in (("h2", second_host), ("h3", third_host)):
            register_host(session, settings, drivers, name, host["uri"], "Marseille", host["proxy"],
                          migration_address=linked_hosts[name])
        for host in session.exec(select(Host).where(Host.name != "h2")).all():
            host.state = "disabled"  # the order lands on h2
            session.add(host)
        session.commit()
    drivers.close()
    vps_id, _vps = created(world, tmp_path)
    with Session(engine) as session:
        h3 = session.exec(select(Host).where(Host.name == "h3")).one()
        h3.state = "enabled"
        session.add(h3)
        session.commit()

    job_id = ask_job(engine, settings, STAFF, vps_id, migrate.MigrateVps,
                     migrate.MigrateParams(to_host="h3", live=True))
    source = libvirt.open(second_host["uri"])
    try:
        dom = source.lookupByUUIDString(vps_id)
        deadline = time.monotonic() + 240
        while dom.jobInfo()[0] == libvirt.VIR_DOMAIN_JOB_NONE:  # the migration under way on h2
            assert time.monotonic() < deadline, "the live migration never started"
            time.sleep(0.1)
        time.sleep(1.0)
        assert dom.jobInfo()[0] != libvirt.VIR_DOMAIN_JOB_NONE  # still copying: the kill lands in it
        workers.kill()
    finally:
        source.close()
    # libvirt calls the orphaned migration off (or lets it end); never do both hosts run the guest.
    deadline, settled, states = time.monotonic() + 120, "", (None, None)
    while not settled:
        assert time.monotonic() < deadline, f"the migration neither ended nor was called off: {states}"
        states = (running_state(second_host["uri"], vps_id), running_state(third_host["uri"], vps_id))
        assert states != ("running", "running")
        # Killed between libvirt's last phases, the copy may also have ended on the target.
        settled = {("running", None): "called off", ("running", "gone"): "called off",
                   ("paused", None): "called off, paused", ("paused", "gone"): "called off, paused",
                   ("gone", "running"): "ended", (None, "running"): "ended"}.get(states, "")
        time.sleep(0.2)
    with Session(engine) as session:
        assert session.get(Job, job_id).status == "running"  # the lease still holds it
        assert session.get(Vps, vps_id).host_id != session.exec(select(Host).where(Host.name == "h3")).one().id

    settings.lifecycle.migration_bandwidth_mib = 0  # the next worker moves it at full speed
    workers.start()
    wait_for(engine, job_id, finished(job_id), timeout=400)
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job.status == "succeeded", job.error
        assert job.attempts == 2
        vps = session.get(Vps, vps_id)
        assert vps.host_id == session.exec(select(Host).where(Host.name == "h3")).one().id
        assert vps.status == "running"
    assert on(third_host["uri"], vps_id)["domain"] == "running"
    assert on(second_host["uri"], vps_id) == {"domain": None, "volumes": []}


def running_state(uri: str, vps_id: str) -> str | None:
    """"running", "paused", "gone" (defined, not active), or None (no such domain) on that host."""
    conn = libvirt.open(uri)
    try:
        try:
            state = conn.lookupByUUIDString(vps_id).state()[0]
        except libvirt.libvirtError:
            return None
        return {libvirt.VIR_DOMAIN_RUNNING: "running", libvirt.VIR_DOMAIN_PAUSED: "paused",
                libvirt.VIR_DOMAIN_SHUTOFF: "gone"}.get(state, str(state))
    finally:
        conn.close()
