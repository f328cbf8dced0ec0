"""Requests that race: the same request sent several times at once, over a real HTTP server
(uvicorn on loopback) and a real database, SQLite and PostgreSQL.  Each test fires its requests
from as many threads, released together by a barrier, and then counts what the database holds:
one payment recorded and its hook run once, one resize job for an order form accepted eight
times, unbroken invoice and order-form numbers, one VPS for one Idempotency-Key.

Without the row locks (orchestrator/core/db.locked) and the numbering counters
(orchestrator/core/numbering.py), PostgreSQL lets each of the concurrent transactions read the
state before the others' writes: several payments of one invoice, several resize jobs, two
invoices with the same number."""

from __future__ import annotations

import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from api.app import create_app
from orchestrator.core.models import ChangeOrder, Customer, Host, Image, Invoice, Job, Order, Subscription, Vps
from tests.api.test_change_orders import running_vps
from tests.conftest import Api, base_settings
from tests.databases import databases, empty_database
from tests.served import serving

AT_ONCE = 8


@contextmanager
def world(kind: str, tmp_path: Path) -> Iterator[tuple[Api, int]]:
    """The API on a new database of ``kind`` with one roomy host and an image, no worker; and the
    same application served on a loopback port."""
    with empty_database(kind, tmp_path) as database:
        settings = base_settings(tmp_path, database_url=database.db.url)
        app = create_app(settings, run_worker=False)
        engine = app.state.engine
        with Session(engine) as session:
            session.add(Host(name="h1", uri="test:///default", site="Marseille", vcpus=64, memory_mib=65536,
                             disk_gib=1000))
            session.add(Image(name="tiny", os="Tiny Linux", sha256="0" * 64, path="/nonexistent",
                              min_disk_gib=1, min_memory_mib=128))
            session.commit()
        try:
            with serving(app) as port:
                yield Api(TestClient(app), engine, settings), port
        finally:
            engine.dispose()


def at_once(port: int, calls: list[tuple[str, str, str, Any, dict[str, str]]]) -> list[httpx.Response]:
    """Send every (method, path, token, json body, headers) from its own thread, all released at
    the same moment."""
    barrier = threading.Barrier(len(calls))

    def send(call: tuple[str, str, str, Any, dict[str, str]]) -> httpx.Response:
        method, path, token, body, headers = call
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            barrier.wait(timeout=30)
            return client.request(method, path, json=body,
                                  headers={"Authorization": f"Bearer {token}", **headers})

    with ThreadPoolExecutor(len(calls)) as pool:
        answers = list(pool.map(send, calls))
    for answer in answers:
        assert answer.status_code < 500, answer.text
    return answers


def statuses(answers: list[httpx.Response]) -> list[int]:
    return sorted(answer.status_code for answer in answers)


def rows(api: Api, model: Any, *where: Any) -> list[Any]:
    with Session(api.engine) as session:
        return list(session.exec(select(model).where(*where)).all())


