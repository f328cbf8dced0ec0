"""A world for tests that run operations end to end without a hypervisor: the API, a real
worker, and the in-memory driver of tests/fakes.py; with snapshots of the whole (the database by
SQLite's backup API, and the hypervisor) to run many sequences from one state."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from api.app import create_app
from orchestrator.compute.hosts import Drivers, register_host
from orchestrator.core.models import Image, Job, Vps, VpsStatus
from orchestrator.engine.worker import Worker
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
    "delete-keeping-backup": ("DELETE", "?confirm_data_loss=true&keep_backups=BACKUP", None),
    "discard-backup": ("DELETE", "/backups/BACKUP?confirm_data_loss=true", None),
    "change-order": ("POST", "/change-orders", {"memory_mib": 512}),
    "change-order-disk": ("POST", "/change-orders", {"add_disk_gib": 1}),
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
        suffix = suffix.replace("DISK", self.disk_id).replace("BACKUP", self.backup_id)
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


def make_world(tmp_path: Path, name: str, driver: Callable[[str, FakeHost], FakeDriver] = FakeDriver,
               unbilled: bool = False, **overrides: Any) -> World:
    """alice's VPS ordered (POST /v1/orders: with its subscription and first invoice), created and
    running on the fake hypervisor, with a backup and a data disk (``unbilled``: made by staff
    without an order, for tests that subscribe it themselves; ``overrides``: settings)."""
    key_file = tmp_path / "k"
    if not key_file.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_file)], check=True)
    key = key_file.with_suffix(".pub").read_text().strip()
    settings = base_settings(tmp_path / name, **{"verify_guest_ssh": False, "address_timeout_seconds": 1,
                                                 **overrides})
    host = FakeHost()
    drivers = Drivers(factory=lambda uri: driver(uri, host))
    app = create_app(settings, run_worker=False)
    client = TestClient(app)
    engine = app.state.engine
    with Session(engine) as session:
        register_host(session, settings, drivers, "h1", "fake://h1", "Marseille")
        session.add(Image(name="tiny", os="Tiny Linux", sha256="0" * 64, path="/nonexistent",
                          min_disk_gib=1, min_memory_mib=128))
        session.commit()
    api = Api(client, engine, settings)
    worker = Worker(engine, settings, drivers)
    spec = {"name": "held", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [key]}
    created = api.unbilled("alice", json=spec) if unbilled else api.order(api.alice, json=spec)
    assert created.status_code == 202, created.text
    world = World(api, worker, host, created.json()["vps"]["id"], key, "", "")
    world.run()
    assert world.vps().status == VpsStatus.running
    backup = api.call("POST", f"/v1/vps/{world.vps_id}/backup", api.alice, json={})
    assert api.call("POST", f"/v1/vps/{world.vps_id}/disks", api.support,
                    json={"size_gib": 1, "reason": "test world"}).status_code == 202
    world.run()
    world.backup_id = backup.json()["job"]["id"]
    world.disk_id = world.vps().data_disks[0]["id"]
    return world
