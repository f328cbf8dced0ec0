"""Plans and orders through the API.  Staff publish plans (sizes, images, terms, sites, prices);
customers see only plans on offer.  One ``POST /v1/orders`` records the VPS and its create job,
the subscription and its first invoice with the setup fee (R8.1-setup-fee, R8.6-billing, R8.2-rent,
R8.3-ht); a plan unknown or retired, a term (R3-terms), site (R2-locations) or image the plan does
not offer is a 4xx problem and nothing is recorded (rows counted).  A customer's ``POST /v1/vps``
is refused (403) and makes nothing; staff make an unbilled VPS only with a reason, recorded in the
VPS's events.  Another customer's order is a 404 (R7-confidential).  The clock stands on
Wednesday 13 May 2026, 10:00 in Paris."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, func, select

from orchestrator.core.models import Customer, Invoice, Job, JobEvent, Order, Subscription, Vps, VpsStatus
from tests.api.fakeworld import make_world
from tests.api.money import paris
from tests.conftest import Api

TABLES = (Vps, Job, Subscription, Invoice, Order)


@pytest.fixture
def api(offline_api: Api, clock: object) -> Api:
    clock.travel_to(paris(2026, 5, 13, 10, 0))  # type: ignore[attr-defined]
    return offline_api


@pytest.fixture
def key(tmp_path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    return (tmp_path / "k.pub").read_text().strip()


PLAN = {"code": "s1", "name": "Small", "vcpus": 1, "memory_mib": 512, "disk_gib": 4, "images": ["tiny"],
        "sites": ["Marseille", "paris"], "terms": [1, 12, 24], "monthly_price_ht": "19.90", "setup_fee_ht": "49.00"}


def publish(api: Api, **changes: Any) -> dict[str, Any]:
    response = api.call("POST", "/v1/plans", api.support, json={**PLAN, **changes})
    assert response.status_code == 201, response.text
    return dict(response.json())


def order_body(key: str, **changes: Any) -> dict[str, Any]:
    return {"plan": "s1", "term_months": 12, "site": "Marseille", "image": "tiny", "name": "web",
            "ssh_keys": [key], **changes}


def counts(api: Api) -> dict[str, int]:
    with Session(api.engine) as session:
        return {t.__name__: session.exec(select(func.count()).select_from(t)).one() for t in TABLES}


NOTHING = {"Vps": 0, "Job": 0, "Subscription": 0, "Invoice": 0, "Order": 0}


def assert_problem(response: Any, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = dict(response.json())
    for word in words:
        assert word in problem["detail"], problem
    return problem


def test_staff_publish_plans_customers_see_only_those_on_offer(api: Api) -> None:
    plan = publish(api)
    assert (plan["sites"], plan["terms"], plan["monthly_price_ht"], plan["setup_fee_ht"]) == (
        ["Marseille", "Paris"], [1, 12, 24], "19.90", "49.00")
    publish(api, code="old", name="Old")
    assert api.call("POST", "/v1/plans", api.alice, json={**PLAN, "code": "mine"}).status_code == 403
    retired = api.call("PATCH", "/v1/plans/old", api.support, json={"active": False})
    assert retired.status_code == 200 and retired.json()["retired_at"] is not None
    assert [p["code"] for p in api.call("GET", "/v1/plans", api.alice).json()["items"]] == ["s1"]
    assert api.call("GET", "/v1/plans/old", api.alice).status_code == 404
    staff = api.call("GET", "/v1/plans?include_retired=true", api.support).json()["items"]
    assert [(p["code"], p["active"]) for p in staff] == [("old", False), ("s1", True)]
    # bad plans are refused, nothing published
    assert_problem(api.call("POST", "/v1/plans", api.support, json={**PLAN, "code": "x", "terms": [2]}),
                   422, "R3-terms")
    assert_problem(api.call("POST", "/v1/plans", api.support, json={**PLAN, "code": "x", "sites": ["Berlin"]}),
                   422, "R2-locations")
    assert_problem(api.call("POST", "/v1/plans", api.support, json={**PLAN, "code": "x", "images": ["nope"]}),
                   422, "unknown image")
    assert api.call("POST", "/v1/plans", api.support, json={**PLAN, "code": "x", "monthly_price_ht": 19.9001}
                    ).status_code == 422  # money is exact cents, never a float's digits
    assert_problem(api.call("POST", "/v1/plans", api.support, json=PLAN), 409, "exists")
    assert len(api.call("GET", "/v1/plans?include_retired=true", api.support).json()) == 2


def test_an_order_records_vps_job_subscription_and_first_invoice_with_the_setup_fee(api: Api, key: str) -> None:
    """R8.1-setup-fee, R8.6-billing: the first invoice is issued at order with the setup fee;
    R8.2-rent: the first period's rent in full; R8.3-ht: VAT 20 % on top."""
    publish(api)
    placed = api.call("POST", "/v1/orders", api.alice, json=order_body(key, billing_period="quarterly"))
    assert placed.status_code == 202, placed.text
    body = placed.json()
    order, vps, job, invoice, sub = body["order"], body["vps"], body["job"], body["invoice"], body["subscription"]
    assert placed.headers["location"] == f"/v1/vps/{vps['id']}"
    assert (vps["status"], job["kind"], job["status"]) == ("building", "create", "queued")
    assert (order["vps_id"], order["job_id"], order["subscription_id"], order["invoice_id"]) == (
        vps["id"], job["id"], sub["id"], invoice["id"])
    assert order["invoice_number"] == invoice["number"] == "F2026-000001"
    assert (order["plan_code"], order["term_months"], order["billing_period"], order["site"]) == (
        "s1", 12, "quarterly", "Marseille")
    # the plan's monthly 19.90 for a quarter = 59.70, plus the setup fee 49.00; VAT 20 %
    assert [(line["rule"], line["amount_ht"]) for line in invoice["lines"]] == [
        ("R8.1-setup-fee", "49.00"), ("R8.2-rent", "59.70")]
    assert (invoice["total_ht"], invoice["total_vat"], invoice["total_ttc"]) == ("108.70", "21.74", "130.44")
    assert (invoice["period_start"], invoice["period_end"]) == ("2026-05-13", "2026-08-13")
    assert (sub["vps_id"], sub["term_months"], sub["rent_ht"], sub["setup_fee_ht"]) == (vps["id"], 12, "59.70", "49.00")
    assert counts(api) == {"Vps": 1, "Job": 1, "Subscription": 1, "Invoice": 1, "Order": 1}
    with Session(api.engine) as session:
        record = session.get(Vps, vps["id"])
        assert record is not None
        assert (record.customer_id, record.vcpus, record.memory_mib, record.disk_gib) == (
            sub["customer_id"], 1, 512, 4)
        assert session.get(Job, job["id"]).cause == f"order:{order['id']}"  # type: ignore[union-attr]
    # the customer reads it back, in the list too
    assert api.call("GET", f"/v1/orders/{order['id']}", api.alice).json() == order
    assert api.call("GET", "/v1/orders", api.alice).json() == {"items": [order], "next": None}
    assert api.call("GET", f"/v1/invoices/{invoice['id']}", api.alice).json()["total_ttc"] == "130.44"


