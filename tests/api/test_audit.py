"""R7-confidential: the audit log (api/audit.py, ``GET /v1/audit``): every change asked through the API is recorded
with who, on behalf of whom, what, on which object, the job, the address and the answer; reads
and requests that reach no route are not; staff read it newest first, filtered, page by page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlmodel import Session, func, select

from orchestrator.core.models import Audit, Customer
from tests.api.fakeworld import make_world
from tests.conftest import Api


def audit_rows(api: Api) -> int:
    with Session(api.engine) as session:
        return int(session.exec(select(func.count()).select_from(Audit)).one())


def customer_id(api: Api, name: str) -> int:
    with Session(api.engine) as session:
        found = session.exec(select(Customer.id).where(Customer.name == name)).one()
        assert found is not None
        return int(found)


def walk(api: Api, query: str, limit: int, between: Any = None) -> list[dict[str, Any]]:
    """Every item of a list, page by page (``between`` runs after the first page)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = api.call("GET", f"{query}{'&' if '?' in query else '?'}limit={limit}"
                        + (f"&cursor={cursor}" if cursor else ""), api.support)
        assert page.status_code == 200, page.text
        assert len(page.json()["items"]) <= limit
        items += page.json()["items"]
        cursor = page.json()["next"]
        if between is not None:
            between()
            between = None
        if cursor is None:
            return items


def test_order_resize_suspend_delete_each_recorded_with_who_for_whom_what_where_and_the_answer(
        tmp_path: Path) -> None:
    world = make_world(tmp_path, "audit")  # alice orders, backs up, and staff attach her a disk
    api, vps_id = world.api, world.vps_id
    alice, bob = customer_id(api, "alice"), customer_id(api, "bob")
    reason = "R5.2-keep-running: moved to a bigger flavour, ticket 4711"
    resized = api.call("POST", f"/v1/vps/{vps_id}/resize", api.support, json={"memory_mib": 448, "reason": reason})
    assert resized.status_code == 202, resized.text
    world.run()
    suspended = api.call("POST", f"/v1/vps/{vps_id}/suspend", api.support, json={"reason": "abuse"})
    assert suspended.status_code == 202, suspended.text
    world.run()
    assert api.call("POST", f"/v1/vps/{vps_id}/resume", api.bob).status_code == 404  # not his
    deleted = api.call("DELETE", f"/v1/vps/{vps_id}?confirm_data_loss=true", api.support)
    assert deleted.status_code == 202, deleted.text
    world.run()

    page = api.call("GET", f"/v1/audit?vps_id={vps_id}", api.support)
    assert page.status_code == 200, page.text
    rows = [(r["actor"], r["customer_id"], r["action"], r["detail"], r["object_type"], r["object_id"],
             r["address"], r["result"]) for r in reversed(page.json()["items"])]
    path = f"/v1/vps/{vps_id}"
    assert rows == [
        ("customer:alice", alice, "place_order", "POST /v1/orders", "vps", vps_id, "testclient", 202),
        ("customer:alice", alice, "backup_vps", f"POST {path}/backup", "vps", vps_id, "testclient", 202),
        ("support:support", alice, "attach_disk", f"POST {path}/disks", "vps", vps_id, "testclient", 202),
        ("support:support", alice, "resize_vps", f"POST {path}/resize", "vps", vps_id, "testclient", 202),
        ("support:support", alice, "suspend_vps", f"POST {path}/suspend", "vps", vps_id, "testclient", 202),
        ("customer:bob", bob, "resume_vps", f"POST {path}/resume", "vps", vps_id, "testclient", 404),
        ("support:support", alice, "delete_vps", f"DELETE {path}", "vps", vps_id, "testclient", 202),
    ]
    jobs = [r["job_id"] for r in reversed(page.json()["items"])]
    assert jobs[3] == resized.json()["job"]["id"] and jobs[4] == suspended.json()["job"]["id"]
    assert jobs[5] is None and jobs[6] == deleted.json()["job"]["id"]
    # on behalf of alice: the staff's actions on her VPS are found by her customer id
    staff_for_alice = api.call("GET", f"/v1/audit?customer_id={alice}&actor=support:support", api.support).json()
    assert [r["action"] for r in staff_for_alice["items"]] == ["delete_vps", "suspend_vps", "resize_vps", "attach_disk"]


