"""The OpenAPI document holds for every role: schemathesis generates requests from it (valid and
invalid ones) and checks every answer against it with all its checks (status declared, problem
schema, headers, content type, no server error), in process against the fake world
(tests/api/fakeworld.py)."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlmodel import Session, select

from api.app import create_app
from api.routers import hosts as hosts_router
from orchestrator.compute.hosts import Drivers, register_host
from orchestrator.core import clock
from orchestrator.core.auth import SCOPES, create_token
from orchestrator.core.models import Evidence, IdempotentRequest, Job, JobStatus, Order, Webhook
from orchestrator.core.models.accounts import Role
from orchestrator.operations import evidence
from tests.api.fakeworld import World, make_world

EXAMPLES = int(os.environ.get("VPSCTL_SCHEMATHESIS_EXAMPLES", "6"))

# The document bounds its dates with formatMinimum/formatMaximum (api/schemas/types.py: 2000 to
# 2199), keywords schemathesis does not read: its dates and instants are drawn within them.
schemathesis.openapi.format("date", st.dates(date(2000, 1, 1), date(2199, 12, 31)).map(date.isoformat))
schemathesis.openapi.format("date-time", st.datetimes(datetime(2000, 1, 2), datetime(2199, 12, 30),
                                                      timezones=st.just(UTC)).map(datetime.isoformat))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("schemathesis"), "world")


def known_ids(world: World) -> dict[str, str]:
    """Path parameters that name something of the world (alice's VPS, its backup and disk)."""
    return {"vps_id": world.vps_id, "backup_id": world.backup_id, "disk_id": world.disk_id, "host": "h1",
            "customer": "alice"}


# (METHOD, path template, status) answered, and conforming to the document.
Seen = set[tuple[str, str, int]]


def call(case: Any, mode: GenerationMode, headers: dict[str, str], seen: Seen) -> None:
    """The case called and checked with every check of schemathesis, but that schema-valid data
    is always accepted: a valid request may still be refused by a rule of the contract or of the
    world (an unknown image, a VPS in the wrong state: 422, 409), which no schema says.  What must
    never happen is the server's own validation refusing what the schema allows: that 422 lists
    `errors` (api/errors.py), and is a failure here."""
    response = case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])
    if mode is GenerationMode.POSITIVE and response.status_code == 422:
        problem = response.json()
        assert "errors" not in problem, f"schema-valid request refused by validation: {problem}"
    seen.add((case.operation.method.upper(), case.operation.path, response.status_code))


def tokens_of(world: World) -> dict[str, str | None]:
    """The roles every case is called as: no token, a customer, another customer, support, and an
    automation token holding every scope (made once per world)."""
    if not hasattr(world, "automation"):
        with Session(world.api.engine) as session:
            world.automation = create_token(session, Role.automation, label="schemathesis",  # type: ignore[attr-defined]
                                            scopes=sorted(SCOPES))
    return {"anonymous": None, "alice": world.api.alice, "bob": world.api.bob, "support": world.api.support,
            "automation": world.automation}  # type: ignore[attr-defined]


