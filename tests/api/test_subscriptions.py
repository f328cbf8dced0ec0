"""Subscriptions through the API: R3-terms refusals naming the rule, the first invoice at order
with the setup fee and VAT (R8.1-setup-fee, R8.6-billing, R8.3-ht), the term and renewal shown
(R3-renewal), non-renewal in time and too late (R3-notice), reversibility two months after the
registered letter with every disk exported (R13-reversibility), and another customer's
subscription or invoice answered 404 (R7-confidential). The clock stands on Wednesday
13 May 2026, 10:00 in Paris."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from orchestrator.core.models import Job, Outbox, Subscription, Vps
from tests.api.money import paris, running_vps, subscribe
from tests.conftest import Api


@pytest.fixture
def api(offline_api: Api, clock: object) -> Api:
    clock.travel_to(paris(2026, 5, 13, 10, 0))  # type: ignore[attr-defined]
    return offline_api


@pytest.mark.parametrize("term", [0, 2, 5, 18, 36])
def test_a_term_other_than_1_3_6_12_24_months_is_refused_naming_r3_terms(api: Api, tmp_path: Path,
                                                                          term: int) -> None:
    vps_id = running_vps(api, tmp_path, api.alice)
    body = {"vps_id": vps_id, "term_months": term, "billing_period": "monthly", "rent_ht": "10.00"}
    refused = api.call("POST", "/v1/subscriptions", api.support, json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["rule"] == "R3-terms"
    assert api.call("GET", "/v1/subscriptions", api.support).json()["items"] == []
    assert api.call("GET", "/v1/invoices", api.support).json()["items"] == []


def test_order_refusals(api: Api, tmp_path: Path) -> None:
    vps_id = running_vps(api, tmp_path, api.alice)
    body = {"vps_id": vps_id, "term_months": 12, "billing_period": "weekly", "rent_ht": "10.00"}
    weekly = api.call("POST", "/v1/subscriptions", api.support, json=body)
    assert weekly.status_code == 422 and weekly.json()["rule"] == "R8.6-billing"
    yearly_on_a_quarter = api.call("POST", "/v1/subscriptions", api.support, json={
        **body, "term_months": 3, "billing_period": "yearly"})
    assert yearly_on_a_quarter.status_code == 422 and yearly_on_a_quarter.json()["rule"] == "R8.2-rent"
    by_customer = api.call("POST", "/v1/subscriptions", api.alice, json={**body, "billing_period": "monthly"})
    assert by_customer.status_code == 403
    float_rent = api.call("POST", "/v1/subscriptions", api.support, json={**body, "billing_period": "monthly",
                                                                          "rent_ht": "10.001"})
    assert float_rent.status_code == 422
    past = api.call("POST", "/v1/subscriptions", api.support, json={**body, "billing_period": "monthly",
                                                                    "started_on": "2026-05-12"})
    assert past.status_code == 422
    assert api.call("GET", "/v1/subscriptions", api.support).json()["items"] == []
    subscribe(api, vps_id)
    again = api.call("POST", "/v1/subscriptions", api.support, json={**body, "billing_period": "monthly"})
    assert again.status_code == 409


def test_first_invoice_at_order_with_the_setup_fee_and_vat(api: Api, tmp_path: Path) -> None:
    vps_id = running_vps(api, tmp_path, api.alice)
    ordered = subscribe(api, vps_id, rent_ht="19.99", setup_fee_ht="49.90", billing_period="quarterly")
    invoice = ordered["invoice"]
    # R8.1-setup-fee + the first quarter's rent (R8.6-billing: issued at order), VAT 20 % (R8.3-ht)
    assert [(line["rule"], line["amount_ht"]) for line in invoice["lines"]] == [
        ("R8.1-setup-fee", "49.90"), ("R8.2-rent", "19.99")]
    assert (invoice["total_ht"], invoice["total_vat"], invoice["total_ttc"]) == ("69.89", "13.98", "83.87")
    assert (invoice["period_start"], invoice["period_end"]) == ("2026-05-13", "2026-08-13")
    assert invoice["due_on"] == "2026-05-13" and invoice["purpose"] == "rent" and invoice["status"] == "open"
    sub = ordered["subscription"]
    assert sub["rent_ht"] == "19.99" and sub["setup_fee_ht"] == "49.90"  # Decimal, exactly, as text
    assert sub["current_term"] == {"starts_on": "2026-05-13", "ends_on": "2027-05-13"}
    assert sub["next_renewal"] == "2027-05-13"  # R3-renewal
    assert sub["notice_deadline"].startswith("2027-03-13T00:00:00")  # R3-notice: two months before
    assert sub["status"] == "active" and sub["ends_on"] is None
    assert "termination_right" in sub
    # the customer sees it, its invoice too
    mine = api.call("GET", f"/v1/subscriptions/{sub['id']}", api.alice)
    assert mine.status_code == 200 and mine.json()["id"] == sub["id"]
    assert api.call("GET", f"/v1/invoices/{invoice['id']}", api.alice).json()["total_ttc"] == "83.87"


def test_another_customers_subscription_and_invoice_are_404(api: Api, tmp_path: Path) -> None:
    ordered = subscribe(api, running_vps(api, tmp_path, api.alice))
    sub_id, invoice_id = ordered["subscription"]["id"], ordered["invoice"]["id"]
    assert api.call("GET", f"/v1/subscriptions/{sub_id}", api.bob).status_code == 404
    assert api.call("GET", f"/v1/invoices/{invoice_id}", api.bob).status_code == 404
    assert api.call("GET", f"/v1/invoices/{invoice_id}/late-fees", api.bob).status_code == 404
    assert api.call("POST", f"/v1/subscriptions/{sub_id}/non-renewal", api.bob, json={}).status_code == 404
    assert api.call("GET", "/v1/subscriptions", api.bob).json()["items"] == []
    assert api.call("GET", "/v1/subscriptions/nope", api.alice).status_code == 404


def test_non_renewal_in_time_ends_at_the_current_term(api: Api, tmp_path: Path) -> None:
    vps_id = running_vps(api, tmp_path, api.alice)
    sub = subscribe(api, vps_id, term_months=12)["subscription"]
    path = f"/v1/subscriptions/{sub['id']}/non-renewal"
    letter_by_customer = api.call("POST", path, api.alice, json={
        "channel": "registered_letter", "received_at": "2026-05-13T09:00:00+02:00"})
    assert letter_by_customer.status_code == 403
    answer = api.call("POST", path, api.alice, json={"channel": "online"})
    assert answer.status_code == 200, answer.text
    # R3-notice: received a year before the end of the first term: in time for it
    assert answer.json()["effective_on"] == "2027-05-13"
    view = answer.json()["subscription"]
    assert (view["status"], view["ends_on"], view["end_reason"]) == ("ending", "2027-05-13", "non_renewal")
    assert view["non_renewal_channel"] == "online" and view["next_renewal"] is None
    assert api.call("POST", path, api.alice, json={"channel": "online"}).status_code == 409
    with Session(api.engine) as session:
        job = session.get(Job, answer.json()["termination_job_id"])
        assert job is not None and job.kind == "terminate" and job.vps_id == vps_id
        assert job.scheduled_at is not None and job.scheduled_at.isoformat() == "2027-05-12T22:00:00+00:00"
        acks = session.exec(select(Outbox).where(Outbox.template == "non_renewal_ack")).all()
    assert len(acks) == 1 and "13 mai 2027" in acks[0].subject


def test_non_renewal_too_late_ends_at_the_first_term_two_months_away(api: Api, tmp_path: Path) -> None:
    vps_id = running_vps(api, tmp_path, api.alice)
    sub = subscribe(api, vps_id, term_months=1)["subscription"]
    path = f"/v1/subscriptions/{sub['id']}/non-renewal"
    no_date = api.call("POST", path, api.support, json={"channel": "registered_letter"})
    assert no_date.status_code == 422
    future = api.call("POST", path, api.support, json={"channel": "registered_letter",
                                                       "received_at": "2026-05-14T09:00:00+02:00"})
    assert future.status_code == 422
    # Terms end 13 June, 13 July, 13 August...: a letter of 13 May 09:00 is too late for June and
    # for July (its deadline was 13 May 00:00), in time for 13 August.
    answer = api.call("POST", path, api.support, json={"channel": "registered_letter",
                                                       "received_at": "2026-05-13T09:00:00+02:00"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["effective_on"] == "2026-08-13"
    assert answer.json()["subscription"]["non_renewal_channel"] == "registered_letter"


def test_reversibility_two_months_after_the_letter_with_every_disk_exported(api: Api, tmp_path: Path) -> None:
    web = running_vps(api, tmp_path, api.alice, "web")
    db = running_vps(api, tmp_path, api.alice, "db")
    running_vps(api, tmp_path, api.bob, "other")
    sub = subscribe(api, web, term_months=12)["subscription"]
    path = f"/v1/subscriptions/{sub['id']}/reversibility"
    assert api.call("POST", path, api.alice, json={"received_at": "2026-05-13T09:00:00+02:00"}).status_code == 403
    answer = api.call("POST", path, api.support, json={"received_at": "2026-05-13T09:00:00+02:00"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["effective_at"].startswith("2026-07-13T09:00:00")  # R13-reversibility: two months
    assert body["refund_eur"] == "0.00"
    assert (body["subscription"]["status"], body["subscription"]["ends_on"]) == ("ending", "2026-07-13")
    with Session(api.engine) as session:
        exports = [session.get(Job, job_id) for job_id in body["export_job_ids"]]
        assert sorted(j.vps_id for j in exports if j) == sorted([web, db])  # every VPS of the client
        assert all(j and j.kind == "backup" and j.params["kind"] == "export" for j in exports)
        end = session.exec(select(Job).where(Job.kind == "terminate")).one()
        assert end.scheduled_at is not None and end.scheduled_at.isoformat() == "2026-07-13T07:00:00+00:00"
        assert end.params["reason"] == "reversibility"
        assert session.exec(select(Outbox).where(Outbox.template == "reversibility_ack")).one()
        record = session.get(Subscription, sub["id"])
        assert record is not None and record.reversibility_received_at is not None


def test_the_client_cannot_start_the_vps_of_a_terminated_subscription(api: Api, tmp_path: Path) -> None:
    vps_id = running_vps(api, tmp_path, api.alice)
    sub = subscribe(api, vps_id)["subscription"]

    def change(**values: str) -> None:
        with Session(api.engine) as session:
            for model, key in ((Vps, vps_id), (Subscription, sub["id"]), (Job, values.get("job", ""))):
                row = session.get(model, key)
                for field, value in values.items():
                    if row is not None and field.startswith(model.__name__.lower() + "_"):
                        setattr(row, field.split("_", 1)[1], value)
                        session.add(row)
            session.commit()

    change(vps_status="stopped")
    started = api.call("POST", f"/v1/vps/{vps_id}/start", api.alice)
    assert started.status_code == 202, started.text  # still active: the client may start it
    change(job=started.json()["job"]["id"], job_status="cancelled", subscription_status="terminated")
    # R10-after: as if the termination job had run
    refused = api.call("POST", f"/v1/vps/{vps_id}/start", api.alice)
    assert refused.status_code == 422 and refused.json()["rule"] == "R10-after"
    assert api.call("POST", f"/v1/vps/{vps_id}/start", api.support).status_code == 202
