"""Placement across hosts with fake hypervisors: a customer's VPS of one placement group never
share a host (anti-affinity) and a third that cannot be kept apart is refused saying why, with
nothing recorded; a customer sees the site of a VPS, never its host.  An evacuation is refused
for a host that answers, and names the VPS it cannot rebuild (no backup copied off the host)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from orchestrator.compute.hosts import Drivers
from orchestrator.core.errors import TransientError
from orchestrator.core.models import Job, Vps
from orchestrator.workflows import evacuation
from tests.api.fakeworld import World
from tests.api.test_migrate import OTHER, two_hosts
from tests.fakes import FakeDriver


def order(world: World, name: str, group: str | None) -> object:
    body: dict[str, object] = {"name": name, "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2,
                               "ssh_keys": [world.key], "site": "Marseille"}
    if group:
        body["placement_group"] = group
    return world.api.order(world.api.alice, json=body)


def test_a_placement_group_keeps_a_customers_vps_on_different_hosts(tmp_path: Path) -> None:
    world = two_hosts(tmp_path)
    api = world.api
    first, second = order(world, "db-1", "db"), order(world, "db-2", "db")
    assert first.status_code == 202 and second.status_code == 202, (first.text, second.text)  # type: ignore[attr-defined]
    world.run()
    ids = [r.json()["vps"]["id"] for r in (first, second)]  # type: ignore[attr-defined]
    hosts = {api.call("GET", f"/v1/vps/{i}", api.support).json()["host"] for i in ids}
    assert hosts == {"h1", "h2"}
    seen = api.call("GET", f"/v1/vps/{ids[0]}", api.alice).json()
    assert seen["host"] is None and seen["site"] == "Marseille" and seen["placement_group"] == "db"

    with Session(api.engine) as session:
        before = (session.exec(select(func.count()).select_from(Vps)).one(),
                  session.exec(select(func.count()).select_from(Job)).one())
    third = order(world, "db-3", "db")
    assert third.status_code == 422, third.text  # type: ignore[attr-defined]
    assert "anti-affinity" in third.json()["detail"]  # type: ignore[attr-defined]
    with Session(api.engine) as session:
        after = (session.exec(select(func.count()).select_from(Vps)).one(),
                 session.exec(select(func.count()).select_from(Job)).one())
    assert after == before  # nothing recorded
    # Outside the group (or in another), the hosts take more.
    assert order(world, "web-1", None).status_code == 202  # type: ignore[attr-defined]
    assert order(world, "cache-1", "cache").status_code == 202  # type: ignore[attr-defined]
    bad = order(world, "x", "no spaces allowed")
    assert bad.status_code == 422  # type: ignore[attr-defined]


def test_an_evacuation_is_refused_while_the_host_answers_and_names_what_it_cannot_rebuild(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = two_hosts(tmp_path)
    api = world.api

    class Down(FakeDriver):
        def host_info(self):  # type: ignore[no-untyped-def]
            raise TransientError("cannot connect to fake://h1: no route to host")

    def reached_as(driver: type[FakeDriver]) -> None:  # how the evacuation's own probe reaches h1
        monkeypatch.setattr(evacuation, "Drivers", lambda: Drivers(factory=lambda uri: driver(uri, world.host)))

    reached_as(FakeDriver)
    answering = api.call("POST", "/v1/hosts/h1/evacuate", api.support, json={})
    assert answering.status_code == 409 and "answers" in answering.json()["detail"], answering.text
    assert api.call("POST", "/v1/hosts/h1/evacuate", api.alice, json={}).status_code == 403
    assert api.call("GET", "/v1/hosts/h1", api.support).json()["state"] == "enabled"

    reached_as(Down)
    # The world's VPS has a backup, but only on its own host (no other host when it was made).
    done = api.call("POST", "/v1/hosts/h1/evacuate", api.support, json={"reason": "power supply"})
    assert done.status_code == 202, done.text
    assert done.json()["state"] == "unreachable" and done.json()["jobs"] == []
    [left] = done.json()["left"]
    assert left["vps_id"] == world.vps_id and "no backup copied off its host" in left["reason"]
    assert api.call("GET", f"/v1/vps/{world.vps_id}", api.support).json()["host"] == "h1"  # stays recorded there
    # Its host down, nobody knows what the VPS is doing: it says so, and a client's request waits for the host.
    seen = api.call("GET", f"/v1/vps/{world.vps_id}", api.alice).json()
    assert (seen["status"], seen["last_known_status"]) == ("unknown", "running")
    stop = api.call("POST", f"/v1/vps/{world.vps_id}/stop", api.alice, json={})
    assert stop.status_code == 409 and "does not answer" in stop.json()["detail"], stop.text


def test_a_backup_is_copied_to_another_host_and_the_copy_goes_with_the_vps(tmp_path: Path) -> None:
    world = two_hosts(tmp_path)
    api = world.api
    backup = api.call("POST", f"/v1/vps/{world.vps_id}/backup", api.alice, json={})
    world.run()
    backup_id = backup.json()["job"]["id"]
    replica = f"vps-{world.vps_id}-backup-{backup_id}.replica.qcow2"
    backup_pool = api.settings.hosts.backup_pool
    assert replica in OTHER.pools[backup_pool]  # on h2, the other host
    assert replica not in world.host.pools[backup_pool]
    job = api.call("GET", f"/v1/jobs/{backup_id}", api.alice).json()
    [copied] = [e["message"] for e in job["events"] if e["step"] == "replicate" and e["status"] == "done"]
    assert "copied to another host in the same site" in copied and "h2" not in copied  # client terms
    deleted = api.call("DELETE", f"/v1/vps/{world.vps_id}?confirm_data_loss=true", api.alice)
    assert deleted.status_code == 202, deleted.text
    world.run()
    assert replica not in OTHER.pools[backup_pool]
    assert not [v for pool in OTHER.pools.values() for v in pool if world.vps_id in v]
