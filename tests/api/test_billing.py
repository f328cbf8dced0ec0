"""Money through the API: rent invoices per period exactly once, even from two workers at once,
never pro rata (R8.2-rent, R8.6-billing); SYNTEC revision at a term boundary (R8.4-syntec); the
35 € payment incident fee (R8.7-default); 200 € HT per blacklisting complaint
(R6.4-blacklist-fee); late interest and penalty on an overdue invoice (R8.6-billing,
R8.7-default), refused naming the rule past the last published legal rate; payment methods for a
foreign bank (R8.5-payment-methods); a payment default and its undoing by payment (R8.7-default,
R10-nonpayment); an automatic default by policy."""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from orchestrator.core.models import Job, JobStatus, Outbox, PaymentDefault, Vps, VpsStatus
from orchestrator.workflows import billing_run
from tests import contention
from tests.api.money import paris, running_vps, subscribe
from tests.conftest import Api


@pytest.fixture
def api(offline_api: Api, clock: Any) -> Api:
    clock.travel_to(paris(2026, 5, 13, 10, 0))
    return offline_api


def rents(api: Api, sub_id: str) -> list[dict[str, Any]]:
    rows = [i for i in api.call("GET", "/v1/invoices", api.support).json()["items"]
            if i["subscription_id"] == sub_id and i["purpose"] == "rent"]
    return sorted(rows, key=lambda i: i["period_start"])


def test_rent_is_invoiced_once_per_period_even_from_two_workers(api: Api, clock: Any, tmp_path: Path) -> None:
    sub = subscribe(api, running_vps(api, tmp_path, api.alice), rent_ht="10.00")["subscription"]
    assert api.call("POST", "/v1/billing/run", api.alice).status_code == 403
    assert api.call("POST", "/v1/billing/run", api.support).json()["issued"] == []  # the first one is at order
    clock.travel_to(paris(2026, 6, 13, 0, 30))  # the second period begins
    first = api.call("POST", "/v1/billing/run", api.support).json()
    again = api.call("POST", "/v1/billing/run", api.support).json()
    assert len(first["issued"]) == 1 and again["issued"] == []
    clock.travel_to(paris(2026, 8, 20, 9, 0))  # two more periods begun (13 July, 13 August)
    # Two runs at the same moment, seen so (tests/contention.py): the database's write lock is held
    # until each run is seen asking for its first transaction, which can begin only once it is let go.
    results: dict[str, billing_run.RunResult] = {}
    asking: queue.SimpleQueue[str] = queue.SimpleQueue()
    watch = contention.BeginWatch(api.engine, on_asking=asking.put)
    with contention.sqlite_write_lock(api.settings.database) as release:
        threads = [threading.Thread(target=lambda: results.update({threading.current_thread().name: billing_run.run(
            api.engine, api.settings)}), name=f"billing-{n}") for n in range(2)]
        for t in threads:
            t.start()
        assert {asking.get(timeout=30) for _ in threads} == {"billing-0", "billing-1"}
        released = release()
    for t in threads:
        t.join(timeout=60)
    watch.close()
    assert all(watch.asked[t.name] < released < watch.began[t.name] for t in threads)  # each waited for it
    # Either may issue both periods while the other waits for the write lock (the lock serialises
    # whole transactions: neither reads a period the other is issuing, neither races).
    assert sorted(len(r.issued) for r in results.values()) in ([0, 2], [1, 1])
    assert [r.raced for r in results.values()] == [[], []]
    invoices = rents(api, sub["id"])
    assert [(i["period_start"], i["period_end"]) for i in invoices] == [
        ("2026-05-13", "2026-06-13"), ("2026-06-13", "2026-07-13"), ("2026-07-13", "2026-08-13"),
        ("2026-08-13", "2026-09-13")]
    assert [i["total_ht"] for i in invoices] == ["60.00", "10.00", "10.00", "10.00"]  # setup fee at order only
    assert all(i["total_ttc"] == "12.00" for i in invoices[1:])