@pytest.mark.parametrize(("changes", "status", "words"), [
    ({"plan": "nope"}, 422, ("no plan",)),
    ({"plan": "old"}, 422, ("retired",)),
    ({"term_months": 3}, 422, ("terms of 1, 12, 24",)),  # R3-terms allows it, the plan does not
    ({"term_months": 18}, 422, ("R3-terms",)),
    ({"site": "Tokyo"}, 422, ("not offered in Tokyo",)),
    ({"site": "Berlin"}, 422, ("R2-locations",)),
    ({"site": None}, 422, ("choose the 'site'",)),
    ({"image": "debian"}, 422, ("comes with the images tiny",)),
    ({"billing_period": "weekly"}, 422, ("R8.6-billing",)),
    ({"term_months": 1, "billing_period": "yearly"}, 422, ("R8.2-rent",)),
    ({"ssh_keys": ["not a key"]}, 422, ()),
    ({"customer": "bob"}, 403, ("only for themselves",)),
])
def test_a_bad_order_is_refused_and_records_nothing(api: Api, key: str, changes: dict[str, Any], status: int,
                                                    words: tuple[str, ...]) -> None:
    publish(api)
    publish(api, code="old", name="Old")
    assert api.call("PATCH", "/v1/plans/old", api.support, json={"active": False}).status_code == 200
    refused = api.call("POST", "/v1/orders", api.alice, json=order_body(key, **changes))
    assert_problem(refused, status, *words)
    assert counts(api) == NOTHING


def test_a_refusal_after_the_vps_is_placed_still_leaves_nothing(api: Api, key: str) -> None:
    """Quotas apply to an order (a customer's VPS) and a refusal there rolls back everything."""
    publish(api)
    with Session(api.engine) as session:
        alice = session.exec(select(Customer).where(Customer.name == "alice")).one()
    assert api.call("PUT", f"/v1/customers/{alice.id}/quota", api.support, json={"vps": 0}).status_code == 200
    refused = api.call("POST", "/v1/orders", api.alice, json=order_body(key))
    assert_problem(refused, 403, "quota vps")
    assert counts(api) == NOTHING


