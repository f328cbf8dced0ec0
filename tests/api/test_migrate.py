"""Moving a VPS between hosts (POST /v1/vps/{id}/migrate, staff): who may ask, what is refused
before anything moves, and what each host holds after a move that succeeded and after one that
failed midway.  Two fake hypervisors, one per host; tests/integration/test_fleet.py moves a real
guest between two real libvirt hosts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from orchestrator.compute.hosts import register_host
from orchestrator.core.clock import utcnow
from orchestrator.core.errors import HypervisorError
from orchestrator.core.models import Job, Outbox, Vps
from orchestrator.hypervisor import Lease
from tests.api.fakeworld import World, make_world
from tests.fakes import FakeDriver, FakeHost

OTHER = FakeHost()


class FailingCopy(FakeDriver):
    """The target host's side of a copy breaks in the middle."""

    def receive_volume(self, pool, config, chunks, progress=None):  # type: ignore[no-untyped-def]
        raise HypervisorError("the stream was cut")


def two_hosts(tmp_path: Path, target_driver: type[FakeDriver] = FakeDriver) -> World:
    OTHER.pools.clear()
    OTHER.domains.clear()
    OTHER.pinned.clear()
    OTHER.leases.clear()

    def factory(uri: str, host: FakeHost) -> FakeDriver:
        return FakeDriver(uri, host) if uri == "fake://h1" else target_driver(uri, OTHER)

    world = make_world(tmp_path, "fleet", factory)
    with Session(world.api.engine) as session:
        register_host(session, world.api.settings, world.worker.drivers, "h2", "fake://h2", "Marseille")
    return world


def ask(world: World, token: str, body: dict[str, object]) -> object:
    return world.api.call("POST", f"/v1/vps/{world.vps_id}/migrate", token, json=body)


def vps_volumes(host: FakeHost, vps_id: str) -> list[str]:
    return sorted(name for pool in host.pools.values() for name in pool if vps_id in name)


def test_staff_move_a_vps_and_the_source_keeps_nothing(tmp_path: Path) -> None:
    world = two_hosts(tmp_path)
    before = vps_volumes(world.host, world.vps_id)
    assert len(before) >= 3  # root, seed, data disk (and the backup)
    asked = ask(world, world.api.support, {})
    assert asked.status_code == 202, asked.text  # type: ignore[attr-defined]
    assert asked.json()["plan"]["to_host"] == "h2"  # type: ignore[attr-defined]
    world.run()
    with Session(world.api.engine) as session:
        vps = session.get(Vps, world.vps_id)
        assert vps is not None and vps.status == "running"
        h2 = vps.host_id
    assert h2 is not None and h2 != 1
    assert vps_volumes(OTHER, world.vps_id) == before
    assert vps_volumes(world.host, world.vps_id) == []
    assert world.vps_id not in world.host.domains and OTHER.domains[world.vps_id].state.value == "running"


@pytest.mark.parametrize(("token", "body", "status", "says"), [
    ("alice", {}, 403, ""),
    ("support", {"live": True}, 422, "no migration address"),
    ("support", {"to_host": "h1"}, 422, "already"),
    ("support", {"to_host": "nowhere"}, 404, "nowhere"),
    ("support", {"to_host": "h2", "extra": 1}, 422, "extra"),
])
def test_refused_moves_change_nothing(tmp_path: Path, token: str, body: dict[str, object], status: int,
                                      says: str) -> None:
    world = two_hosts(tmp_path)
    before = world.state()
    refused = ask(world, getattr(world.api, token), body)
    assert refused.status_code == status and says in refused.text  # type: ignore[attr-defined]
    assert refused.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    assert world.state() == before


def test_a_move_that_breaks_midway_leaves_the_vps_running_where_it_was(tmp_path: Path) -> None:
    world = two_hosts(tmp_path, FailingCopy)
    before = vps_volumes(world.host, world.vps_id)
    asked = ask(world, world.api.support, {"to_host": "h2"})
    assert asked.status_code == 202  # type: ignore[attr-defined]
    world.run()
    job = world.api.call("GET", f"/v1/jobs/{asked.json()['job']['id']}", world.api.support).json()  # type: ignore[attr-defined]
    assert job["status"] == "failed"
    assert world.vps().host_id == 1 and world.vps().status == "running"
    assert world.host.domains[world.vps_id].state.value == "running"  # started again where it was
    assert vps_volumes(world.host, world.vps_id) == before
    assert vps_volumes(OTHER, world.vps_id) == []  # no partial copy left


