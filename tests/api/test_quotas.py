"""What one customer may take (orchestrator/compute/quotas.py, api/guard.py): quotas set by staff
on VPS, vCPUs, memory, disk and backups (403 naming the quota, nothing recorded), requests per
token per minute (429 with Retry-After), and data disks only through an accepted order form
(R5.1-change-order) like any other hardware change."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from api.app import create_app
from orchestrator.core.auth import create_token
from orchestrator.core.models import ChangeOrder, Customer, Job, JobEvent, Role, Vps, VpsStatus
from tests.api.fakeworld import make_world
from tests.conftest import Api, base_settings

RULE = "R5.1-change-order"


@pytest.fixture
def pubkey(tmp_path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    return (tmp_path / "k.pub").read_text().strip()


def order(key: str, name: str = "web", **sizes: Any) -> dict[str, Any]:
    return {"name": name, "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [key], **sizes}


def customer_id(api: Api, name: str) -> int:
    with Session(api.engine) as session:
        found = session.exec(select(Customer).where(Customer.name == name)).one()
        assert found.id is not None
        return found.id


def count(api: Api, model: Any) -> int:
    with Session(api.engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def set_quota(api: Api, name: str, **values: Any) -> dict[str, Any]:
    response = api.call("PUT", f"/v1/customers/{customer_id(api, name)}/quota", api.support, json=values)
    assert response.status_code == 200, response.text
    return dict(response.json())


def refused(response: Any, quota: str, limit: int) -> None:
    assert response.status_code == 403, response.text
    problem = response.json()
    assert (problem["quota"], problem["limit"]) == (quota, limit), problem
    assert response.headers["content-type"] == "application/problem+json"


def test_a_customer_holds_no_more_vps_than_their_quota(offline_api: Api, pubkey: str) -> None:
    api = offline_api
    set_quota(api, "alice", vps=2)
    assert api.order(api.alice, json=order(pubkey, "a1")).status_code == 202
    assert api.order(api.alice, json=order(pubkey, "a2")).status_code == 202
    before = (count(api, Vps), count(api, Job))
    refused(api.order(api.alice, json=order(pubkey, "a3")), "vps", 2)
    assert (count(api, Vps), count(api, Job)) == before
    # bob's quota is his own (the default: 10)
    assert api.order(api.bob, json=order(pubkey, "b1")).status_code == 202
    # a deleted VPS is no longer held
    with Session(api.engine) as session:
        first = session.exec(select(Vps).where(Vps.name == "a1")).one()
        first.status = VpsStatus.deleted
        session.add(first)
        session.commit()
    assert api.order(api.alice, json=order(pubkey, "a3")).status_code == 202
    # staff ordering for the customer are not held by it: they set it
    staff = api.unbilled("alice", json=order(pubkey, "a4"))
    assert staff.status_code == 202, staff.text


def test_resources_are_counted_against_the_quota(offline_api: Api, pubkey: str) -> None:
    api = offline_api
    set_quota(api, "alice", vcpus=3, memory_mib=1024, disk_gib=10)
    assert api.order(api.alice, json=order(pubkey, "a1", vcpus=2, memory_mib=512,
                                                               disk_gib=4)).status_code == 202
    refused(api.order(api.alice, json=order(pubkey, "a2", vcpus=2)), "vcpus", 3)
    refused(api.order(api.alice, json=order(pubkey, "a2", memory_mib=768)), "memory_mib", 1024)
    refused(api.order(api.alice, json=order(pubkey, "a2", disk_gib=7)), "disk_gib", 10)
    assert api.order(api.alice, json=order(pubkey, "a2", memory_mib=512,
                                                               disk_gib=6)).status_code == 202
    assert count(api, Vps) == 2

    quota = api.call("GET", "/v1/quota", api.alice).json()
    assert quota["limits"] == {"vps": 10, "vcpus": 3, "memory_mib": 1024, "disk_gib": 10, "backups": 20,
                               "active_backups": 2}
    assert quota["usage"] == {"vps": 2, "vcpus": 3, "memory_mib": 1024, "disk_gib": 10, "backups": 0,
                              "active_backups": 0}
    assert sorted(quota["custom"]) == ["disk_gib", "memory_mib", "vcpus"]


def test_only_staff_set_quotas_and_bad_values_change_nothing(offline_api: Api) -> None:
    api = offline_api
    alice = customer_id(api, "alice")
    path = f"/v1/customers/{alice}/quota"
    assert api.call("PUT", path, api.alice, json={"vps": 100}).status_code == 403
    assert api.call("GET", path, api.bob).status_code == 403
    assert api.call("GET", "/v1/quota", api.support).status_code == 403  # staff have none
    for body in ({"vps": -1}, {"vcpus": "many"}, {"vps": 2**40}, {"colour": 3}):
        assert api.call("PUT", path, api.support, json=body).status_code == 422, body
    assert api.call("PUT", "/v1/customers/999999/quota", api.support, json={"vps": 1}).status_code == 404
    assert api.call("GET", path, api.support).json()["custom"] == []

    assert set_quota(api, "alice", vps=1, backups=4)["limits"]["vps"] == 1
    back = set_quota(api, "alice", vps=None)  # back to the default, the other one kept
    assert back["limits"]["vps"] == 10 and back["custom"] == ["backups"]


def test_backups_and_exports_at_once_and_kept_are_bounded(offline_api: Api, pubkey: str) -> None:
    """300 exports once queued 300 full-disk copies: a customer has so many copies made at once
    (active_backups) and kept or waiting (backups)."""
    api = offline_api
    vps_id = api.order(api.alice, json=order(pubkey)).json()["vps"]["id"]
    with Session(api.engine) as session:
        vps = session.get(Vps, vps_id)
        assert vps is not None
        vps.status = VpsStatus.running
        session.add(vps)
        for job in session.exec(select(Job)).all():
            job.status = "succeeded"
            session.add(job)
        session.commit()
    path = f"/v1/vps/{vps_id}"
    assert api.call("POST", f"{path}/backup", api.alice, json={}).status_code == 202
    assert api.call("POST", f"{path}/export", api.alice).status_code == 202
    jobs = count(api, Job)
    refused(api.call("POST", f"{path}/export", api.alice), "active_backups", 2)
    refused(api.call("POST", f"{path}/backup", api.alice, json={}), "active_backups", 2)
    assert count(api, Job) == jobs

    set_quota(api, "alice", active_backups=10, backups=3)
    assert api.call("POST", f"{path}/backup", api.alice, json={}).status_code == 202
    refused(api.call("POST", f"{path}/backup", api.alice, json={}), "backups", 3)
    assert api.call("POST", f"{path}/backup", api.support, json={}).status_code == 202  # staff's own


def test_requests_per_token_are_limited_with_retry_after(tmp_path: Path) -> None:
    settings = base_settings(tmp_path, api_rate_per_minute=3)
    app = create_app(settings, run_worker=False)
    with TestClient(app) as client:
        api = Api(client, app.state.engine, settings)
        for _ in range(3):
            assert api.call("GET", "/v1/vps", api.alice).status_code == 200
        limited = api.call("GET", "/v1/vps", api.alice)
        assert limited.status_code == 429 and limited.headers["content-type"] == "application/problem+json"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.json()["status"] == 429
        # a body is not even read
        assert api.call("POST", "/v1/vps", api.alice, content=b"{not json").status_code == 429
        # every token has its own count
        assert api.call("GET", "/v1/vps", api.bob).status_code == 200
        with Session(api.engine) as session:
            second = create_token(session, Role.customer, "alice", "ci")
        assert api.call("GET", "/v1/vps", second).status_code == 200
        assert api.call("GET", "/healthz").status_code == 200  # public, not counted


def test_a_client_adds_a_data_disk_only_through_an_order_form(tmp_path: Path, clock: Any) -> None:
    world = make_world(tmp_path, "w")
    api, vps = world.api, world.vps_id
    disks_before = len(world.vps().data_disks)

    asked = api.call("POST", f"/v1/vps/{vps}/disks", api.alice, json={"size_gib": 3})
    assert asked.status_code == 422 and asked.json()["rule"] == RULE, asked.text
    no_reason = api.call("POST", f"/v1/vps/{vps}/disks", api.support, json={"size_gib": 3})
    assert no_reason.status_code == 422 and no_reason.json()["rule"] == RULE
    assert api.call("POST", f"/v1/vps/{vps}/change-orders", api.alice,
                    json={"add_disk_gib": 3, "memory_mib": 512}).status_code == 422  # one thing per order
    set_quota(api, "alice", disk_gib=4)  # 2 GiB root + 1 GiB data disk held
    refused(api.call("POST", f"/v1/vps/{vps}/change-orders", api.alice, json={"add_disk_gib": 3}), "disk_gib", 4)
    assert count(api, ChangeOrder) == 0
    set_quota(api, "alice", disk_gib=None)

    ordered = api.call("POST", f"/v1/vps/{vps}/change-orders", api.alice, json={"add_disk_gib": 3})
    assert ordered.status_code == 201, ordered.text
    assert ordered.json()["requested"] == {"vcpus": 1, "memory_mib": 256, "disk_gib": 2, "add_disk_gib": 3}
    order_id = ordered.json()["id"]
    assert api.call("POST", f"/v1/change-orders/{order_id}/approve", api.support,
                    json={"rent_ht": "12.00", "fee_ht": "5.00"}).status_code == 200
    accepted = api.call("POST", f"/v1/change-orders/{order_id}/accept", api.alice)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["job"]["kind"] == "attach-disk"
    world.run()

    disks = world.vps().data_disks
    assert len(disks) == disks_before + 1 and disks[-1]["size_gib"] == 3
    assert api.call("GET", f"/v1/change-orders/{order_id}", api.alice).json()["status"] == "done"

    # staff add a disk under another rule, named, and the VPS's events say so
    staff = api.call("POST", f"/v1/vps/{vps}/disks", api.support,
                     json={"size_gib": 1, "reason": "R6.2-transfer by hand, ticket 4521"})
    assert staff.status_code == 202, staff.text
    with Session(api.engine) as session:
        said = session.exec(select(JobEvent).where(JobEvent.job_id == staff.json()["job"]["id"])).all()
    assert any("ticket 4521" in event.message and RULE in event.message for event in said)