def test_the_last_period_begun_is_invoiced_in_full_never_pro_rata(api: Api, clock: Any, tmp_path: Path) -> None:
    sub = subscribe(api, running_vps(api, tmp_path, api.alice), rent_ht="30.00", setup_fee_ht="0")["subscription"]
    # R13-reversibility letter on 20 May: the service ends on 20 July, a week into a period
    clock.travel_to(paris(2026, 5, 20, 9, 0))
    answer = api.call("POST", f"/v1/subscriptions/{sub['id']}/reversibility", api.support,
                      json={"received_at": "2026-05-20T08:00:00+02:00"})
    assert answer.status_code == 200, answer.text
    clock.travel_to(paris(2026, 10, 1, 12, 0))
    api.call("POST", "/v1/billing/run", api.support)
    invoices = rents(api, sub["id"])
    assert [(i["period_start"], i["total_ht"]) for i in invoices] == [
        ("2026-05-13", "30.00"), ("2026-06-13", "30.00"), ("2026-07-13", "30.00")]


def test_syntec_revision_at_a_term_boundary_only(api: Api, clock: Any, tmp_path: Path) -> None:
    monthly = subscribe(api, running_vps(api, tmp_path, api.alice, "a"), term_months=1, rent_ht="100.00",
                        contract_index="1800")["subscription"]
    yearly = subscribe(api, running_vps(api, tmp_path, api.alice, "b"), term_months=12, rent_ht="100.00",
                       contract_index="1800")["subscription"]
    assert api.call("POST", "/v1/billing/syntec", api.alice, json={"month": "2026-05-01", "value": "1850"}
                    ).status_code == 403
    recorded = api.call("POST", "/v1/billing/syntec", api.support, json={"month": "2026-05-01", "value": "1850"})
    assert recorded.status_code == 201 and recorded.json()["value"] == "1850"
    assert api.call("POST", "/v1/billing/syntec", api.support, json={"month": "2026-05-15", "value": "1"}
                    ).status_code == 409
    clock.travel_to(paris(2026, 6, 13, 8, 0))
    run = api.call("POST", "/v1/billing/run", api.support).json()
    assert run["revised"] == [monthly["id"]]
    # R8.4-syntec: 100.00 x 1850 / 1800 = 102.777... -> 102.78, from the new term on
    assert rents(api, monthly["id"])[-1]["total_ht"] == "102.78"
    assert rents(api, yearly["id"])[-1]["total_ht"] == "100.00"  # mid-term: no revision
    view = api.call("GET", f"/v1/subscriptions/{monthly['id']}", api.alice).json()
    assert (view["rent_ht"], view["contract_index"]) == ("102.78", "1850")
    clock.travel_to(paris(2026, 7, 13, 8, 0))  # the same index again: no second revision
    assert api.call("POST", "/v1/billing/run", api.support).json()["revised"] == []
    assert rents(api, monthly["id"])[-1]["total_ht"] == "102.78"


def test_payment_incident_fee_is_35_euros(api: Api, tmp_path: Path) -> None:
    invoice = subscribe(api, running_vps(api, tmp_path, api.alice))["invoice"]
    path = f"/v1/invoices/{invoice['id']}/payment-incidents"
    assert api.call("POST", path, api.alice, json={}).status_code == 403
    fee = api.call("POST", path, api.support, json={"note": "direct debit rejected"})
    assert fee.status_code == 201, fee.text
    body = fee.json()
    assert body["purpose"] == "payment_incident" and body["purpose_ref"] == invoice["id"]
    assert (body["total_ht"], body["total_vat"], body["total_ttc"]) == ("35.00", "0.00", "35.00")
    assert body["lines"][0]["rule"] == "R8.7-default"
    two = api.call("POST", path, api.support, json={"incidents": 2}).json()
    assert two["total_ttc"] == "70.00"
    assert api.call("POST", path, api.support, json={"incidents": 0}).status_code == 422