@pytest.fixture
def pubkey(tmp_path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    return (tmp_path / "k.pub").read_text().strip()


@pytest.mark.parametrize("kind", databases())
def test_one_invoice_paid_eight_times_at_once_is_paid_once(kind: str, tmp_path: Path, pubkey: str) -> None:
    """R6.2-backup: the backup of a hacked system starts when its invoice is paid.  Eight payments
    recorded at once: one is taken (200), seven find the invoice paid (409), one backup job."""
    with world(kind, tmp_path) as (api, port):
        vps_id = running_vps(api, api.alice, pubkey)
        path = f"/v1/vps/{vps_id}/compromise"
        reported = api.call("POST", path, api.support, json={"details": "phishing kit", "cut_off": False})
        assert reported.status_code == 201, reported.text
        ordered = api.call("POST", f"{path}/orders", api.support,
                           json={"kind": "backup", "price_ht": "49.00", "request_note": "client's email"})
        assert ordered.status_code == 201, ordered.text
        invoice_id = ordered.json()["backup_invoice_id"]

        answers = at_once(port, [("POST", f"/v1/invoices/{invoice_id}/payments", api.support,
                                  {"method": "transfer"}, {})] * AT_ONCE)

        assert statuses(answers) == [200] + [409] * (AT_ONCE - 1)
        assert len(rows(api, Job, Job.vps_id == vps_id, Job.kind == "backup")) == 1
        [invoice] = rows(api, Invoice, Invoice.id == invoice_id)
        assert invoice.status == "paid" and invoice.payment_method == "transfer"


@pytest.mark.parametrize("kind", databases())
def test_one_order_form_accepted_eight_times_at_once_runs_one_resize(kind: str, tmp_path: Path,
                                                                     pubkey: str) -> None:
    """R5.1-change-order: the order form accepted eight times at once gives one resize job and one
    fee invoice (R8.3-ht); the seven others are told it is accepted already (409)."""
    with world(kind, tmp_path) as (api, port):
        vps_id = running_vps(api, api.alice, pubkey)
        order = api.call("POST", f"/v1/vps/{vps_id}/change-orders", api.alice, json={"memory_mib": 448}).json()
        approved = api.call("POST", f"/v1/change-orders/{order['id']}/approve", api.support,
                            json={"rent_ht": "42.50", "fee_ht": "15.00"})
        assert approved.status_code == 200, approved.text

        answers = at_once(port, [("POST", f"/v1/change-orders/{order['id']}/accept", api.alice, None, {})] * AT_ONCE)

        assert statuses(answers) == [202] + [409] * (AT_ONCE - 1)
        [job] = rows(api, Job, Job.vps_id == vps_id, Job.kind == "resize")
        [invoice] = rows(api, Invoice, Invoice.purpose == "change_order")
        assert invoice.purpose_ref == order["id"] and invoice.total_ht == Decimal("15.00")
        [accepted] = [answer.json() for answer in answers if answer.status_code == 202]
        assert accepted["job"]["id"] == job.id


@pytest.mark.parametrize("kind", databases())
def test_numbers_given_at_once_have_neither_gap_nor_repeat(kind: str, tmp_path: Path, pubkey: str) -> None:
    """Order forms (BC) numbered by eight approvals at once, invoices (F) by eight acceptances at
    once: each sequence is 1 to 8 of the year, every number once."""
    year = datetime.now(ZoneInfo("Europe/Paris")).year
    with world(kind, tmp_path) as (api, port):
        orders = []
        for n in range(AT_ONCE):
            vps_id = running_vps(api, api.alice, pubkey, name=f"web{n}")
            asked = api.call("POST", f"/v1/vps/{vps_id}/change-orders", api.alice, json={"memory_mib": 448})
            assert asked.status_code == 201, asked.text
            orders.append(asked.json()["id"])

        approvals = at_once(port, [("POST", f"/v1/change-orders/{order}/approve", api.support,
                                    {"rent_ht": "42.50", "fee_ht": "15.00"}, {}) for order in orders])
        assert statuses(approvals) == [200] * AT_ONCE
        forms = sorted(str(order.number) for order in rows(api, ChangeOrder))
        assert forms == [f"BC{year}-{n:06d}" for n in range(1, AT_ONCE + 1)]

        acceptances = at_once(port, [("POST", f"/v1/change-orders/{order}/accept", api.alice, None, {})
                                     for order in orders])
        assert statuses(acceptances) == [202] * AT_ONCE
        invoices = sorted(invoice.number for invoice in rows(api, Invoice))
        assert invoices == [f"F{year}-{n:06d}" for n in range(1, AT_ONCE + 1)]


@pytest.mark.parametrize("kind", databases())
def test_one_idempotency_key_sent_eight_times_at_once_makes_one_vps(kind: str, tmp_path: Path,
                                                                    pubkey: str) -> None:
    """A client retrying an order with its Idempotency-Key, eight times at once: one VPS, one
    subscription, one invoice; each answer is the order accepted (202, the first or its replay) or
    'still being answered' (409)."""
    with world(kind, tmp_path) as (api, port):
        body = {"plan": api.plan(), "term_months": 1, "name": "web", "image": "tiny", "ssh_keys": [pubkey]}
        answers = at_once(port, [("POST", "/v1/orders", api.alice, body, {"Idempotency-Key": "create-web"})] * AT_ONCE)

        seen = Counter(answer.status_code for answer in answers)
        assert set(seen) <= {202, 409} and seen[202] >= 1, seen
        with Session(api.engine) as session:
            assert session.exec(select(func.count()).select_from(Vps)).one() == 1
            [vps] = session.exec(select(Vps)).all()
        assert {answer.json()["vps"]["id"] for answer in answers if answer.status_code == 202} == {vps.id}
        later = api.call("POST", "/v1/orders", api.alice, json=body, headers={"Idempotency-Key": "create-web"})
        assert later.status_code == 202 and later.headers["idempotent-replayed"] == "true"
        assert later.json()["vps"]["id"] == vps.id
        assert len(rows(api, Job, Job.vps_id == vps.id, Job.kind == "create")) == 1
        assert (len(rows(api, Subscription)), len(rows(api, Invoice)), len(rows(api, Order))) == (1, 1, 1)


@pytest.mark.parametrize("kind", databases())
def test_eight_orders_at_once_at_the_quota_s_edge_make_one_vps(kind: str, tmp_path: Path, pubkey: str) -> None:
    """A quota of one VPS and eight orders at once: one is placed, seven are over the quota (403);
    each counts what the others hold (the customer's quota row is locked while it counts)."""
    with world(kind, tmp_path) as (api, port):
        with Session(api.engine) as session:
            alice = session.exec(select(Customer).where(Customer.name == "alice")).one().id
        assert api.call("PUT", f"/v1/customers/{alice}/quota", api.support, json={"vps": 1}).status_code == 200
        body = {"plan": api.plan(), "term_months": 1, "image": "tiny", "ssh_keys": [pubkey]}

        answers = at_once(port, [("POST", "/v1/orders", api.alice, {**body, "name": f"web{n}"}, {})
                                 for n in range(AT_ONCE)])

        assert statuses(answers) == [202] + [403] * (AT_ONCE - 1)
        assert {answer.json().get("quota") for answer in answers if answer.status_code == 403} == {"vps"}
        assert len(rows(api, Vps)) == 1
        assert (len(rows(api, Subscription)), len(rows(api, Invoice)), len(rows(api, Order))) == (1, 1, 1)
