"""A worker killed (SIGKILL) in the middle of a cold migration between two real hosts: once a
worker runs again the job resumes where it was, and the VPS ends running on exactly one host (the
target), with its volumes there and nothing left on the source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from orchestrator.compute.hosts import Drivers, register_host
from orchestrator.core.models import Host, Vps
from orchestrator.operations import migrate
from tests.conftest import ask_job
from tests.integration.test_crash import STAFF, created, killed_and_resumed, on_host
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