def test_blacklist_fee_is_200_euros_ht_per_complaint(api: Api, tmp_path: Path) -> None:
    spammer = running_vps(api, tmp_path, api.alice, "mailer")
    quiet = running_vps(api, tmp_path, api.alice, "web")
    bobs = running_vps(api, tmp_path, api.bob, "bobs")
    path = "/v1/customers/alice/blacklist-complaints"
    assert api.call("POST", path, api.alice, json={"complaints": 1}).status_code == 403
    assert api.call("POST", "/v1/customers/nobody/blacklist-complaints", api.support, json={}).status_code == 404
    # another client's VPS cannot be named: refused, nothing invoiced
    assert api.call("POST", path, api.support, json={"suspend_vps_ids": [bobs]}).status_code == 404
    assert api.call("GET", "/v1/invoices", api.alice).json()["items"] == []
    fee = api.call("POST", path, api.support, json={"complaints": 2, "note": "Spamhaus SBL 2026-05-12",
                                                    "suspend_vps_ids": [spammer]})
    assert fee.status_code == 201, fee.text
    body = fee.json()["invoice"]
    assert body["lines"][0]["rule"] == "R6.4-blacklist-fee" and body["purpose"] == "blacklist"
    assert (body["total_ht"], body["total_vat"], body["total_ttc"]) == ("400.00", "80.00", "480.00")
    assert [i["id"] for i in api.call("GET", "/v1/invoices", api.alice).json()["items"]] == [body["id"]]
    assert api.call("GET", "/v1/invoices", api.bob).json()["items"] == []
    with Session(api.engine) as session:
        suspends = session.exec(select(Job).where(Job.kind == "suspend")).all()
    assert [(j.vps_id, j.params["reason"]) for j in suspends] == [(spammer, "abuse")]
    assert [j.id for j in suspends] == fee.json()["suspend_job_ids"] and quiet != spammer


def test_late_fees_on_an_overdue_invoice(api: Api, tmp_path: Path) -> None:
    invoice = subscribe(api, running_vps(api, tmp_path, api.alice))["invoice"]  # 72.00 TTC, due 13 May
    path = f"/v1/invoices/{invoice['id']}/late-fees"
    early = api.call("GET", path, api.alice, params={"on": "2026-05-20"}).json()
    assert early["days_late"] == 7
    # R8.6-billing: 72.00 x 1.5 x 2.62 % x 7 / 365 = 0.054... ; R8.7-default: no penalty at 7 days
    assert [(x["rule"], x["amount_ht"]) for x in early["lines"]] == [("R8.6-billing", "0.05"),
                                                                     ("R8.7-default", "0.00")]
    late = api.call("GET", path, api.alice, params={"on": "2026-06-12"}).json()
    # 30 days: interest 72 x 1.5 x 2.62 % x 30 / 365 = 0.2325... ; penalty 72 x 2.62 % x 30 / 365 = 0.1550...
    assert [(x["rule"], x["amount_ht"]) for x in late["lines"]] == [("R8.6-billing", "0.23"),
                                                                    ("R8.7-default", "0.16")]
    assert all(x["taxable"] is False for x in late["lines"])
    unknown = api.call("GET", path, api.alice, params={"on": "2026-08-01"})  # no legal rate published yet
    assert unknown.status_code == 422 and unknown.json()["rule"] == "R8.6-billing"


def test_payment_methods_of_a_foreign_bank(api: Api, tmp_path: Path) -> None:
    invoice = subscribe(api, running_vps(api, tmp_path, api.alice), bank_country="US", currency="USD")["invoice"]
    path = f"/v1/invoices/{invoice['id']}/payments"
    refused = api.call("POST", path, api.support, json={"method": "transfer", "bank_country": "US", "currency": "USD"})
    assert refused.status_code == 422 and refused.json()["rule"] == "R8.5-payment-methods"
    cheque = api.call("POST", path, api.support, json={"method": "cheque", "bank_country": "DE", "currency": "EUR"})
    assert cheque.status_code == 422 and cheque.json()["rule"] == "R8.5-payment-methods"
    assert api.call("GET", f"/v1/invoices/{invoice['id']}", api.alice).json()["status"] == "open"
    paid = api.call("POST", path, api.support, json={"method": "paypal", "bank_country": "US", "currency": "USD"})
    assert paid.status_code == 200 and paid.json()["status"] == "paid"


