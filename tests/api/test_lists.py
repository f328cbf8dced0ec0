"""Every list reads a page at a time (api/pages.py): ``{"items": [...], "next": CURSOR or null}``,
``?limit=`` (1 to 500), ``?cursor=``, ``?order=asc|desc``.  For each list: walking ``next`` gives
every row exactly once, in order, while rows are added meanwhile; a cursor that is not one of ours,
or given with the other order, is a 422 problem; the limit is bounded; a customer never sees
another customer's rows (R7-confidential: their lists leave them out, their ids are 404, and
naming another customer is refused).

The rows are written straight into the database (more than a page each, some sharing a time, so
the id breaks the tie), for alice and for bob."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import Session, select

from orchestrator.core.models import (
    ApiToken,
    Audit,
    Backup,
    BreachNotice,
    ChangeOrder,
    Customer,
    DdaRequest,
    Evidence,
    Host,
    Image,
    Incident,
    Invoice,
    Job,
    JobEvent,
    Maintenance,
    Role,
    Subscription,
    SyntecIndex,
    Vps,
)
from tests.conftest import Api

BASE = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LIMIT = 3


@dataclass
class World:
    """Alice's and Bob's customer ids, a VPS and a subscription of each."""

    customers: dict[str, int]
    vps: dict[str, str]
    subscriptions: dict[str, str]
    count: list[int] = field(default_factory=lambda: [0])

    def serial(self) -> int:
        self.count[0] += 1
        return self.count[0]


Maker = Callable[[Session, World, str, datetime], tuple[tuple[Any, ...], Any]]
"""Writes a row of ``who`` at ``at`` (a later ``at`` sorts first in the default order); answers
its sort key in that order and its identity as the list shows it."""


def uid() -> str:
    return str(uuid.uuid4())


def make_invoice(s: Session, w: World, who: str, at: datetime) -> tuple[tuple[Any, ...], Any]:
    row = Invoice(id=uid(), number=f"F-{w.serial()}", customer_id=w.customers[who], purpose="rent", lines=[],
                  total_ht=Decimal("10.00"), total_vat=Decimal("2.00"), total_ttc=Decimal("12.00"), issued_at=at,
                  vps_id=w.vps[who])
    s.add(row)
    return (at, row.id), row.id


def make_subscription(s: Session, w: World, who: str, at: datetime) -> tuple[tuple[Any, ...], Any]:
    row = Subscription(id=uid(), customer_id=w.customers[who], term_months=1, rent_ht=Decimal("10.00"),
                       setup_fee_ht=Decimal("0.00"), created_at=at, started_on=date(2026, 6, 1))
    s.add(row)
    return (at, row.id), row.id


def make_incident(s: Session, w: World, who: str, at: datetime) -> tuple[tuple[Any, ...], Any]:
    row = Incident(id=uid(), vps_id=w.vps[who], customer_id=w.customers[who], malfunction="network",
                   description="", opened_by="support:test", opened_at=at, resolved_at=at, resolution="done")
    s.add(row)
    return (at, row.id), row.id


def make_dda(s: Session, w: World, who: str, at: datetime) -> tuple[tuple[Any, ...], Any]:
    row = DdaRequest(id=uid(), customer_id=w.customers[who], purpose="audit", requested_by=f"customer:{who}",
                     requested_at=at)
    s.add(row)
    return (at, row.id), row.id


def make_backup(s: Session, w: World, who: str, at: datetime) -> tuple[tuple[Any, ...], Any]:
    row = Backup(id=uid(), vps_id=w.vps[who], kind="manual", pool="vpsctl", volume=f"b{w.serial()}",
                 created_at=at)
    s.add(row)
    return (at, row.id), row.id


def make_event(s: Session, w: World, who: str, at: datetime) -> tuple[tuple[Any, ...], Any]:
    """Job steps and audited console openings, one stream sorted on (time, source, id)."""
    n = w.serial()
    if n % 2:
        job = Job(id=uid(), vps_id=w.vps[who], kind="reboot", params={}, steps_done=[], created_at=at)
        s.add(job)
        s.flush()
        event = JobEvent(job_id=job.id, vps_id=w.vps[who], step="reboot", status="done", message=f"m{n}", at=at)
        s.add(event)
        s.flush()
        return (at, 0, event.id), f"m{n}"
    audit = Audit(vps_id=w.vps[who], actor="support:test", action="console", detail=f"m{n}", at=at,
                  customer_id=w.customers[who])
    s.add(audit)
    s.flush()
    return (at, 1, audit.id), f"m{n}"


def make_change_order(s: Session, w: World, who: str, at: datetime) -> tuple[tuple[Any, ...], Any]:
    row = ChangeOrder(id=uid(), number=f"BC-{w.serial()}", vps_id=w.vps[who], customer_id=w.customers[who],
                      current={"vcpus": 1}, requested={"vcpus": 2}, requested_by=f"customer:{who}",
                      requested_at=at, status="cancelled")
    s.add(row)
    return (at, row.id), row.id


def make_breach(s: Session, w: World, who: str, at: datetime) -> tuple[tuple[Any, ...], Any]:
    row = BreachNotice(id=uid(), subscription_id=w.subscriptions[who], customer_id=w.customers[who], breach="x",
                       letter_sent_on=date(2026, 6, 1), cure_by=date(2026, 7, 1), terminates_at=BASE,
                       recorded_by="support:test", recorded_at=at, status="remedied")
    s.add(row)
    return (at, row.id), row.id


def make_evidence(s: Session, w: World, who: str, at: datetime) -> tuple[tuple[Any, ...], Any]:
    row = Evidence(id=uid(), vps_id=w.vps[who], job_id=uid(), requested_by="support:test", reason="report",
                   url="http://127.0.0.1/", headers=[], fetched_at=at)
    s.add(row)
    return (at, row.id), row.id


def maker_maintenance(kind: str) -> Maker:
    def make(s: Session, w: World, who: str, at: datetime) -> tuple[tuple[Any, ...], Any]:
        row = Maintenance(id=uid(), kind=kind, starts_at=at, duration_minutes=30, reason="kernel",
                          created_by="support:test", notice_ids=[])
        s.add(row)
        return (at, row.id), row.id
    return make


def make_customer(s: Session, w: World, who: str, at: datetime) -> tuple[tuple[Any, ...], Any]:
    row = Customer(name=f"c{w.serial()}", email="c@example.test", language="fr", created_at=at)
    s.add(row)
    s.flush()
    return (row.id,), row.id


def make_token(s: Session, w: World, who: str, at: datetime) -> tuple[tuple[Any, ...], Any]:
    row = ApiToken(token_hash=uuid.uuid4().hex * 2, role=Role.customer, customer_id=w.customers[who],
                   label=f"t{w.serial()}", created_at=at, expires_at=at + timedelta(days=3650), scopes=[])
    s.add(row)
    s.flush()
    return (row.id,), row.id


def make_host(s: Session, w: World, who: str, at: datetime) -> tuple[tuple[Any, ...], Any]:
    row = Host(name=f"h-{w.serial()}", uri="test:///default", site="Paris", vcpus=4, memory_mib=4096, disk_gib=10)
    s.add(row)
    s.flush()
    return (row.id,), row.id


def make_image(s: Session, w: World, who: str, at: datetime) -> tuple[tuple[Any, ...], Any]:
    """Listed by name, A to Z: a later ``at`` gives a name sorting first."""
    name = f"img-{10**9 - int((at - BASE).total_seconds()):010d}-{w.serial():03d}"
    s.add(Image(name=name, os="Tiny", sha256="0" * 64, path="/nonexistent"))
    return (tuple(-ord(c) for c in name),), name


def make_syntec(s: Session, w: World, who: str, at: datetime) -> tuple[tuple[Any, ...], Any]:
    month = date(2000 + w.serial(), 1, 1)  # later rows, later months
    s.add(SyntecIndex(month=month, value=Decimal("300.0"), recorded_by="support:test"))
    return (month,), month.isoformat()


@dataclass
class Listed:
    path: str  # {vps} and {sub}: alice's
    make: Maker
    owned: bool = True  # rows belong to a customer, who lists their own
    staff_only: bool = False  # a customer is refused (403)
    one: str | None = None  # the path of one row: another customer's is a 404
    customer_filter: str | None = "customer_id"  # the staff filter naming a customer (None: none)
    ident: Callable[[dict[str, Any]], Any] = lambda item: item["id"]


LISTS = {
    "invoices": Listed("/v1/invoices", make_invoice, one="/v1/invoices/{id}"),
    "subscriptions": Listed("/v1/subscriptions", make_subscription, one="/v1/subscriptions/{id}"),
    "incidents": Listed("/v1/incidents", make_incident, one="/v1/incidents/{id}"),
    "dda-requests": Listed("/v1/dda-requests", make_dda, one="/v1/dda-requests/{id}"),
    "backups": Listed("/v1/backups", make_backup),
    "vps-backups": Listed("/v1/vps/{vps}/backups", make_backup, customer_filter=None),
    "vps-events": Listed("/v1/vps/{vps}/events", make_event, customer_filter=None,
                         ident=lambda item: item["message"]),
    "change-orders": Listed("/v1/vps/{vps}/change-orders", make_change_order, customer_filter=None,
                            one="/v1/change-orders/{id}"),
    "breach-notices": Listed("/v1/subscriptions/{sub}/breach-notices", make_breach, staff_only=True,
                             customer_filter=None),
    "evidence": Listed("/v1/vps/{vps}/evidence", make_evidence, staff_only=True, customer_filter=None,
                       one="/v1/evidence/{id}"),
    "maintenance": Listed("/v1/maintenance", maker_maintenance("maintenance"), owned=False, staff_only=True,
                          customer_filter=None),
    "interruptions": Listed("/v1/interruptions", maker_maintenance("interruption"), owned=False, staff_only=True,
                            customer_filter=None, one="/v1/interruptions/{id}"),
    "customers": Listed("/v1/customers", make_customer, owned=False, staff_only=True, customer_filter=None),
    "tokens": Listed("/v1/tokens", make_token, customer_filter=None, one="/v1/tokens/{id}"),
    "hosts": Listed("/v1/hosts", make_host, owned=False, staff_only=True, customer_filter=None),
    "images": Listed("/v1/images", make_image, owned=False, customer_filter=None, ident=lambda item: item["name"]),
    "syntec": Listed("/v1/billing/syntec", make_syntec, owned=False, staff_only=True, customer_filter=None,
                     ident=lambda item: item["month"]),
    "vps": Listed("/v1/vps", lambda s, w, who, at: make_vps(s, w, who, at), one="/v1/vps/{id}"),
    "jobs": Listed("/v1/jobs", lambda s, w, who, at: make_job(s, w, who, at), one="/v1/jobs/{id}"),
}


def make_vps(s: Session, w: World, who: str, at: datetime) -> tuple[tuple[Any, ...], Any]:
    row = Vps(id=uid(), name=f"v{w.serial()}", customer_id=w.customers[who], image="tiny", vcpus=1, memory_mib=128,
              disk_gib=1, created_at=at)
    s.add(row)
    return (at, row.id), row.id


def make_job(s: Session, w: World, who: str, at: datetime) -> tuple[tuple[Any, ...], Any]:
    row = Job(id=uid(), vps_id=w.vps[who], kind="reboot", params={}, steps_done=[], created_at=at)
    s.add(row)
    return (at, row.id), row.id


def world_of(api: Api) -> World:
    with Session(api.engine) as s:
        customers = {c.name: c.id for c in s.exec(select(Customer)).all() if c.id is not None}
        w = World(customers={k: customers[k] for k in ("alice", "bob")}, vps={}, subscriptions={})
        for who in ("alice", "bob"):
            vps = Vps(id=uid(), name=f"{who}-vps", customer_id=w.customers[who], image="tiny", vcpus=1,
                      memory_mib=128, disk_gib=1, created_at=BASE - timedelta(days=365))
            sub = Subscription(id=uid(), customer_id=w.customers[who], term_months=1, rent_ht=Decimal("1.00"),
                               setup_fee_ht=Decimal("0.00"), created_at=BASE - timedelta(days=365), vps_id=vps.id,
                               started_on=date(2026, 6, 1))
            s.add(vps)
            s.flush()
            s.add(sub)
            w.vps[who], w.subscriptions[who] = vps.id, sub.id
        s.commit()
    return w


def walk(api: Api, path: str, token: str, order: str | None = None,
         between: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    """Every item of a list, ``LIMIT`` at a time (``between`` runs after the first page)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = (f"{path}{'&' if '?' in path else '?'}limit={LIMIT}" + (f"&order={order}" if order else "")
                 + (f"&cursor={cursor}" if cursor else ""))
        page = api.call("GET", query, token)
        assert page.status_code == 200, (query, page.text)
        body = page.json()
        assert set(body) == {"items", "next"} and len(body["items"]) <= LIMIT, body
        items += body["items"]
        cursor = body["next"]
        if between is not None:
            between()
            between = None
        if cursor is None:
            return items