def test_each_row_names_the_kind_of_record_acted_on(tmp_path: Path) -> None:
    """A change order is not an order, a plan is not "plans": the object's kind is the path's."""
    world = make_world(tmp_path, "kinds")  # staff publish a plan, alice orders from it
    api, vps_id = world.api, world.vps_id
    asked = api.call("POST", f"/v1/vps/{vps_id}/change-orders", api.alice, json={"memory_mib": 512})
    assert asked.status_code == 201, asked.text
    change = asked.json()["id"]
    assert api.call("POST", f"/v1/change-orders/{change}/approve", api.support,
                    json={"rent_ht": "14.00"}).status_code == 200
    rows = {r["action"]: (r["object_type"], r["object_id"]) for r in walk(api, "/v1/audit", 100)}
    plan = api.call("GET", "/v1/plans", api.alice).json()["items"][0]["id"]
    assert rows["publish_plan"] == ("plan", plan)
    assert rows["place_order"] == ("vps", vps_id)
    assert rows["ask_change_order"] == ("vps", vps_id)
    assert rows["approve_change_order"] == ("change-order", change)


def test_reads_and_requests_stopped_before_any_route_are_not_recorded(offline_api: Api) -> None:
    api = offline_api
    before = audit_rows(api)
    assert api.call("GET", "/v1/vps", api.alice).status_code == 200
    assert api.call("POST", "/v1/vps", None, json={}).status_code == 401  # no token: nothing reached
    assert api.call("POST", "/v1/vps", "vps_not-a-token", json={}).status_code == 401
    assert audit_rows(api) == before
    refused = api.call("POST", "/v1/vps", api.alice, json={"name": "x"})  # reached the route: refused, recorded
    assert refused.status_code == 422
    assert audit_rows(api) == before + 1


def test_the_log_is_for_staff_newest_first_and_paged_without_repeats_or_gaps(offline_api: Api) -> None:
    api = offline_api
    forbidden = api.call("GET", "/v1/audit", api.alice)
    assert forbidden.status_code == 403 and forbidden.headers["content-type"] == "application/problem+json"
    for n in range(7):
        assert api.call("POST", "/v1/vps", api.alice, json={"name": f"bad{n}"}).status_code == 422
    everything = [r["id"] for r in walk(api, "/v1/audit", 500)]
    assert everything == sorted(everything, reverse=True) and len(everything) == audit_rows(api)

    def insert() -> None:  # a new change between two pages: it goes at the head, not into the walk
        assert api.call("POST", "/v1/vps", api.bob, json={"name": "late"}).status_code == 422

    paged = [r["id"] for r in walk(api, "/v1/audit", 3, between=insert)]
    assert paged == everything

    only_alice = walk(api, f"/v1/audit?customer_id={customer_id(api, 'alice')}&result=422", 2)
    assert len(only_alice) == 7 and {r["actor"] for r in only_alice} == {"customer:alice"}

    for bad in ("?cursor=not-a-cursor", "?cursor=eyJpZCI6IngifQ", "?limit=0", "?limit=501", "?limit=2.5",
                "?customer_id=true", "?result=99"):
        answer = api.call("GET", f"/v1/audit{bad}", api.support)
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"


