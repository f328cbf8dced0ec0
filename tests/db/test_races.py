"""Requests that race: the same request sent several times at once, over a real HTTP server
(uvicorn on loopback) and a real database, SQLite and PostgreSQL.  Each test fires its requests
from as many threads, released together by a barrier, and then counts what the database holds:
one payment recorded and its hook run once, one resize job for an order form accepted eight
times, unbroken invoice and order-form numbers, one VPS for one Idempotency-Key.

Without the row locks (orchestrator/core/db.locked) and the numbering counters
(orchestrator/core/numbering.py), PostgreSQL lets each of the concurrent transactions read the
state before the others' writes: several payments of one invoice, several resize jobs, two
invoices with the same number.

That the requests met is seen, not hoped for (tests/contention.py): the test holds the lock they
need while they are sent and lets it go once every one of them is seen waiting for it; on
PostgreSQL the row lock of the record they race for (``pg_stat_activity``: each request's
transaction waiting for a lock), on SQLite the database's write lock (each request's first
transaction asked to begin before the lock was let go, and began after)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
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
from orchestrator.core.models import ChangeOrder, Customer, Host, Image, Invoice, Job, Order, Quota, Subscription, Vps
from orchestrator.core.models import Counter as NumberCounter
from orchestrator.core.numbering import next_number
from tests import contention
from tests.api.test_change_orders import running_vps
from tests.conftest import Api, base_settings
from tests.databases import databases, empty_database
from tests.served import serving

AT_ONCE = 8


class Lock:
    """The lock the racing requests need, held by the test (see the module's docstring)."""

    def __init__(self, engine: Any, url: str, name: str) -> None:
        self.engine, self.url, self.name = engine, url, name
        self.postgres = url.startswith("postgresql")
        self.waited: int = 0

    @contextmanager
    def held(self, statement: str, **params: Any) -> Iterator[Callable[[int], float]]:
        """Hold the lock (on PostgreSQL, the row lock ``statement`` takes); yields ``go(count)``:
        once ``count`` requests are seen waiting for it, let it go (the instant, just before)."""
        if self.postgres:
            with contention.pg_row_lock(self.url, statement, **params) as release:
                def go(count: int) -> float:
                    self.waited = contention.pg_waiting_count(self.url, self.name, count)
                    return release()
                yield go
            return
        # Each request's first transaction (its token read, in a thread of the server's pool).
        watch = contention.BeginWatch(self.engine, key=lambda: str(threading.get_ident()))
        waiting: dict[str, float] = {}
        try:
            with contention.sqlite_write_lock(self.url) as release:
                def go(count: int) -> float:
                    deadline = time.monotonic() + 60
                    while len(watch.asked) < count:
                        assert time.monotonic() < deadline, f"{len(watch.asked)} of {count} requests seen waiting"
                        time.sleep(0.02)
                    waiting.update(watch.asked)
                    released = release()
                    self.waited = len(waiting)
                    return released
                yield go
            # the requests have been answered: each that asked before the lock was let go began after
            assert waiting and all(watch.began[k] > release() for k in waiting), (waiting, watch.began)
        finally:
            watch.close()


@contextmanager
def world(kind: str, tmp_path: Path) -> Iterator[tuple[Api, int, Lock]]:
    """The API on a new database of ``kind`` with one roomy host and an image, no worker; the
    same application served on a loopback port; the lock its requests race for."""
    with empty_database(kind, tmp_path) as database:
        [name] = contention.names(1)
        settings = base_settings(tmp_path, database_url=contention.named(database.db.url, name))
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
                yield Api(TestClient(app), engine, settings), port, Lock(engine, database.database, name)
        finally:
            engine.dispose()


Call = tuple[str, str, str, Any, dict[str, str]]


def at_once(port: int, calls: list[Call], meet: Callable[[list[Future[httpx.Response]]], None]) -> list[httpx.Response]:
    """Send every (method, path, token, json body, headers) from its own thread, all released at
    the same moment; ``meet(answers to come)`` runs meanwhile (it lets the held lock go once the
    requests are seen waiting for it)."""
    barrier = threading.Barrier(len(calls))

    def send(call: Call) -> httpx.Response:
        method, path, token, body, headers = call
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            barrier.wait(timeout=30)
            return client.request(method, path, json=body,
                                  headers={"Authorization": f"Bearer {token}", **headers})

    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(send, call) for call in calls]
        meet(futures)
        answers = [future.result() for future in futures]
    for answer in answers:
        assert answer.status_code < 500, answer.text
    return answers