def test_a_drain_moves_every_vps_off_the_host_at_its_window_after_notices(tmp_path: Path, clock: Any) -> None:
    world = two_hosts(tmp_path)
    api = world.api
    starts = utcnow() + timedelta(days=2)
    too_long = api.call("POST", "/v1/hosts/h1/drain", api.support,
                        json={"starts_at": starts.isoformat(), "duration_minutes": 90})
    assert too_long.status_code == 422 and too_long.json()["rule"] == "R5.4-duration"
    assert api.call("GET", "/v1/hosts/h1", api.support).json()["state"] == "enabled"  # nothing changed

    drained = api.call("POST", "/v1/hosts/h1/drain", api.support, json={"starts_at": starts.isoformat()})
    assert drained.status_code == 202, drained.text
    assert drained.json()["state"] == "draining" and len(drained.json()["jobs"]) == 1
    [job_id] = drained.json()["jobs"]
    with Session(api.engine) as session:
        notices = session.exec(select(Outbox).where(Outbox.vps_id == world.vps_id,
                                                    Outbox.template == "maintenance_notice")).all()
        assert len(notices) == 1  # R5.4-notice: queued now, days before the move
        scheduled = session.get(Job, job_id).scheduled_at
        assert scheduled is not None and abs(scheduled.replace(tzinfo=starts.tzinfo) - starts) < timedelta(seconds=1)
    # Before the window: the worker finds nothing it may run; the VPS stays where it is.
    assert world.worker.run_once() is False
    assert world.vps().host_id == 1 and world.vps().status == "running"
    # A draining host takes no new VPS: the next order lands on h2.
    other = api.order(api.bob, json={
        "name": "newcomer", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [world.key]})
    assert other.status_code == 202, other.text
    world.run()
    with Session(api.engine) as session:
        newcomer = session.get(Vps, other.json()["vps"]["id"])
        assert newcomer is not None and newcomer.host_id != 1

    clock.travel_to(starts + timedelta(seconds=1))
    world.run()
    moved = api.call("GET", f"/v1/jobs/{job_id}", api.support).json()
    assert moved["status"] == "succeeded", (moved["error"], moved["events"][-3:])
    assert world.vps().host_id != 1 and world.vps().status == "running"
    assert vps_volumes(world.host, world.vps_id) == []

    # R5.4-frequency: the moved VPS had its maintenance this week; its new host cannot be drained yet.
    again = api.call("POST", "/v1/hosts/h2/drain", api.support,
                     json={"starts_at": (starts + timedelta(days=1)).isoformat()})
    assert again.status_code == 422 and again.json()["rule"] == "R5.4-frequency"


def test_a_move_whose_source_lost_the_disk_fails_and_records_the_vps_where_it_was(tmp_path: Path) -> None:
    """The source's volumes removed behind the orchestrator's back: the copy finds nothing to
    move; the move fails rather than record the VPS on a host that has no disk of it."""
    world = two_hosts(tmp_path)
    for pool in world.host.pools.values():
        for name in [n for n in pool if world.vps_id in n]:
            del pool[name]
    asked = ask(world, world.api.support, {"to_host": "h2"})
    assert asked.status_code == 202  # type: ignore[attr-defined]
    world.run()
    job = world.api.call("GET", f"/v1/jobs/{asked.json()['job']['id']}", world.api.support).json()  # type: ignore[attr-defined]
    assert job["status"] == "failed"
    assert world.vps().host_id == 1  # still recorded on the source
    assert world.vps_id not in OTHER.domains and vps_volumes(OTHER, world.vps_id) == []


def test_a_target_leasing_the_address_to_another_refuses_the_move_before_the_guest_stops(tmp_path: Path) -> None:
    """The target's DHCP server still leases the VPS's address to another MAC (a guest that left
    that host within the lease time): it would not give the guest its address there, so the move
    fails in its first step, the guest never stopped, nothing copied.  The lease its own MAC holds
    (it was on that host before) is no obstacle."""
    world = two_hosts(tmp_path)
    [address] = world.vps().addresses
    until = datetime(2031, 1, 2, 3, 4, tzinfo=UTC)
    network = world.api.settings.hosts.guest_network
    OTHER.leases[network] = {address: Lease(address=address, mac="52:54:00:de:ad:01", expires_at=until)}
    asked = ask(world, world.api.support, {"to_host": "h2"})
    assert asked.status_code == 202, asked.text  # type: ignore[attr-defined]
    world.run()
    job = world.api.call("GET", f"/v1/jobs/{asked.json()['job']['id']}", world.api.support).json()  # type: ignore[attr-defined]
    assert job["status"] == "failed"
    assert job["error"] == (f"{address} is leased on h2 to 52:54:00:de:ad:01 until 2031-01-02 03:04 UTC: its DHCP "
                            "server would not give the guest its address there; nothing was moved, move it after that")
    failed = [e for e in job["events"] if e["status"] == "failed"]
    assert [e["step"] for e in failed][:1] == ["stop_source"], job["events"]
    assert world.vps().host_id == 1 and world.vps().status == "running"
    assert world.host.domains[world.vps_id].state.value == "running"
    assert vps_volumes(OTHER, world.vps_id) == [] and world.vps_id not in OTHER.domains

    mac = world.host.domains[world.vps_id].config.interfaces[0].mac.lower()
    OTHER.leases[network] = {address: Lease(address=address, mac=mac, expires_at=until)}
    again = ask(world, world.api.support, {"to_host": "h2"})
    assert again.status_code == 202, again.text  # type: ignore[attr-defined]
    world.run()
    assert world.vps().host_id != 1 and OTHER.domains[world.vps_id].state.value == "running"