def problem(answer: Any, status: int) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json", answer.headers


@pytest.mark.parametrize("name", list(LISTS))
def test_every_list_walks_each_row_once_in_order_and_keeps_customers_apart(offline_api: Api, name: str) -> None:
    check_list(offline_api, name)


def check_list(api: Api, name: str) -> None:
    """The list ``name`` of ``LISTS``, on the API ``api`` (alice, bob, staff, a host and an image)."""
    listed = LISTS[name]
    w = world_of(api)
    rows: dict[str, list[tuple[tuple[Any, ...], Any]]] = {"alice": [], "bob": []}
    with Session(api.engine) as s:
        # 8 rows of alice's, some sharing their time (the id decides, and pages of 3 end amid them),
        # and 4 of bob's, interleaved
        times = [BASE + timedelta(minutes=m) for m in (1, 2, 2, 5, 5, 5, 8, 8)]
        for n, at in enumerate(times):
            rows["alice"].append(listed.make(s, w, "alice", at))
            if n % 2:
                rows["bob"].append(listed.make(s, w, "bob", at + timedelta(seconds=30)))
        s.commit()
    path = listed.path.format(vps=w.vps["alice"], sub=w.subscriptions["alice"])
    reader = api.support if listed.staff_only else api.alice
    # alice reads her own rows (staff: those under her VPS or subscription); a list of no one's, all
    mine = rows["alice"] if listed.owned else rows["alice"] + rows["bob"]
    # the world's own records (the tiny image, the host h1, the customers and their tokens, the
    # VPS and subscriptions made above) are left out of the comparison: they sort after ours
    before = {listed.ident(item) for item in walk(api, path, reader)} - {ident for _, ident in mine}

    def expected(these: list[tuple[tuple[Any, ...], Any]]) -> list[Any]:
        return [ident for _, ident in sorted(these, key=lambda row: row[0], reverse=True)]

    def added_meanwhile() -> None:  # newer rows: at the head of the list, behind the reader
        with Session(api.engine) as s:
            for _ in range(2):
                listed.make(s, w, "alice", BASE + timedelta(days=1))
            s.commit()

    seen = [listed.ident(item) for item in walk(api, path, reader, between=added_meanwhile)]
    assert [i for i in seen if i not in before] == expected(mine), name
    assert len(seen) == len(set(seen)), f"{name}: a row came twice"

    # Oldest first: the same rows (the two added meanwhile included), reversed
    seen_now = [listed.ident(item) for item in walk(api, path, reader)]
    reverse = "asc" if name != "images" else "desc"
    assert [listed.ident(item) for item in walk(api, path, reader, order=reverse)] == seen_now[::-1], name

    # A cursor not of ours, one read in the other order, a limit out of bounds: 422 problems
    first = api.call("GET", f"{path}?limit=1", reader).json()
    assert first["next"] is not None
    for bad in ("?cursor=not-a-cursor", "?cursor=eyJpZCI6IngifQ", f"?cursor={first['next']}&order={reverse}",
                "?limit=0", "?limit=501", "?order=sideways", "?cursor=" + "A" * 501):
        problem(api.call("GET", f"{path}{bad}", reader), 422)
    assert api.call("GET", f"{path}?limit=500", reader).status_code == 200

    if listed.staff_only:  # a customer is refused (403), or does not see another's VPS (404)
        problem(api.call("GET", path, api.alice), 403)
        assert api.call("GET", path, api.bob).status_code in (403, 404)
        problem(api.call("GET", path, api.bob), api.call("GET", path, api.bob).status_code)
    if not listed.owned:
        return

    # R7-confidential: bob never sees alice's rows, nor her VPS's lists; her ids are 404 to him
    bob_path = listed.path.format(vps=w.vps["bob"], sub=w.subscriptions["bob"])
    if not listed.staff_only:
        if path != listed.path:
            problem(api.call("GET", path, api.bob), 404)
        bobs = {listed.ident(item) for item in walk(api, bob_path, api.bob)}
        assert not bobs & {ident for _, ident in rows["alice"]}, name
        assert {ident for _, ident in rows["bob"]} <= bobs, name
    if listed.one is not None:
        for _, ident in rows["alice"][:2]:
            if not listed.staff_only:
                assert api.call("GET", listed.one.format(id=ident), api.alice).status_code == 200
            problem(api.call("GET", listed.one.format(id=ident), api.bob), 404)
    if listed.customer_filter is not None:
        # a customer's filters never widen their view; staff's narrow it to one customer
        problem(api.call("GET", f"{path}?customer_id={w.customers['alice']}", api.bob), 403)
        problem(api.call("GET", f"{path}?customer_id={w.customers['bob']}", api.bob), 403)
        bobs = {listed.ident(item) for item in walk(api, f"{path}?customer_id={w.customers['bob']}", api.support)}
        assert {ident for _, ident in rows["bob"]} <= bobs and not bobs & {ident for _, ident in rows["alice"]}
