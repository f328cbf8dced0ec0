"""No sequence of a client's calls gets around a staff measure (orchestrator/engine/measures.py).

For each measure — a staff suspension (and the same once staff stopped the VPS), a payment
default (with the VPS suspended, and with the VPS already off), a cut-off, a terminated
subscription — every operation a client can call, in every order of two, run by a real worker
(the operations' own code, on the in-memory hypervisor of tests/fakes.py), and the measure still
holds afterwards: the VPS does not run, or, cut off, its link stays down.

A refused call must change nothing at all (no job, the same VPS record, the same hypervisor
state): that is asserted for every one.  So a pair whose first call is refused is its second
call alone, checked as a first call; every pair whose first call is accepted is run from the
measure's world (restored from a snapshot of the database and the hypervisor).
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from api.app import create_app
from orchestrator.compute.hosts import Drivers, register_host
from orchestrator.core.models import Image, Job, Vps, VpsStatus
from orchestrator.engine.worker import Worker
from orchestrator.hypervisor import DomainState
from tests.api.money import paris, subscribe
from tests.conftest import Api, base_settings
from tests.fakes import FakeDriver, FakeHost

# Every operation a client can call on their VPS: (method, path suffix, body).
CLIENT_CALLS: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "start": ("POST", "/start", None),
    "stop": ("POST", "/stop", {"force": True}),
    "reboot": ("POST", "/reboot", {"hard": True}),
    "suspend": ("POST", "/suspend", {"reason": "customer"}),
    "resume": ("POST", "/resume", None),
    "resize": ("POST", "/resize", {"memory_mib": 512}),
    "reinstall": ("POST", "/reinstall", {"ssh_keys": ["KEY"], "confirm_data_loss": True}),
    "backup": ("POST", "/backup", {}),
    "export": ("POST", "/export", None),
    "restore": ("POST", "/restore", {"backup_id": "BACKUP", "confirm_data_loss": True}),
    "attach-disk": ("POST", "/disks", {"size_gib": 1}),
    "detach-disk": ("DELETE", "/disks/DISK?confirm_data_loss=true", None),
    "rename": ("POST", "/rename", {"name": "renamed"}),
    "delete": ("DELETE", "?confirm_data_loss=true", None),
    "change-order": ("POST", "/change-orders", {"memory_mib": 512}),
}


@dataclass
class World:
    api: Api
    worker: Worker
    host: FakeHost
    vps_id: str
    key: str
    backup_id: str
    disk_id: str

    def run(self) -> None:
        """The worker runs every job that may run now (deadline jobs wait for their date)."""
        for _ in range(100):
            if not self.worker.run_once():
                return
        raise AssertionError("the queue did not drain")

    def vps(self) -> Vps:
        with Session(self.api.engine) as session:
            vps = session.get(Vps, self.vps_id)
            assert vps is not None
            session.expunge(vps)
            return vps

    def jobs(self) -> int:
        with Session(self.api.engine) as session:
            return int(session.exec(select(func.count()).select_from(Job)).one())

    def call(self, name: str) -> int:
        method, suffix, body = CLIENT_CALLS[name]
        suffix = suffix.replace("DISK", self.disk_id)
        if body is not None:
            given = {"KEY": self.key, "BACKUP": self.backup_id}
            body = {k: ([given["KEY"]] if v == ["KEY"] else given.get(v, v) if isinstance(v, str) else v)
                    for k, v in body.items()}
        response = self.api.call(method, f"/v1/vps/{self.vps_id}{suffix}", self.api.alice, json=body)
        assert response.status_code < 500, response.text
        return int(response.status_code)

    def snapshot(self) -> tuple[sqlite3.Connection, FakeHost]:
        """The whole world as it is: the database (SQLite's backup API) and the hypervisor."""
        copy_of = sqlite3.connect(":memory:", check_same_thread=False)
        raw = self.api.engine.raw_connection()
        try:
            raw.driver_connection.backup(copy_of)  # type: ignore[union-attr]
        finally:
            raw.close()
        return copy_of, self.host.snapshot()

    def restore(self, snapshot: tuple[sqlite3.Connection, FakeHost]) -> None:
        database, host = snapshot
        raw = self.api.engine.raw_connection()
        try:
            database.backup(raw.driver_connection)  # type: ignore[arg-type]
        finally:
            raw.close()
        self.api.engine.dispose()
        copied = host.snapshot()
        self.host.pools, self.host.domains = copied.pools, copied.domains

    def state(self) -> tuple[Any, ...]:
        vps = self.vps()
        return (vps.model_dump(exclude={"updated_at"}), self.jobs(), repr(self.host))


Holds = Callable[[World], bool]


def off(world: World) -> bool:
    dom = world.host.domains.get(world.vps_id)
    return dom is None or dom.state != DomainState.running


def staff_suspended(world: World) -> bool:
    vps = world.vps()
    return off(world) and (vps.status == VpsStatus.deleted or vps.suspended_by == "support")


def link_down(world: World) -> bool:
    dom = world.host.domains.get(world.vps_id)
    return world.vps().cut_off and (dom is None or dom.state == DomainState.shutoff or not dom.link_up)


def impose_suspension(world: World) -> None:
    asked = world.api.call("POST", f"/v1/vps/{world.vps_id}/suspend", world.api.support, json={"reason": "abuse"})
    assert asked.status_code == 202
    world.run()


def impose_suspension_then_stop(world: World) -> None:
    impose_suspension(world)
    assert world.api.call("POST", f"/v1/vps/{world.vps_id}/stop", world.api.support,
                          json={"force": True}).status_code == 202
    world.run()


def impose_default(world: World, stopped_first: bool = False) -> None:
    api = world.api
    if stopped_first:
        assert world.call("stop") == 202
        world.run()
    sub = subscribe(api, world.vps_id)
    invoice = sub["invoice"]["id"]
    from orchestrator.core import clock

    clock.travel_to(paris(2026, 5, 20, 10, 0))  # a week after the order: the first invoice is overdue
    declared = api.call("POST", f"/v1/invoices/{invoice}/default", api.support)
    assert declared.status_code == 201, declared.text
    world.run()


def impose_cutoff(world: World) -> None:
    assert world.api.call("POST", f"/v1/vps/{world.vps_id}/cutoff", world.api.support,
                          json={"reason": "abuse"}).status_code == 202
    world.run()


def impose_termination(world: World) -> None:
    sub = subscribe(world.api, world.vps_id)["subscription"]
    assert world.api.call("POST", f"/v1/subscriptions/{sub['id']}/terminate", world.api.support,
                          json={"reason": "insolvency"}).status_code == 202
    world.run()


MEASURES: dict[str, tuple[Callable[[World], None], Holds]] = {
    "staff suspension": (impose_suspension, staff_suspended),
    "staff suspension, then stopped by staff": (impose_suspension_then_stop, staff_suspended),
    "payment default": (impose_default, off),
    "payment default, VPS already off": (lambda w: impose_default(w, stopped_first=True), off),
    "cut-off": (impose_cutoff, link_down),
    "terminated subscription": (impose_termination, off),
}


@pytest.fixture
def build(tmp_path: Path, clock: Any) -> Iterator[Callable[[str], World]]:
    """Make a world: alice's VPS created and running on the fake hypervisor, with a backup and
    a data disk, then the measure imposed."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    key = (tmp_path / "k.pub").read_text().strip()
    clients: list[TestClient] = []
    count = [0]

    def make(measure: str) -> World:
        count[0] += 1
        clock.travel_to(paris(2026, 5, 13, 10, 0))
        settings = base_settings(tmp_path / f"w{count[0]}", verify_guest_ssh=False, address_timeout_seconds=1)
        host = FakeHost()
        drivers = Drivers(factory=lambda uri: FakeDriver(uri, host))
        app = create_app(settings, run_worker=False)
        client = TestClient(app)
        clients.append(client)
        engine = app.state.engine
        with Session(engine) as session:
            register_host(session, settings, drivers, "h1", "fake://h1", "Marseille")
            session.add(Image(name="tiny", os="Tiny Linux", sha256="0" * 64, path="/nonexistent",
                              min_disk_gib=1, min_memory_mib=128))
            session.commit()
        api = Api(client, engine, settings)
        worker = Worker(engine, settings, drivers)
        created = api.call("POST", "/v1/vps", api.alice, json={
            "name": "held", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [key]})
        assert created.status_code == 202, created.text
        world = World(api, worker, host, created.json()["vps"]["id"], key, "", "")
        world.run()
        assert world.vps().status == VpsStatus.running
        backup = api.call("POST", f"/v1/vps/{world.vps_id}/backup", api.alice, json={})
        assert api.call("POST", f"/v1/vps/{world.vps_id}/disks", api.alice, json={"size_gib": 1}).status_code == 202
        world.run()
        world.backup_id = backup.json()["job"]["id"]
        world.disk_id = world.vps().data_disks[0]["id"]
        impose, holds = MEASURES[measure]
        impose(world)
        assert holds(world), f"{measure} is not in place"
        return world

    yield make
    for client in clients:
        client.close()


@pytest.mark.parametrize("measure", list(MEASURES))
def test_no_two_calls_of_the_client_lift_a_measure(build: Callable[[str], World], measure: str) -> None:
    holds = MEASURES[measure][1]
    world = build(measure)
    imposed = world.snapshot()
    for first in CLIENT_CALLS:
        world.restore(imposed)
        before = world.state()
        status = world.call(first)
        world.run()
        if status not in (201, 202):
            assert status in (403, 404, 409, 422), (first, status)
            assert world.state() == before, f"{first} was refused ({status}) but changed something"
            continue  # the same world as before: its pairs are the second calls alone, checked here too
        assert holds(world), f"{measure}: lifted by {first}"
        after_first = world.snapshot()
        for second in CLIENT_CALLS:
            world.restore(after_first)
            before = world.state()
            status = world.call(second)
            world.run()
            if status not in (201, 202):
                assert world.state() == before, f"{second} after {first} was refused but changed something"
            assert holds(world), f"{measure}: lifted by {first} then {second}"