def counter(api: Api, prefix: str, numbered: Any) -> str:
    """The numbering counter of ``prefix``, made as its first use would (to be held locked)."""
    with Session(api.engine) as session:
        next_number(session, prefix, numbered)
        row = session.get(NumberCounter, prefix)
        assert row is not None
        row.value -= 1  # not given: the next is still the first
        session.add(row)
        session.commit()
    return prefix


def quota_row(api: Api, customer: str) -> int:
    """The customer's quota row, made empty as an order's count would (to be held locked)."""
    with Session(api.engine) as session:
        customer_id = session.exec(select(Customer.id).where(Customer.name == customer)).one()
        assert customer_id is not None
        if session.get(Quota, customer_id) is None:
            session.add(Quota(customer_id=customer_id, updated_by=""))
            session.commit()
    return customer_id


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
    with world(kind, tmp_path) as (api, port, lock):
        vps_id = running_vps(api, api.alice, pubkey)
        path = f"/v1/vps/{vps_id}/compromise"
        reported = api.call("POST", path, api.support, json={"details": "phishing kit", "cut_off": False})
        assert reported.status_code == 201, reported.text
        ordered = api.call("POST", f"{path}/orders", api.support,
                           json={"kind": "backup", "price_ht": "49.00", "request_note": "client's email"})
        assert ordered.status_code == 201, ordered.text
        invoice_id = ordered.json()["backup_invoice_id"]

        with lock.held("SELECT id FROM invoice WHERE id = :id FOR UPDATE", id=invoice_id) as go:
            answers = at_once(port, [("POST", f"/v1/invoices/{invoice_id}/payments", api.support,
                                      {"method": "transfer"}, {})] * AT_ONCE, lambda _answers: go(AT_ONCE))
        assert lock.waited >= AT_ONCE  # every payment waited for the invoice (or the database) at once

        assert statuses(answers) == [200] + [409] * (AT_ONCE - 1)
        assert len(rows(api, Job, Job.vps_id == vps_id, Job.kind == "backup")) == 1
        [invoice] = rows(api, Invoice, Invoice.id == invoice_id)
        assert invoice.status == "paid" and invoice.payment_method == "transfer"


@pytest.mark.parametrize("kind", databases())
def test_one_order_form_accepted_eight_times_at_once_runs_one_resize(kind: str, tmp_path: Path,
                                                                     pubkey: str) -> None:
    """R5.1-change-order: the order form accepted eight times at once gives one resize job and one
    fee invoice (R8.3-ht); the seven others are told it is accepted already (409)."""
    with world(kind, tmp_path) as (api, port, lock):
        vps_id = running_vps(api, api.alice, pubkey)
        order = api.call("POST", f"/v1/vps/{vps_id}/change-orders", api.alice, json={"memory_mib": 448}).json()
        approved = api.call("POST", f"/v1/change-orders/{order['id']}/approve", api.support,
                            json={"rent_ht": "42.50", "fee_ht": "15.00"})
        assert approved.status_code == 200, approved.text

        with lock.held("SELECT id FROM changeorder WHERE id = :id FOR UPDATE", id=order["id"]) as go:
            answers = at_once(port, [("POST", f"/v1/change-orders/{order['id']}/accept", api.alice, None, {})]
                              * AT_ONCE, lambda _answers: go(AT_ONCE))
        assert lock.waited >= AT_ONCE

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
    with world(kind, tmp_path) as (api, port, lock):
        orders = []
        for n in range(AT_ONCE):
            vps_id = running_vps(api, api.alice, pubkey, name=f"web{n}")
            asked = api.call("POST", f"/v1/vps/{vps_id}/change-orders", api.alice, json={"memory_mib": 448})
            assert asked.status_code == 201, asked.text
            orders.append(asked.json()["id"])

        counted = "SELECT prefix FROM counter WHERE prefix = :prefix FOR UPDATE"
        with lock.held(counted, prefix=counter(api, f"BC{year}-", ChangeOrder.number)) as go:
            approvals = at_once(port, [("POST", f"/v1/change-orders/{order}/approve", api.support,
                                        {"rent_ht": "42.50", "fee_ht": "15.00"}, {}) for order in orders],
                                lambda _answers: go(AT_ONCE))
        assert lock.waited >= AT_ONCE  # eight approvals waiting for the order forms' counter at once
        assert statuses(approvals) == [200] * AT_ONCE
        forms = sorted(str(order.number) for order in rows(api, ChangeOrder))
        assert forms == [f"BC{year}-{n:06d}" for n in range(1, AT_ONCE + 1)]

        with lock.held(counted, prefix=counter(api, f"F{year}-", Invoice.number)) as go:
            acceptances = at_once(port, [("POST", f"/v1/change-orders/{order}/accept", api.alice, None, {})
                                         for order in orders], lambda _answers: go(AT_ONCE))
        assert lock.waited >= AT_ONCE  # eight acceptances waiting for the invoices' counter at once
        assert statuses(acceptances) == [202] * AT_ONCE
        invoices = sorted(invoice.number for invoice in rows(api, Invoice))
        assert invoices == [f"F{year}-{n:06d}" for n in range(1, AT_ONCE + 1)]


