"""R5.1-change-order through the API (no hypervisor): the change order's states, the resize gate
(no resize job without an accepted order form, except staff's with a reason), who may do what
(403, 404), invalid transitions (409), bad input (422, nothing recorded), the order form and the
refusal emailed in the customer's language, the one-off fee invoiced at acceptance (R8.3-ht) and
the subscription's new rent once the job succeeded (R8.2-rent).  The job itself runs on a real
libvirtd in tests/integration/test_change_order.py."""

from __future__ import annotations

import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, func, select

from orchestrator.core.errors import ContractRefusal
from orchestrator.core.models import ChangeOrder, Invoice, Job, JobStatus, Outbox, Subscription, Vps
from orchestrator.engine.context import Context
from orchestrator.engine.worker import abandon, admit, conclude
from orchestrator.operations.resize import ResizeVps
from tests.conftest import Api

RULE = "R5.1-change-order"


@pytest.fixture
def pubkey(tmp_path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    return (tmp_path / "k.pub").read_text().strip()


def running_vps(api: Api, token: str, pubkey: str, name: str = "web") -> str:
    """A VPS recorded as if its create job had run: 1 vCPU, 256 MiB, 2 GiB, running (made by staff
    without an order: no subscription nor invoice)."""
    created = api.unbilled(api.customer_of(token), json={
        "name": name, "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [pubkey]})
    assert created.status_code == 202, created.text
    vps_id = str(created.json()["vps"]["id"])
    with Session(api.engine) as session:
        vps = session.get(Vps, vps_id)
        assert vps is not None
        vps.status = "running"
        session.add(vps)
        for job in session.exec(select(Job).where(Job.vps_id == vps_id)).all():
            job.status = JobStatus.succeeded  # the create is over: the queue is free
            session.add(job)
        session.commit()
    return vps_id


def count(api: Api, table: Any) -> int:
    with Session(api.engine) as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


def jobs_of(api: Api, vps_id: str, kind: str = "resize") -> list[Job]:
    with Session(api.engine) as session:
        return list(session.exec(select(Job).where(Job.vps_id == vps_id, Job.kind == kind)).all())


def mails(api: Api, template: str) -> list[Outbox]:
    with Session(api.engine) as session:
        return list(session.exec(select(Outbox).where(Outbox.template == template)
                                 .order_by(col(Outbox.id))).all())


def context_for(api: Api, job_id: str) -> Context:
    """What a worker hands to the operation and the workflows (no hypervisor needed by them)."""
    with Session(api.engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
    return Context(engine=api.engine, settings=api.settings, drivers=None,  # type: ignore[arg-type]
                   job=job, worker_id="test", check_lease=lambda: None)


def test_a_customer_resize_is_refused_naming_the_rule(offline_api: Api, pubkey: str) -> None:
    """R5.1-change-order: no resize job without an accepted order form."""
    vps_id = running_vps(offline_api, offline_api.alice, pubkey)
    refused = offline_api.call("POST", f"/v1/vps/{vps_id}/resize", offline_api.alice, json={"memory_mib": 448})
    assert refused.status_code == 422
    assert refused.json()["rule"] == RULE and "change order" in refused.json()["detail"]
    # a customer cannot slip past it by claiming a reason
    claimed = offline_api.call("POST", f"/v1/vps/{vps_id}/resize", offline_api.alice,
                               json={"memory_mib": 448, "reason": "I said so"})
    assert claimed.status_code == 422 and claimed.json()["rule"] == RULE
    assert jobs_of(offline_api, vps_id) == []


def test_a_staff_resize_needs_a_reason_recorded_in_the_job_and_events(offline_api: Api, pubkey: str) -> None:
    """R5.1-change-order: the exception is staff's resize under another rule, which it names."""
    vps_id = running_vps(offline_api, offline_api.alice, pubkey)
    path = f"/v1/vps/{vps_id}/resize"
    for body in ({"memory_mib": 448}, {"memory_mib": 448, "reason": "   "}):
        refused = offline_api.call("POST", path, offline_api.support, json=body)
        assert refused.status_code == 422 and refused.json()["rule"] == RULE, refused.text
        assert "reason" in refused.json()["detail"]
    assert jobs_of(offline_api, vps_id) == []

    reason = "R5.2-keep-running: moved to a bigger flavour after host failure, ticket 4711"
    accepted = offline_api.call("POST", path, offline_api.support, json={"memory_mib": 448, "reason": reason})
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["plan"]["memory_mib"] == 448
    [job] = jobs_of(offline_api, vps_id)
    assert job.params["reason"] == reason and job.cause is None
    events = offline_api.call("GET", f"/v1/vps/{vps_id}/events?order=asc&limit=500", offline_api.alice).json()["items"]
    assert any(reason in e["message"] and e["job_id"] == job.id for e in events), events
    admit(context_for(offline_api, job.id), ResizeVps)  # the worker lets it through too


def test_the_worker_refuses_a_resize_job_without_order_form_or_reason(offline_api: Api, pubkey: str) -> None:
    """R5.1-change-order, checked again when the job starts (a job recorded by other means)."""
    vps_id = running_vps(offline_api, offline_api.alice, pubkey)
    accepted = offline_api.call("POST", f"/v1/vps/{vps_id}/resize", offline_api.support,
                                json={"memory_mib": 448, "reason": "ticket 1"})
    job_id = accepted.json()["job"]["id"]
    with Session(offline_api.engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.params = {**job.params, "requested_role": "customer"}
        session.add(job)
        session.commit()
    with pytest.raises(ContractRefusal) as refused:
        admit(context_for(offline_api, job_id), ResizeVps)
    assert refused.value.rule == RULE


def test_request_approve_accept_done(offline_api: Api, pubkey: str) -> None:
    """The whole path: requested -> approved (order form emailed, HT prices) -> accepted (the resize
    job with exactly the order's configuration, the fee invoiced) -> done (the new rent)."""
    api = offline_api
    vps_id = running_vps(api, api.alice, pubkey)
    with Session(api.engine) as session:
        vps = session.get(Vps, vps_id)
        assert vps is not None
        session.add(Subscription(customer_id=vps.customer_id, vps_id=vps_id, term_months=12,
                                 billing_period="quarterly", rent_ht=Decimal("30.00")))
        session.commit()

    asked = api.call("POST", f"/v1/vps/{vps_id}/change-orders", api.alice,
                     json={"memory_mib": 448, "note": "more cache"})
    assert asked.status_code == 201, asked.text
    order = asked.json()
    assert order["status"] == "requested" and order["number"] is None
    assert order["current"] == {"vcpus": 1, "memory_mib": 256, "disk_gib": 2}
    assert order["requested"] == {"vcpus": 1, "memory_mib": 448, "disk_gib": 2}
    assert order["request_note"] == "more cache" and order["requested_by"] == "customer:alice"
    base = f"/v1/change-orders/{order['id']}"

    # one open change order per VPS
    again = api.call("POST", f"/v1/vps/{vps_id}/change-orders", api.alice, json={"vcpus": 2})
    assert again.status_code == 409
    # R7-confidential: bob sees neither the order nor the VPS's list
    assert api.call("GET", base, api.bob).status_code == 404
    assert api.call("GET", f"/v1/vps/{vps_id}/change-orders", api.bob).status_code == 404
    assert api.call("POST", f"{base}/cancel", api.bob).status_code == 404
    assert api.call("POST", f"{base}/accept", api.bob).status_code == 404
    # a customer does not approve; nothing is accepted before approval
    assert api.call("POST", f"{base}/approve", api.alice, json={"rent_ht": "1.00"}).status_code == 403
    assert api.call("POST", f"{base}/accept", api.alice).status_code == 409
    # bad prices change nothing
    for body in ({"rent_ht": "-1"}, {"rent_ht": "1.234"}, {"rent_ht": "abc"}, {}, {"rent_ht": "1", "extra": 1}):
        bad = api.call("POST", f"{base}/approve", api.support, json=body)
        assert bad.status_code == 422, (body, bad.text)
    assert api.call("GET", base, api.alice).json()["status"] == "requested"
    assert mails(api, "order_form") == []

    approved = api.call("POST", f"{base}/approve", api.support,
                        json={"rent_ht": "42.50", "fee_ht": "15.00", "note": "applied live"})
    assert approved.status_code == 200, approved.text
    order = approved.json()
    assert order["status"] == "approved" and order["number"].startswith("BC20")
    assert Decimal(order["rent_ht"]) == Decimal("42.50") and Decimal(order["fee_ht"]) == Decimal("15.00")
    assert order["decided_by"] == "support:support"
    [form] = mails(api, "order_form")
    assert form.customer_id is not None and form.vps_id == vps_id and form.language == "fr"  # alice's language
    assert form.subject.startswith(f"Bon de commande {order['number']}")
    for text in (order["number"], "256 Mio", "448 Mio", "42,50 € HT", "15,00 € HT", "trimestrielle",
                 order["id"]):
        assert text in form.body_text, text

    # approved once; no refusal after it; staff do not accept for the client
    assert api.call("POST", f"{base}/approve", api.support, json={"rent_ht": "1.00"}).status_code == 409
    assert api.call("POST", f"{base}/refuse", api.support, json={"reason": "no"}).status_code == 409
    staff_accept = api.call("POST", f"{base}/accept", api.support)
    assert staff_accept.status_code == 403 and "client" in staff_accept.json()["detail"]
    assert jobs_of(api, vps_id) == []

    accepted = api.call("POST", f"{base}/accept", api.alice)
    assert accepted.status_code == 202, accepted.text
    answer = accepted.json()
    assert answer["change_order"]["status"] == "accepted" and answer["change_order"]["accepted_at"]
    assert answer["job"]["kind"] == "resize" and answer["change_order"]["job_id"] == answer["job"]["id"]
    assert answer["plan"] == {"vcpus": 1, "memory_mib": 448, "disk_gib": 2, "mode": "live", "reboot": False}
    [job] = jobs_of(api, vps_id)
    assert job.cause == f"change_order:{order['id']}"
    assert {k: job.params["plan"][k] for k in ("vcpus", "memory_mib", "disk_gib")} == order["requested"]
    # the one-off fee, invoiced at acceptance (R8.3-ht: the line is HT, VAT on top)
    invoice = api.call("GET", f"/v1/invoices/{answer['change_order']['invoice_id']}", api.alice).json()
    assert invoice["purpose"] == "change_order" and invoice["purpose_ref"] == order["id"]
    assert Decimal(invoice["total_ht"]) == Decimal("15.00") and Decimal(invoice["total_ttc"]) > Decimal("15.00")
    assert invoice["lines"][0]["rule"] == RULE and order["number"] in invoice["lines"][0]["label"]
    # no more withdrawing, no second acceptance
    assert api.call("POST", f"{base}/cancel", api.alice).status_code == 409
    assert api.call("POST", f"{base}/accept", api.alice).status_code == 409
    assert len(jobs_of(api, vps_id)) == 1

    # the worker starts the job: the gate lets exactly this order's configuration through
    ctx = context_for(api, job.id)
    admit(ctx, ResizeVps)
    tampered = context_for(api, job.id)
    tampered.job.params = {**job.params, "memory_mib": 1024}  # other sizes than the order form's
    with pytest.raises(ContractRefusal):
        admit(tampered, ResizeVps)

    conclude(ctx, ResizeVps)  # the job's last step is done
    done = api.call("GET", base, api.alice).json()
    assert done["status"] == "done" and done["closed_at"]
    assert "from the next period" in done["outcome"]
    with Session(api.engine) as session:
        subscription = session.exec(select(Subscription).where(Subscription.vps_id == vps_id)).one()
        assert subscription.rent_ht == Decimal("42.50")  # R8.2-rent: what the next periods cost
    listed = api.call("GET", f"/v1/vps/{vps_id}/change-orders", api.alice).json()["items"]
    assert [o["status"] for o in listed] == ["done"]
    # closed: a new request may follow
    assert api.call("POST", f"/v1/vps/{vps_id}/change-orders", api.alice, json={"vcpus": 2}).status_code == 201


def test_a_failed_job_fails_the_order_and_keeps_the_rent(offline_api: Api, pubkey: str) -> None:
    api = offline_api
    vps_id = running_vps(api, api.alice, pubkey)
    with Session(api.engine) as session:
        vps = session.get(Vps, vps_id)
        assert vps is not None
        session.add(Subscription(customer_id=vps.customer_id, vps_id=vps_id, term_months=1, rent_ht=Decimal("9.99")))
        session.commit()
    order = api.call("POST", f"/v1/vps/{vps_id}/change-orders", api.alice, json={"vcpus": 2}).json()
    base = f"/v1/change-orders/{order['id']}"
    assert api.call("POST", f"{base}/approve", api.support, json={"rent_ht": "19.99"}).status_code == 200
    accepted = api.call("POST", f"{base}/accept", api.alice).json()
    assert accepted["change_order"]["invoice_id"] is None  # no one-off fee, no invoice
    abandon(context_for(api, accepted["job"]["id"]), ResizeVps, RuntimeError("host refused the vCPU"), undo=False)
    failed = api.call("GET", base, api.alice).json()
    assert failed["status"] == "failed" and "host refused" in failed["outcome"]
    with Session(api.engine) as session:
        assert session.exec(select(Subscription)).one().rent_ht == Decimal("9.99")


def test_a_job_refused_at_start_fails_the_order_when_read(offline_api: Api, pubkey: str) -> None:
    """A job that ended without its hooks (e.g. the VPS's status changed before it started)."""
    api = offline_api
    vps_id = running_vps(api, api.alice, pubkey)
    order = api.call("POST", f"/v1/vps/{vps_id}/change-orders", api.alice, json={"disk_gib": 3}).json()
    base = f"/v1/change-orders/{order['id']}"
    api.call("POST", f"{base}/approve", api.support, json={"rent_ht": "5"})
    job_id = api.call("POST", f"{base}/accept", api.alice).json()["job"]["id"]
    with Session(api.engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.status, job.error = JobStatus.failed, "cannot resize a VPS whose status is 'suspended'"
        session.add(job)
        session.commit()
    failed = api.call("GET", base, api.support).json()
    assert failed["status"] == "failed" and "suspended" in failed["outcome"]


def test_refused_with_a_reason_emailed_in_the_customers_language(offline_api: Api, pubkey: str) -> None:
    api = offline_api
    vps_id = running_vps(api, api.bob, pubkey, name="bobs")  # bob reads English
    order = api.call("POST", f"/v1/vps/{vps_id}/change-orders", api.bob, json={"vcpus": 4}).json()
    base = f"/v1/change-orders/{order['id']}"
    assert api.call("POST", f"{base}/refuse", api.bob, json={"reason": "x"}).status_code == 403
    assert api.call("POST", f"{base}/refuse", api.support, json={"reason": "  "}).status_code == 422
    assert api.call("POST", f"{base}/refuse", api.support, json={}).status_code == 422
    refused = api.call("POST", f"{base}/refuse", api.support, json={"reason": "that host is full until May"})
    assert refused.status_code == 200
    assert refused.json()["status"] == "refused" and refused.json()["decision_note"] == "that host is full until May"
    [mail] = mails(api, "change_order_refused")
    assert mail.language == "en" and mail.subject == "Your change request for the VPS bobs was not approved"
    assert "that host is full until May" in mail.body_text and "4" in mail.body_text
    for action, body in (("approve", {"rent_ht": "1"}), ("refuse", {"reason": "again"})):
        assert api.call("POST", f"{base}/{action}", api.support, json=body).status_code == 409
    assert api.call("POST", f"{base}/accept", api.bob).status_code == 409
    assert api.call("POST", f"{base}/cancel", api.bob).status_code == 409
    assert jobs_of(api, vps_id) == []
    assert api.call("POST", f"/v1/vps/{vps_id}/change-orders", api.bob, json={"vcpus": 2}).status_code == 201


def test_the_customer_withdraws_before_accepting(offline_api: Api, pubkey: str) -> None:
    api = offline_api
    vps_id = running_vps(api, api.alice, pubkey)
    for approve_first in (False, True):
        order = api.call("POST", f"/v1/vps/{vps_id}/change-orders", api.alice, json={"vcpus": 2}).json()
        base = f"/v1/change-orders/{order['id']}"
        if approve_first:
            assert api.call("POST", f"{base}/approve", api.support, json={"rent_ht": "8"}).status_code == 200
        assert api.call("POST", f"{base}/cancel", api.support).status_code == 403
        cancelled = api.call("POST", f"{base}/cancel", api.alice)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert "customer:alice" in cancelled.json()["outcome"]
        assert api.call("POST", f"{base}/accept", api.alice).status_code == 409
        assert api.call("POST", f"{base}/approve", api.support, json={"rent_ht": "8"}).status_code == 409
    assert jobs_of(api, vps_id) == []


def test_staff_may_record_the_request_for_the_client(offline_api: Api, pubkey: str) -> None:
    api = offline_api
    vps_id = running_vps(api, api.alice, pubkey)
    asked = api.call("POST", f"/v1/vps/{vps_id}/change-orders", api.support, json={"vcpus": 2, "note": "by phone"})
    assert asked.status_code == 201 and asked.json()["requested_by"] == "support:support"
    assert api.call("GET", f"/v1/change-orders/{asked.json()['id']}", api.alice).status_code == 200


@pytest.mark.parametrize(("body", "detail"), [
    ({"disk_gib": 1}, "never shrink"),
    ({"memory_mib": 100}, "at least 128 MiB"),  # the image's minimum
    ({"memory_mib": 200_000}, "cannot hold"),  # the host's capacity
    ({"vcpus": 1, "memory_mib": 256, "disk_gib": 2}, "nothing to change"),
    ({}, "vcpus"),
    ({"note": "only words"}, "vcpus"),
    ({"vcpus": 0}, "vcpus"),
    ({"vcpus": "two"}, "vcpus"),
    ({"vcpus": 2, "colour": "red"}, "colour"),
    ({"vcpus": 2, "note": "x" * 501}, "note"),
])
def test_bad_input_is_refused_and_records_nothing(offline_api: Api, pubkey: str, body: dict[str, Any],
                                                  detail: str) -> None:
    vps_id = running_vps(offline_api, offline_api.alice, pubkey)
    refused = offline_api.call("POST", f"/v1/vps/{vps_id}/change-orders", offline_api.alice, json=body)
    assert refused.status_code == 422, refused.text
    assert detail in refused.json()["detail"], refused.json()
    assert count(offline_api, ChangeOrder) == 0 and count(offline_api, Outbox) == 0


def test_unknown_or_foreign_ids_are_404(offline_api: Api, pubkey: str) -> None:
    api = offline_api
    vps_id = running_vps(api, api.alice, pubkey)
    assert api.call("POST", f"/v1/vps/{vps_id}/change-orders", api.bob, json={"vcpus": 2}).status_code == 404
    for order_id in ("nope", "00000000-0000-0000-0000-000000000000"):
        assert api.call("GET", f"/v1/change-orders/{order_id}", api.support).status_code == 404
        assert api.call("POST", f"/v1/change-orders/{order_id}/accept", api.alice).status_code == 404
    assert count(api, ChangeOrder) == 0 and count(api, Invoice) == 0


def test_a_vps_that_cannot_be_resized_now_is_409(offline_api: Api, pubkey: str) -> None:
    vps_id = running_vps(offline_api, offline_api.alice, pubkey)
    with Session(offline_api.engine) as session:
        vps = session.get(Vps, vps_id)
        assert vps is not None
        vps.status = "suspended"
        session.add(vps)
        session.commit()
    refused = offline_api.call("POST", f"/v1/vps/{vps_id}/change-orders", offline_api.alice, json={"vcpus": 2})
    assert refused.status_code == 409 and refused.json()["current_status"] == "suspended"
    assert count(offline_api, ChangeOrder) == 0