def run(world: World, mode: GenerationMode, seen: Seen) -> tuple[Counter[str], list[str]]:
    """Every operation, ``EXAMPLES`` cases each, called as each role; (cases per role, failures).
    Each conforming answer's (method, path, status) is added to ``seen``."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.api.client.app)
    tokens = tokens_of(world)
    known = known_ids(world)
    calls: Counter[str] = Counter()
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate],  # no shrinking: the failure as found
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            for role, token in tokens.items():
                calls[role] += 1
                call(case, mode, {"Authorization": f"Bearer {token}"} if token else {}, seen)
            if mode is GenerationMode.POSITIVE and any(name in known for name in case.path_parameters or {}):
                case.path_parameters = {name: known.get(name, value) for name, value in case.path_parameters.items()}
                for role in ("alice", "bob", "support"):  # bob: alice's, answered as missing (404)
                    calls[role + " (known ids)"] += 1
                    call(case, mode, {"Authorization": f"Bearer {tokens[role]}"}, seen)

        try:
            check()
        except Unsatisfiable:  # an operation without parameters has no invalid request
            calls["operations without invalid requests"] += 1
        except (Exception, BaseExceptionGroup) as exc:  # every operation is tried; failures reported together
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    return calls, failures


@dataclass
class Fuzzed:
    runs: dict[GenerationMode, tuple[Counter[str], list[str]]]
    seen: Seen
    before: Any  # the world before the fuzzing (World.snapshot)


@pytest.fixture(scope="module")
def fuzzed(world: World) -> Fuzzed:
    """Both modes run once for the module (valid requests first, then invalid ones), whichever
    test asks first: the world as it was before, the answers seen."""
    before = world.snapshot()
    seen: Seen = set()
    runs = {mode: run(world, mode, seen) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)}
    return Fuzzed(runs, seen, before)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_every_answer_conforms_for_every_role(fuzzed: Fuzzed, mode: GenerationMode) -> None:
    calls, failures = fuzzed.runs[mode]
    print(f"schemathesis {mode.value}: {dict(calls)}, {len(failures)} failing operations")
    assert sum(calls.values()) > 400
    assert failures == [], "\n\n".join(failures)


def documented(world: World) -> Seen:
    """Every (METHOD, path, status) the OpenAPI document declares."""
    document = world.api.client.get("/openapi.json").json()
    return {(method.upper(), path, int(status)) for path, operations in document["paths"].items()
            for method, operation in operations.items() for status in operation["responses"]}


def filled(path: str) -> str:
    """``path`` with each parameter naming nothing of the world (an integer, for integer ids)."""
    return re.sub(r"\{[^}]+\}", "987654321", path)


def sweeps(world: World, operations: list[tuple[str, str]]) -> Seen:
    """What the guard answers for any route, asked of each (the expected statuses written here, by
    hand); each answer checked against the document too.

    - 403: an automation token holding only ``metrics:read`` (and, on ``GET /metrics``, a customer);
    - 413: a body of one byte more than ``API_MAX_BODY_BYTES``, on every method that takes one;
    - 409: a POST whose ``Idempotency-Key`` is still being answered (its first request's record
      put back as unanswered, as the guard holds it while the first runs);
    - 422: a POST whose ``Idempotency-Key`` is longer than 200 characters;
    - 429: a token over its rate (an application over the same database, at one request a minute).
    """
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.api.client.app)
    answered: Seen = set()

    def expect(status: int, method: str, path: str, response: Any) -> None:
        assert response.status_code == status, (method, path, response.status_code, response.text)
        assert response.headers["content-type"] == "application/problem+json", (method, path)
        schema[path][method].validate_response(response)
        answered.add((method, path, status))

    with Session(world.api.engine) as session:
        metrics_only = create_token(session, Role.automation, label="metrics only", scopes=["metrics:read"])
    big = b"x" * (world.api.settings.api.max_body_bytes + 1)
    for n, (method, path) in enumerate(operations):
        url = filled(path)
        narrow = world.api.alice if (method, path) == ("GET", "/metrics") else metrics_only
        expect(403, method, path, world.api.call(method, url, narrow))
        if method != "GET":
            expect(413, method, path, world.api.call(method, url, world.api.support, content=big,
                                                     headers={"Content-Type": "application/json"}))
        if method == "POST":
            key = {"Idempotency-Key": f"in-flight-{n}"}
            first = world.api.call(method, url, world.api.support, json={}, headers=key)
            assert first.status_code < 500, first.text
            with Session(world.api.engine) as session:
                row = session.exec(select(IdempotentRequest)
                                   .where(IdempotentRequest.key == key["Idempotency-Key"])).one()
                row.status = None
                session.add(row)
                session.commit()
            expect(409, method, path, world.api.call(method, url, world.api.support, json={}, headers=key))
            expect(422, method, path, world.api.call(method, url, world.api.support, json={},
                                                     headers={"Idempotency-Key": "k" * 201}))
    slow = create_app(world.api.settings.model_copy(update={"api": world.api.settings.api.model_copy(
        update={"rate_per_minute": 1})}), run_worker=False)
    client = TestClient(slow)
    with Session(world.api.engine) as session:
        once_a_minute = create_token(session, Role.support, label="one a minute")
    auth = {"Authorization": f"Bearer {once_a_minute}"}
    assert client.get("/v1/quota", headers=auth).status_code != 429
    for method, path in operations:
        response = client.request(method, filled(path), headers=auth)
        expect(429, method, path, response)
        assert int(response.headers["retry-after"]) >= 1
    return answered


@dataclass(frozen=True)
class Ask:
    """One targeted request: ``path`` is the documented template, its parameters filled from the
    ids the scene holds (``fill`` names which id a parameter takes, by default its own name);
    ``keep`` records ids of the answer (name: dotted key of its body) for the next requests."""

    method: str
    path: str
    role: str
    status: int
    body: dict[str, Any] | None = None
    query: str = ""
    fill: dict[str, str] = field(default_factory=dict)
    keep: dict[str, str] = field(default_factory=dict)
    run: bool = False  # the worker then runs every job that may run


# A change in the world a scene needs that no request makes (a job the worker holds, a hook that
# failures disabled...): a function of the world and the scene's ids.
Step = Callable[[World, dict[str, str]], None]

LATER = "2199-01-04T02:00:00+00:00"  # a Monday, 03:00 in Paris: far enough for any notice


def add_host(world: World, ids: dict[str, str]) -> None:
    """A second host on the in-memory hypervisor (the one a move or a drain goes to)."""
    with Session(world.api.engine) as session:
        register_host(session, world.api.settings, world.worker.drivers, "h2", "fake://h2", "Marseille")


def reinstall_started(world: World, ids: dict[str, str]) -> None:
    """The compromise's reinstall taken by the worker (it runs: its keys can no longer change)."""
    with Session(world.api.engine) as session:
        job = session.get(Job, ids["reinstall_job"])
        assert job is not None
        job.status = JobStatus.running
        session.add(job)
        session.commit()