def test_default_on_an_overdue_invoice_and_payment_calls_it_off(api: Api, clock: Any, tmp_path: Path) -> None:
    vps_id = running_vps(api, tmp_path, api.alice)
    invoice = subscribe(api, vps_id)["invoice"]
    path = f"/v1/invoices/{invoice['id']}/default"
    not_late = api.call("POST", path, api.support)
    assert not_late.status_code == 422 and not_late.json()["rule"] == "R8.7-default"
    clock.travel_to(paris(2026, 5, 20, 10, 0))
    assert api.call("POST", path, api.alice).status_code == 403
    declared = api.call("POST", path, api.support)
    assert declared.status_code == 201, declared.text
    body = declared.json()
    assert body["suspended_vps"] == [vps_id] and len(body["erasure_job_ids"]) == 1
    assert body["erasure_not_before"].startswith("2026-05-25T10:00")  # R8.7-default: five days
    assert body["termination_at"].startswith("2026-06-04T10:00")  # R10-nonpayment: fifteen days
    assert api.call("POST", path, api.support).status_code == 409
    shown = api.call("GET", "/v1/subscriptions", api.alice).json()["items"][0]["payment_default"]
    assert shown["invoice_id"] == invoice["id"] and shown["notice_sent_at"] is None  # no outbox sender here
    with Session(api.engine) as session:
        jobs = {j.kind: j for j in session.exec(select(Job).where(Job.vps_id == vps_id)).all()}
        assert jobs["suspend"].params["reason"] == "nonpayment" and jobs["suspend"].scheduled_at is None
        assert jobs["erase"].scheduled_at is not None and jobs["terminate"].scheduled_at is not None
        notice = session.exec(select(Outbox).where(Outbox.template == "payment_formal_notice")).one()
        assert invoice["number"] in notice.subject
    paid = api.call("POST", f"/v1/invoices/{invoice['id']}/payments", api.support, json={"method": "transfer"})
    assert paid.status_code == 200, paid.text
    with Session(api.engine) as session:
        statuses = {j.kind: j.status for j in session.exec(select(Job).where(Job.vps_id == vps_id)).all()}
        default = session.exec(select(PaymentDefault)).one()
    assert statuses["erase"] == statuses["terminate"] == statuses["suspend"] == JobStatus.cancelled
    assert "resume" not in statuses  # the suspension never ran: nothing to resume
    assert default.status == "settled" and default.settled_at is not None
    assert api.call("GET", "/v1/subscriptions", api.alice).json()["items"][0]["payment_default"] is None


def test_automatic_default_by_policy(api: Api, clock: Any, tmp_path: Path) -> None:
    vps_id = running_vps(api, tmp_path, api.alice)
    invoice = subscribe(api, vps_id)["invoice"]
    policy = api.settings.replace(auto_default_after_days=10)
    clock.travel_to(paris(2026, 5, 23, 10, 0))  # ten days after the due date: not yet
    assert billing_run.run(api.engine, policy).defaults == []
    clock.travel_to(paris(2026, 5, 24, 10, 0))
    assert billing_run.run(api.engine, policy).defaults == [invoice["number"]]
    assert billing_run.run(api.engine, policy).defaults == []  # once
    assert billing_run.run(api.engine, api.settings).defaults == []  # no policy, no automatic default
    with Session(api.engine) as session:
        default = session.exec(select(PaymentDefault)).one()
        assert default.opened_by == "automation:billing-run"
        assert {j.kind for j in session.exec(select(Job).where(Job.vps_id == vps_id)).all()} >= {
            "suspend", "erase", "terminate"}


def test_a_stopped_vps_in_default_cannot_be_started_by_its_client(api: Api, clock: Any, tmp_path: Path) -> None:
    """R8.7-default: declared while the VPS was off (nothing to suspend), the interruption still
    holds: the client cannot start it until the invoice is paid; staff still can."""
    vps_id = running_vps(api, tmp_path, api.alice)
    with Session(api.engine) as session:
        vps = session.get(Vps, vps_id)
        vps.status = VpsStatus.stopped
        session.add(vps)
        session.commit()
    invoice = subscribe(api, vps_id)["invoice"]
    clock.travel_to(paris(2026, 5, 20, 10, 0))
    declared = api.call("POST", f"/v1/invoices/{invoice['id']}/default", api.support)
    assert declared.status_code == 201, declared.text
    refused = api.call("POST", f"/v1/vps/{vps_id}/start", api.alice)
    assert refused.status_code == 422 and refused.json()["rule"] == "R8.7-default"
    with Session(api.engine) as session:
        assert not [j for j in session.exec(select(Job).where(Job.vps_id == vps_id)).all() if j.kind == "start"]
    assert api.call("POST", f"/v1/vps/{vps_id}/start", api.support).status_code == 202
    api.call("POST", f"/v1/invoices/{invoice['id']}/payments", api.support, json={"method": "transfer"})
    assert api.call("POST", f"/v1/vps/{vps_id}/start", api.alice).status_code == 202