@pytest.mark.parametrize("kind", databases())
def test_one_idempotency_key_sent_eight_times_at_once_makes_one_vps(kind: str, tmp_path: Path,
                                                                    pubkey: str) -> None:
    """A client retrying an order with its Idempotency-Key, eight times at once: one VPS, one
    subscription, one invoice; each answer is the order accepted (202, the first or its replay) or
    'still being answered' (409)."""
    with world(kind, tmp_path) as (api, port, lock):
        body = {"plan": api.plan(), "term_months": 1, "name": "web", "image": "tiny", "ssh_keys": [pubkey]}
        calls: list[Call] = [("POST", "/v1/orders", api.alice, body, {"Idempotency-Key": "create-web"})] * AT_ONCE
        if lock.postgres:
            # The first request to claim the key is held in its order, at alice's quota row: the
            # seven others, sent with it, answer while it is still being answered.
            with lock.held("SELECT customer_id FROM quota WHERE customer_id = :id FOR UPDATE",
                           id=quota_row(api, "alice")) as go:
                def meet(answers: list[Future[httpx.Response]]) -> None:
                    go(1)
                    done, _pending = wait(answers, timeout=60, return_when=FIRST_COMPLETED)
                    while len(done) < AT_ONCE - 1:
                        more, _pending = wait([a for a in answers if a not in done], timeout=60,
                                              return_when=FIRST_COMPLETED)
                        assert more, "the seven others did not answer while the first was held"
                        done |= more
                    assert sorted(a.result().status_code for a in done) == [409] * (AT_ONCE - 1)
                    assert all("still being answered" in a.result().text for a in done)
                answers = at_once(port, calls, meet)
            assert sorted(a.status_code for a in answers) == [202] + [409] * (AT_ONCE - 1)
        else:
            with lock.held("") as go:
                answers = at_once(port, calls, lambda _answers: go(AT_ONCE))
            assert lock.waited >= AT_ONCE

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
    with world(kind, tmp_path) as (api, port, lock):
        with Session(api.engine) as session:
            alice = session.exec(select(Customer).where(Customer.name == "alice")).one().id
        assert api.call("PUT", f"/v1/customers/{alice}/quota", api.support, json={"vps": 1}).status_code == 200
        body = {"plan": api.plan(), "term_months": 1, "image": "tiny", "ssh_keys": [pubkey]}

        with lock.held("SELECT customer_id FROM quota WHERE customer_id = :id FOR UPDATE", id=alice) as go:
            answers = at_once(port, [("POST", "/v1/orders", api.alice, {**body, "name": f"web{n}"}, {})
                                     for n in range(AT_ONCE)], lambda _answers: go(AT_ONCE))
        assert lock.waited >= AT_ONCE  # eight orders counting alice's usage, waiting for her quota at once

        assert statuses(answers) == [202] + [403] * (AT_ONCE - 1)
        assert {answer.json().get("quota") for answer in answers if answer.status_code == 403} == {"vps"}
        assert len(rows(api, Vps)) == 1
        assert (len(rows(api, Subscription)), len(rows(api, Invoice)), len(rows(api, Order))) == (1, 1, 1)