def hook_disabled(world: World, ids: dict[str, str]) -> None:
    """The webhook disabled after failing deliveries (what POST .../enable undoes)."""
    with Session(world.api.engine) as session:
        hook = session.get(Webhook, ids["webhook_id"])
        assert hook is not None
        hook.enabled, hook.disabled_at = False, clock.utcnow()
        session.add(hook)
        session.commit()


def evidence_kept(world: World, ids: dict[str, str]) -> None:
    """What the evidence job keeps of a fetch (the in-memory VPS serves nothing): its record and
    the raw response."""
    with Session(world.api.engine) as session:
        row = Evidence(vps_id=world.vps_id, job_id=ids["evidence_job"], requested_by="support:support",
                       reason="phishing page reported", url="http://192.0.2.10:8080/", status_code=200)
        session.add(row)
        session.commit()
        ids["evidence_id"] = row.id
    path = evidence.raw_path(world.api.settings, ids["evidence_job"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"HTTP/1.1 200 OK\r\n\r\nphishing kit\n")


def dda_document(world: World, ids: dict[str, str]) -> None:
    document = world.api.settings.state_dir / "dda.pdf"
    document.write_bytes(b"%PDF-1.4 Declaration d'Applicabilite\n")
    world.api.settings.contract.dda_document_path = document


def overdue(world: World, ids: dict[str, str]) -> None:
    """Two months on: the first invoice is long past due (the clock is put back after the scene)."""
    clock.advance(timedelta(days=60))


# Scenes, each from the world as it was before the fuzzing (alice's running VPS, ordered: its
# subscription, order and first invoice; a backup and a data disk): the requests in order, each
# with the status it must answer, written by hand.
SCENES: dict[str, list[Ask | Step]] = {
    "vps operations": [
        Ask("POST", "/v1/vps/{vps_id}/reboot", "alice", 202, {"hard": True}, run=True),
        Ask("POST", "/v1/vps/{vps_id}/stop", "alice", 202, {"force": True}, run=True),
        Ask("POST", "/v1/vps/{vps_id}/start", "alice", 202, run=True),
        Ask("POST", "/v1/vps/{vps_id}/suspend", "alice", 202, {"reason": "customer"}, run=True),
        Ask("POST", "/v1/vps/{vps_id}/resume", "alice", 202, run=True),
        Ask("POST", "/v1/vps/{vps_id}/resize", "support", 202, {"memory_mib": 512, "reason": "asked by phone"},
            run=True),
        Ask("POST", "/v1/vps/{vps_id}/rename", "alice", 202, {"name": "renamed"}, run=True),
        Ask("POST", "/v1/vps/{vps_id}/backup", "alice", 202, {}, run=True),
        Ask("POST", "/v1/vps/{vps_id}/export", "alice", 202, keep={"export_id": "job.id"}, run=True),
        Ask("GET", "/v1/vps/{vps_id}/backups/{backup_id}/download", "alice", 200, fill={"backup_id": "export_id"}),
        Ask("POST", "/v1/vps/{vps_id}/restore", "alice", 202, {"backup_id": "{backup_id}", "confirm_data_loss": True},
            run=True),
        Ask("POST", "/v1/vps/{vps_id}/reinstall", "alice", 202, {"ssh_keys": ["{key}"], "confirm_data_loss": True},
            run=True),
        Ask("POST", "/v1/vps/{vps_id}/disks", "support", 202, {"size_gib": 1, "reason": "more room"}, run=True),
        Ask("DELETE", "/v1/vps/{vps_id}/disks/{disk_id}", "alice", 202, query="confirm_data_loss=true", run=True),
        Ask("POST", "/v1/vps/{vps_id}/mail-block", "support", 202, {}, run=True),
        Ask("POST", "/v1/vps/{vps_id}/mail-unblock", "support", 202, run=True),
        Ask("POST", "/v1/vps/{vps_id}/cutoff", "support", 202, {"reason": "hacked"}, run=True),
        Ask("POST", "/v1/vps/{vps_id}/reconnect", "support", 202, {"corrective_measures": "patched"}, run=True),
        Ask("POST", "/v1/vps/{vps_id}/evidence", "support", 202, {"reason": "phishing page reported"},
            keep={"evidence_job": "job.id"}),
        evidence_kept,
        Ask("GET", "/v1/evidence/{evidence_id}", "support", 200),
        Ask("GET", "/v1/evidence/{evidence_id}/download", "support", 200),
        Ask("DELETE", "/v1/vps/{vps_id}/backups/{backup_id}", "alice", 202, query="confirm_data_loss=true", run=True),
        Ask("DELETE", "/v1/vps/{vps_id}", "alice", 202, query="confirm_data_loss=true", run=True),
    ],
    "move": [
        add_host,
        Ask("POST", "/v1/vps/{vps_id}/migrate", "support", 202, {"to_host": "h2"}),
    ],
    "drain": [
        add_host,
        Ask("POST", "/v1/hosts/{host}/drain", "support", 202, {"starts_at": LATER, "to_host": "h2"}),
    ],
    "change orders": [
        Ask("POST", "/v1/vps/{vps_id}/change-orders", "alice", 201, {"memory_mib": 512}, keep={"change": "id"}),
        Ask("GET", "/v1/change-orders/{order_id}", "alice", 200, fill={"order_id": "change"}),
        Ask("POST", "/v1/change-orders/{order_id}/approve", "support", 200, {"rent_ht": "12.00"},
            fill={"order_id": "change"}),
        Ask("POST", "/v1/change-orders/{order_id}/accept", "alice", 202, fill={"order_id": "change"}, run=True),
        Ask("POST", "/v1/vps/{vps_id}/change-orders", "alice", 201, {"vcpus": 2}, keep={"change": "id"}),
        Ask("POST", "/v1/change-orders/{order_id}/cancel", "alice", 200, fill={"order_id": "change"}),
        Ask("POST", "/v1/vps/{vps_id}/change-orders", "alice", 201, {"vcpus": 2}, keep={"change": "id"}),
        Ask("POST", "/v1/change-orders/{order_id}/refuse", "support", 200, {"reason": "no room on the host"},
            fill={"order_id": "change"}),
    ],
    "billing": [
        Ask("GET", "/v1/orders/{order_id}", "alice", 200),
        Ask("GET", "/v1/invoices/{invoice_id}", "alice", 200),
        Ask("GET", "/v1/invoices/{invoice_id}/late-fees", "alice", 200),
        Ask("POST", "/v1/invoices/{invoice_id}/payment-incidents", "support", 201, {}),
        Ask("POST", "/v1/invoices/{invoice_id}/payments", "support", 200, {"method": "transfer"}),
    ],
    "default": [
        overdue,
        Ask("POST", "/v1/invoices/{invoice_id}/default", "support", 201),
    ],
    "subscription": [
        Ask("GET", "/v1/subscriptions/{subscription_id}", "alice", 200),
        Ask("POST", "/v1/subscriptions/{subscription_id}/breach-notices", "support", 201,
            {"breach": "open SMTP relay used for spam", "letter_sent_on": "{today}", "cure_by": "{in_a_month}"},
            keep={"notice_id": "id"}),
        Ask("GET", "/v1/subscriptions/{subscription_id}/breach-notices", "support", 200),
        Ask("POST", "/v1/subscriptions/{subscription_id}/breach-notices/{notice_id}/remedied", "support", 200, {}),
        Ask("POST", "/v1/subscriptions/{subscription_id}/non-renewal", "alice", 200, {"channel": "online"}),
        Ask("POST", "/v1/subscriptions/{subscription_id}/reversibility", "support", 200, {"received_at": "{now}"}),
        Ask("POST", "/v1/subscriptions/{subscription_id}/terminate", "support", 202, {"reason": "insolvency"}),
    ],
    "new records": [
        Ask("POST", "/v1/plans", "support", 201, {"code": "cover", "name": "Cover", "vcpus": 1, "memory_mib": 256,
                                                  "disk_gib": 2, "terms": [1, 12], "monthly_price_ht": "9.00"}),
        Ask("GET", "/v1/plans/{plan_id}", "alice", 200, fill={"plan_id": "plan"}),
        Ask("PATCH", "/v1/plans/{plan_id}", "support", 200, {"name": "Cover S"}, fill={"plan_id": "plan"}),
        Ask("POST", "/v1/orders", "alice", 202, {"plan": "cover", "term_months": 1, "image": "tiny",
                                                 "name": "second", "ssh_keys": ["{key}"]}, keep={"job_id": "job.id"}),
        Ask("GET", "/v1/jobs/{job_id}", "alice", 200),
        Ask("POST", "/v1/customers", "support", 201, {"name": "dave", "email": "dave@example.test",
                                                      "language": "en"}),
        Ask("POST", "/v1/vps", "support", 202, {"customer": "alice", "name": "unbilled", "image": "tiny",
                                                "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": ["{key}"],
                                                "reason": "a trial"}, keep={"unbilled": "vps.id"}, run=True),
        Ask("POST", "/v1/subscriptions", "support", 201, {"vps_id": "{unbilled}", "term_months": 1,
                                                          "rent_ht": "10.00"}),
        Ask("POST", "/v1/hosts", "support", 201, {"name": "h3", "uri": "qemu:///system", "site": "Paris"}),
        Ask("POST", "/v1/subscriptions", "support", 404, {"vps_id": "no-such-vps", "term_months": 1,
                                                          "rent_ht": "10.00"}),
        Ask("POST", "/v1/incidents", "support", 201, {"vps_id": "{vps_id}", "malfunction": "network"},
            keep={"incident_id": "id"}),
        Ask("GET", "/v1/incidents/{incident_id}", "alice", 200),
        Ask("POST", "/v1/incidents/{incident_id}/force-majeure", "support", 200,
            {"force_majeure": True, "note": "the storm"}),
        Ask("POST", "/v1/incidents/{incident_id}/resolve", "support", 200, {"resolution": "the link is back"}),
        Ask("POST", "/v1/interruptions", "support", 201, {"starts_at": LATER, "duration_minutes": 60,
                                                          "reason": "new disks", "vps_ids": ["{vps_id}"]},
            keep={"interruption_id": "id"}),
        Ask("GET", "/v1/interruptions/{interruption_id}", "support", 200),
        Ask("POST", "/v1/interruptions", "support", 404, {"starts_at": LATER, "duration_minutes": 60,
                                                          "reason": "new disks", "vps_ids": ["no-such-vps"]}),
        Ask("POST", "/v1/maintenance", "support", 201, {"starts_at": LATER, "duration_minutes": 45,
                                                        "reason": "kernel update", "vps_ids": ["{vps_id}"]}),
        Ask("POST", "/v1/maintenance", "support", 404, {"starts_at": LATER, "duration_minutes": 45,
                                                        "reason": "kernel update", "vps_ids": ["no-such-vps"]}),
        Ask("POST", "/v1/webhooks", "alice", 201, {"url": "http://127.0.0.1:9/hook", "events": ["*"]},
            keep={"webhook_id": "id"}),
        Ask("GET", "/v1/webhooks/{webhook_id}", "alice", 200),
        Ask("GET", "/v1/webhooks/{webhook_id}/deliveries", "alice", 200),
        hook_disabled,
        Ask("POST", "/v1/webhooks/{webhook_id}/enable", "alice", 200),
        Ask("DELETE", "/v1/webhooks/{webhook_id}", "alice", 204),
        dda_document,
        Ask("POST", "/v1/dda-requests", "alice", 201, {"purpose": "supplier security review"},
            keep={"request_id": "id"}),
        Ask("POST", "/v1/dda-requests/{request_id}/approval", "support", 200,
            {"approved": True, "officer": "M. Durand (RSSI)"}),
        Ask("POST", "/v1/dda-requests/{request_id}/nda", "support", 200,
            {"reference": "NDA-2026-014", "signed_on": "{today}"}),
        Ask("GET", "/v1/dda-requests/{request_id}", "alice", 200),
        Ask("GET", "/v1/dda-requests/{request_id}/document", "alice", 200),
    ],
    "compromise": [
        Ask("POST", "/v1/vps/{vps_id}/compromise", "support", 201, {"details": "phishing kit", "cut_off": False},
            keep={"reinstall_job": "reinstall_job_id"}),
        Ask("PUT", "/v1/vps/{vps_id}/compromise/ssh-keys", "alice", 200, {"ssh_keys": ["{key}"]}),
        reinstall_started,
        Ask("PUT", "/v1/vps/{vps_id}/compromise/ssh-keys", "alice", 409, {"ssh_keys": ["{key}"]}),
    ],
}


def ids_of(world: World) -> dict[str, str]:
    """The ids every scene starts from: alice's VPS, its backup, disk, host, order, subscription and
    first invoice; her SSH key; dates from the clock."""
    with Session(world.api.engine) as session:
        order = session.exec(select(Order)).one()
        now = clock.utcnow()
        return {**known_ids(world), "order_id": order.id, "subscription_id": order.subscription_id,
                "invoice_id": order.invoice_id, "plan": "cover", "key": world.key, "now": now.isoformat(),
                "today": now.date().isoformat(), "in_a_month": (now + timedelta(days=30)).date().isoformat()}


def targeted(world: World, before: Any, monkeypatch: pytest.MonkeyPatch) -> Seen:
    """Each scene played from ``before`` (the world put back so afterwards): every answer has the
    status written for it and conforms to the document (schemathesis' validation, as the sweeps).
    The API's drivers reach the in-memory hypervisor too (a host registered through it)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.api.client.app)
    tokens = {"alice": world.api.alice, "support": world.api.support}
    factory = world.worker.drivers._factory  # the API registers a host on the same in-memory hypervisor
    monkeypatch.setattr(hosts_router, "Drivers", lambda: Drivers(factory=factory))
    monkeypatch.setattr(world.api.settings.contract, "dda_document_path", world.api.settings.contract.dda_document_path)
    answered: Seen = set()

    def filled_in(value: Any, ids: dict[str, str]) -> Any:
        if isinstance(value, str):
            return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], value)
        if isinstance(value, list):
            return [filled_in(v, ids) for v in value]
        if isinstance(value, dict):
            return {k: filled_in(v, ids) for k, v in value.items()}
        return value

    for scene, asks in SCENES.items():
        world.restore(before)
        ids = ids_of(world)
        try:
            for ask in asks:
                if not isinstance(ask, Ask):
                    ask(world, ids)
                    continue
                url = filled_in(ask.path, {**ids, **{name: ids[source] for name, source in ask.fill.items()}})
                response = world.api.call(ask.method, url + (f"?{ask.query}" if ask.query else ""),
                                          tokens[ask.role], json=filled_in(ask.body, ids))
                assert response.status_code == ask.status, (scene, ask.method, url, response.status_code,
                                                             response.text)
                schema[ask.path][ask.method].validate_response(response)
                answered.add((ask.method, ask.path, ask.status))
                for name, key in ask.keep.items():
                    value: Any = response.json()
                    for part in key.split("."):
                        value = value[part]
                    ids[name] = str(value)
                if ask.run:
                    world.run()
        finally:
            clock.reset()
    world.restore(before)
    return answered


# Documented answers nothing above reaches: none.  An entry here needs the reason no request
# answers it.
NOT_YET: Seen = set()


def test_every_documented_status_is_answered(world: World, fuzzed: Fuzzed, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every status the document declares for an operation is answered by it, conforming: seen in
    the fuzzing (any role, either mode), by the sweeps, or by the targeted requests (both on the
    world as it was before the fuzzing)."""
    declared = documented(world)
    world.restore(fuzzed.before)
    operations = sorted({(method, path) for method, path, _ in declared if path != "/healthz"})
    swept = sweeps(world, operations) - fuzzed.seen
    aimed = targeted(world, fuzzed.before, monkeypatch) - fuzzed.seen - swept
    answered = fuzzed.seen | swept | aimed
    missing = declared - answered
    print(f"{len(declared)} documented (operation, status); fuzzing answered {len(fuzzed.seen & declared)}, "
          f"the sweeps {len(swept & declared)} more, the targeted requests {len(aimed & declared)} more; "
          f"{len(missing)} not yet")
    for m in sorted(missing):
        print(m)
    print("listed not yet, but answered:", sorted(NOT_YET & answered))
    assert sorted(missing - NOT_YET) == []
    assert sorted(NOT_YET - declared) == []  # no entry outlives its route