def test_the_same_idempotency_key_gives_the_same_order_once(api: Api, key: str) -> None:
    publish(api)
    headers = {"Idempotency-Key": "order-web"}
    first = api.call("POST", "/v1/orders", api.alice, json=order_body(key), headers=headers)
    again = api.call("POST", "/v1/orders", api.alice, json=order_body(key), headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["order"] == first.json()["order"]
    assert counts(api) == {"Vps": 1, "Job": 1, "Subscription": 1, "Invoice": 1, "Order": 1}


def test_a_customer_cannot_make_an_unbilled_vps(api: Api, key: str) -> None:
    """R8.1-setup-fee: a customer's VPS comes with its subscription and first invoice: POST /v1/vps
    is refused and points to POST /v1/orders; nothing is made."""
    refused = api.call("POST", "/v1/vps", api.alice, json={
        "name": "free", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [key]})
    problem = assert_problem(refused, 403, "POST /v1/orders", "R8.1-setup-fee")
    assert problem["status"] == 403
    assert counts(api) == NOTHING


def test_staff_make_an_unbilled_vps_only_with_a_reason_recorded_in_its_events(api: Api, key: str) -> None:
    body = {"name": "lab", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [key],
            "customer": "alice"}
    assert_problem(api.call("POST", "/v1/vps", api.support, json=body), 422, "reason", "R8.1-setup-fee")
    assert_problem(api.call("POST", "/v1/vps", api.support, json={**body, "reason": "   "}), 422, "reason")
    assert counts(api) == NOTHING
    made = api.call("POST", "/v1/vps", api.support, json={**body, "reason": "ticket 4711: free trial"})
    assert made.status_code == 202, made.text
    vps_id = made.json()["vps"]["id"]
    assert counts(api) == {"Vps": 1, "Job": 1, "Subscription": 0, "Invoice": 0, "Order": 0}
    with Session(api.engine) as session:
        messages = [e.message for e in session.exec(select(JobEvent).where(JobEvent.vps_id == vps_id)).all()]
    assert any("unbilled VPS made by staff without an order: ticket 4711: free trial" in m for m in messages)
    events = api.call("GET", f"/v1/vps/{vps_id}/events", api.support).json()["items"]
    assert any("ticket 4711: free trial" in e["message"] for e in events), events
    # the audit line of the staff request names the VPS and its job, whose events say why
    audit = api.call("GET", "/v1/audit", api.support).json()["items"]
    assert [(a["action"], a["vps_id"], a["job_id"]) for a in audit if a["result"] == 202] == [
        ("create_vps", vps_id, made.json()["job"]["id"])]


def test_another_customers_order_is_404(api: Api, key: str) -> None:
    publish(api)
    order = api.call("POST", "/v1/orders", api.alice, json=order_body(key)).json()["order"]
    assert api.call("GET", f"/v1/orders/{order['id']}", api.bob).status_code == 404
    assert api.call("GET", "/v1/orders/not-an-id", api.bob).status_code == 404
    assert api.call("GET", "/v1/orders", api.bob).json() == {"items": [], "next": None}
    assert api.call("GET", "/v1/orders?customer_id=1", api.bob).status_code == 403
    assert [o["id"] for o in api.call("GET", "/v1/orders", api.support).json()["items"]] == [order["id"]]
    assert api.call("GET", f"/v1/orders/{order['id']}", api.support).status_code == 200


def test_orders_a_page_at_a_time(api: Api, key: str) -> None:
    publish(api)
    ids = [api.call("POST", "/v1/orders", api.alice, json=order_body(key, name=f"web{n}")).json()["order"]["id"]
           for n in range(3)]
    first = api.call("GET", "/v1/orders?limit=2", api.alice).json()
    second = api.call("GET", f"/v1/orders?limit=2&cursor={first['next']}", api.alice).json()
    assert [o["id"] for o in first["items"] + second["items"]] == ids[::-1] and second["next"] is None


def test_staff_order_for_a_customer_and_a_retired_plan_keeps_its_subscription(api: Api, key: str) -> None:
    publish(api)
    placed = api.call("POST", "/v1/orders", api.support, json=order_body(key, customer="bob"))
    assert placed.status_code == 202, placed.text
    sub_id = placed.json()["subscription"]["id"]
    assert api.call("GET", "/v1/orders", api.bob).json()["items"][0]["id"] == placed.json()["order"]["id"]
    assert api.call("PATCH", "/v1/plans/s1", api.support, json={"active": False}).status_code == 200
    assert api.call("GET", f"/v1/subscriptions/{sub_id}", api.bob).json()["status"] == "active"
    assert_problem(api.call("POST", "/v1/orders", api.bob, json=order_body(key, name="two")), 422, "retired")


def test_an_ordered_vps_is_built_by_the_create_job(tmp_path: Path) -> None:
    """The order's create job is the one POST /v1/vps used: the worker builds the VPS."""
    world = make_world(tmp_path, "w")
    api = world.api
    api.call("POST", "/v1/plans", api.support, json={**PLAN, "sites": []})
    placed = api.call("POST", "/v1/orders", api.bob, json=order_body(world.key, site=None))
    assert placed.status_code == 202, placed.text
    world.run()
    assert api.call("GET", f"/v1/jobs/{placed.json()['job']['id']}", api.bob).json()["status"] == "succeeded"
    with Session(api.engine) as session:
        vps = session.get(Vps, placed.json()["vps"]["id"])
        assert vps is not None and vps.status == VpsStatus.running