def test_jobs_are_listed_per_caller_filtered_and_paged(tmp_path: Path) -> None:
    """``GET /v1/jobs``: a customer lists the jobs of their own VPS only; staff every job, by
    customer, VPS, kind or status; newest first, paged."""
    world = make_world(tmp_path, "jobs")  # alice: create, backup, attach-disk
    api, vps_id = world.api, world.vps_id
    ordered = api.order(api.bob, json={
        "name": "bobs", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [world.key]})
    assert ordered.status_code == 202, ordered.text
    world.run()

    def kinds(query: str, token: str) -> list[tuple[str, str]]:
        answer = api.call("GET", query, token)
        assert answer.status_code == 200, answer.text
        return [(job["kind"], job["vps_id"]) for job in answer.json()["items"]]

    bob_vps = ordered.json()["vps"]["id"]
    assert kinds("/v1/jobs", api.alice) == [("attach-disk", vps_id), ("backup", vps_id), ("create", vps_id)]
    assert kinds("/v1/jobs", api.bob) == [("create", bob_vps)]
    assert kinds(f"/v1/jobs?vps_id={vps_id}", api.bob) == []  # alice's VPS: nothing, not an error
    assert kinds(f"/v1/jobs?customer_id={customer_id(api, 'bob')}", api.support) == [("create", bob_vps)]
    assert kinds("/v1/jobs?kind=create", api.support) == [("create", bob_vps), ("create", vps_id)]
    assert kinds("/v1/jobs?status=failed", api.support) == []
    every = [job["id"] for job in walk(api, "/v1/jobs", 1)]
    assert len(every) == len(set(every)) == 4
    assert "events" not in api.call("GET", "/v1/jobs", api.alice).json()["items"][0]
    refused = api.call("GET", f"/v1/jobs?customer_id={customer_id(api, 'bob')}", api.alice)
    assert refused.status_code == 403, refused.text
    for bad in ("?status=exploded", "?cursor=eyJpZCI6MX0", "?limit=0", "?since=yesterday"):
        assert api.call("GET", f"/v1/jobs{bad}", api.support).status_code == 422, bad


def test_vps_are_listed_a_page_at_a_time_newest_first_with_filters(tmp_path: Path) -> None:
    """``GET /v1/vps``: pages that neither repeat nor skip while VPS are ordered meanwhile; a
    customer's own only; staff filter by customer, status, site."""
    world = make_world(tmp_path, "lists")  # alice's first VPS, running
    api = world.api
    body = {"image": "tiny", "vcpus": 1, "memory_mib": 128, "disk_gib": 1, "ssh_keys": [world.key]}
    for n in range(4):
        assert api.order(api.alice, json={**body, "name": f"a{n}"}).status_code == 202
    assert api.order(api.bob, json={**body, "name": "b0"}).status_code == 202

    def names(query: str, token: str) -> list[str]:
        answer = api.call("GET", query, token)
        assert answer.status_code == 200, answer.text
        return [v["name"] for v in answer.json()["items"]]

    assert names("/v1/vps", api.alice) == ["a3", "a2", "a1", "a0", "held"]
    assert names("/v1/vps", api.bob) == ["b0"]
    assert names(f"/v1/vps?customer_id={customer_id(api, 'bob')}", api.support) == ["b0"]
    assert names("/v1/vps?status=running", api.support) == ["held"]
    assert names("/v1/vps?site=Marseille&status=running", api.support) == ["held"]
    assert names("/v1/vps?site=Paris", api.support) == []
    assert names("/v1/vps?name=a1", api.alice) == ["a1"]

    seen: list[str] = []
    first = api.call("GET", "/v1/vps?limit=2", api.alice).json()
    seen += [v["name"] for v in first["items"]]
    assert api.order(api.alice, json={**body, "name": "late"}).status_code == 202
    cursor = first["next"]
    while cursor:
        page = api.call("GET", f"/v1/vps?limit=2&cursor={cursor}", api.alice).json()
        seen += [v["name"] for v in page["items"]]
        cursor = page["next"]
    assert seen == ["a3", "a2", "a1", "a0", "held"]  # "late" is at the head, for the next walk

    # A page costs the same number of statements whatever it holds (no query per VPS)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(api.engine, "before_cursor_execute", count)
    try:
        assert len(names("/v1/vps", api.alice)) == 6
        six = len(statements)
        statements.clear()
        assert len(names("/v1/vps", api.bob)) == 1
        assert len(statements) == six, statements
    finally:
        event.remove(api.engine, "before_cursor_execute", count)

    assert api.call("GET", f"/v1/vps?customer_id={customer_id(api, 'bob')}", api.alice).status_code == 403
    for bad in ("?status=sleeping", "?limit=1000", "?cursor=%%%", "?since=0x10"):
        answer = api.call("GET", f"/v1/vps{bad}", api.alice)
        assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json", bad
