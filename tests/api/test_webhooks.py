"""Webhooks (orchestrator/notify/webhooks.py, api/routers/webhooks.py): signed POSTs of the event
log to a real receiver on loopback, retried after a failure with the same event id, disabled
after failures in a row and enabled again by their owner; R7-confidential: a customer's webhook
gets only their events and is a 404 to anyone else; a bad URL is refused with nothing stored; the
secret is shown once and kept only encrypted."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, func, select

from orchestrator.core.auth import create_token
from orchestrator.core.clock import utcnow
from orchestrator.core.errors import InvalidRequest
from orchestrator.core.models import Customer, Event, IdempotentRequest, Role, Webhook, WebhookDelivery
from orchestrator.core.settings import Settings
from orchestrator.notify import targets, webhooks
from orchestrator.notify.webhooks import start_webhook_thread
from tests.api.fakeworld import World, make_world
from tests.receiver import Received, receiving

FAST = {"webhook_retry_seconds": 0, "webhook_poll_seconds": 0.1}


@contextmanager
def sender(world: World) -> Iterator[None]:
    """The webhook sender loop, as the worker process runs it."""
    stop = threading.Event()
    thread = start_webhook_thread(world.api.engine, world.api.settings, stop)
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def make_hook(world: World, token: str, url: str, events: list[str]) -> dict[str, Any]:
    made = world.api.call("POST", "/v1/webhooks", token, json={"url": url, "events": events})
    assert made.status_code == 201, made.text
    return dict(made.json())


def stop_vps(world: World) -> None:
    assert world.api.call("POST", f"/v1/vps/{world.vps_id}/stop", world.api.alice,
                          json={"force": True}).status_code == 202
    world.run()


def test_a_delivery_is_signed_and_a_failed_one_is_retried_with_the_same_event_id(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    world = make_world(tmp_path, "hooks", **FAST)
    api = world.api
    with receiving(answers=[500]) as alice_end, receiving() as bob_end, receiving() as staff_end:
        hook = make_hook(world, api.alice, alice_end.url, ["vps.status_changed"])
        secret = hook["secret"]
        assert secret.startswith("whsec_") and hook["owner"] == "customer" and hook["enabled"]
        make_hook(world, api.bob, bob_end.url, ["*"])
        staff_hook = make_hook(world, api.support, staff_end.url, ["vps.*"])
        assert staff_hook["owner"] == "staff" and staff_hook["customer_id"] is None
        shown = api.call("GET", f"/v1/webhooks/{hook['id']}", api.alice)
        assert shown.status_code == 200 and "secret" not in shown.json()
        with Session(api.engine) as session:
            stored = session.get(Webhook, hook["id"])
            assert stored is not None and secret not in stored.secret_encrypted

        with sender(world):
            stop_vps(world)
            first, retry = alice_end.wait(2)
            staff_got = staff_end.wait(1)[0]

        assert (first.answered, retry.answered) == (500, 200)
        assert first.signed_by(secret) and retry.signed_by(secret)
        assert not first.signed_by("whsec_another")
        assert first.headers["webhook-id"] == retry.headers["webhook-id"] == str(first.event["id"])
        assert (first.headers["webhook-attempt"], retry.headers["webhook-attempt"]) == ("1", "2")
        assert first.body == retry.body
        event = retry.event
        assert event["type"] == "vps.status_changed" and event["vps_id"] == world.vps_id
        assert (event["data"]["from"], event["data"]["to"]) == ("running", "stopped")
        # Staff's webhook gets every customer's events; bob's none of alice's.
        assert staff_got.event["id"] == event["id"]
        assert bob_end.received == []

    log = api.call("GET", f"/v1/webhooks/{hook['id']}/deliveries", api.alice)
    assert log.status_code == 200, log.text
    rows = [(d["event_id"], d["event_type"], d["attempt"], d["status"], d["status_code"])
            for d in log.json()["items"]]
    assert rows == [(event["id"], "vps.status_changed", 2, "succeeded", 200),
                    (event["id"], "vps.status_changed", 1, "failed", 500)]
    assert all(d["duration_ms"] is not None and d["attempted_at"] for d in log.json()["items"])
    page = api.call("GET", f"/v1/webhooks/{hook['id']}/deliveries?limit=1", api.alice).json()
    assert [d["attempt"] for d in page["items"]] == [2] and page["next"]
    following = api.call("GET", f"/v1/webhooks/{hook['id']}/deliveries?limit=1&cursor={page['next']}",
                         api.alice).json()
    assert [d["attempt"] for d in following["items"]] == [1] and following["next"] is None
    assert all(secret not in record.getMessage() for record in caplog.records)


def test_failures_in_a_row_disable_a_webhook_its_owner_enables_it_and_the_waiting_event_is_sent(
        tmp_path: Path) -> None:
    world = make_world(tmp_path, "disable", **FAST, webhook_disable_after=3, webhook_max_attempts=10)
    api, engine, settings = world.api, world.api.engine, world.api.settings
    with receiving(otherwise=503) as end:
        hook = make_hook(world, api.alice, end.url, ["vps.status_changed"])
        stop_vps(world)
        for _ in range(5):
            webhooks.deliver_due(engine, settings)
        assert len(end.received) == 3  # then disabled: the fourth attempt waits
        shown = api.call("GET", f"/v1/webhooks/{hook['id']}", api.alice).json()
        assert (shown["enabled"], shown["consecutive_failures"]) == (False, 3) and shown["disabled_at"]
        assert webhooks.deliver_due(engine, settings) == 0
        scraped = api.call("GET", "/metrics", api.support).text
        assert "vpsctl_webhook_failures_total 3.0" in scraped and "vpsctl_webhooks_disabled 1.0" in scraped
        assert 'vpsctl_webhook_deliveries{status="pending"} 1.0' in scraped

        # R7-confidential: someone else's webhook does not exist for bob.
        for method, suffix in (("GET", ""), ("POST", "/enable"), ("GET", "/deliveries"), ("DELETE", "")):
            answer = api.call(method, f"/v1/webhooks/{hook['id']}{suffix}", api.bob)
            assert answer.status_code == 404, (method, suffix, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
        assert [h["id"] for h in api.call("GET", "/v1/webhooks", api.bob).json()["items"]] == []
        assert [h["id"] for h in api.call("GET", "/v1/webhooks", api.support).json()["items"]] == [hook["id"]]

        end.otherwise = 200
        enabled = api.call("POST", f"/v1/webhooks/{hook['id']}/enable", api.alice)
        assert enabled.status_code == 200, enabled.text
        assert (enabled.json()["enabled"], enabled.json()["consecutive_failures"]) == (True, 0)
        assert api.call("POST", f"/v1/webhooks/{hook['id']}/enable", api.alice).status_code == 409
        assert webhooks.deliver_due(engine, settings) == 1
        received: list[Received] = end.wait(4)
        assert [r.headers["webhook-attempt"] for r in received] == ["1", "2", "3", "4"]
        assert len({r.headers["webhook-id"] for r in received}) == 1 and received[-1].answered == 200

    deleted = api.call("DELETE", f"/v1/webhooks/{hook['id']}", api.alice)
    assert deleted.status_code == 204
    assert api.call("GET", f"/v1/webhooks/{hook['id']}", api.alice).status_code == 404
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(WebhookDelivery)).one() == 0


def test_an_event_is_retried_a_bounded_number_of_times(tmp_path: Path) -> None:
    world = make_world(tmp_path, "bounded", **FAST, webhook_max_attempts=3, webhook_disable_after=100)
    api, engine, settings = world.api, world.api.engine, world.api.settings
    with receiving(otherwise=500) as end:
        hook = make_hook(world, api.alice, end.url, ["vps.status_changed"])
        stop_vps(world)
        for _ in range(6):
            webhooks.deliver_due(engine, settings)
        assert len(end.received) == 3
    log = api.call("GET", f"/v1/webhooks/{hook['id']}/deliveries", api.alice).json()["items"]
    statuses = [d["status"] for d in log]
    assert statuses == ["failed", "failed", "failed"]


def test_a_delivery_whose_sender_died_is_sent_by_another_after_its_lease(tmp_path: Path, clock: Any) -> None:
    world = make_world(tmp_path, "lease", **FAST)
    api, engine, settings = world.api, world.api.engine, world.api.settings
    with receiving() as end:
        make_hook(world, api.alice, end.url, ["vps.status_changed"])
        stop_vps(world)
        claimed = webhooks._claim_next(engine, settings, set())  # a sender took it, then died
        assert claimed is not None
        assert webhooks.deliver_due(engine, settings) == 0  # under its lease
        clock.advance(timedelta(seconds=webhooks.lease_seconds(settings) + 1))
        assert webhooks.deliver_due(engine, settings) == 1
        assert end.wait(1)[0].headers["webhook-id"] == str(claimed.event_id)


@pytest.mark.parametrize("body", [
    {"url": "ftp://127.0.0.1/x", "events": ["*"]},
    {"url": "file:///etc/passwd", "events": ["*"]},
    {"url": "http://", "events": ["*"]},
    {"url": "http://user:pw@127.0.0.1/x", "events": ["*"]},
    {"url": "http://127.0.0.1:99999/x", "events": ["*"]},
    {"url": "not a url", "events": ["*"]},
    {"url": "http://127.0.0.1/x", "events": []},
    {"url": "http://127.0.0.1/x", "events": ["nothing.*"]},
    {"url": "http://127.0.0.1/x", "events": ["*"], "secret": "mine"},
    {"url": "http://127.0.0.1/" + "x" * 3000, "events": ["*"]},
])
def test_a_bad_webhook_is_refused_with_nothing_stored(tmp_path: Path, body: dict[str, Any]) -> None:
    world = make_world(tmp_path, "bad")
    answer = world.api.call("POST", "/v1/webhooks", world.api.alice, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    with Session(world.api.engine) as session:
        assert session.exec(select(func.count()).select_from(Webhook)).one() == 0


# Loopback, "localhost", cloud metadata (link-local), private ranges, IPv6 loopback, an IPv4 address
# written as IPv6, shared address space (carrier NAT), unspecified.
NOT_PUBLIC = ["http://127.0.0.1:8080/x", "http://localhost/x", "https://169.254.169.254/latest/meta-data",
              "http://10.1.2.3/", "http://192.168.0.10:443/", "http://172.16.5.4/", "http://[::1]:9000/",
              "http://[::ffff:127.0.0.1]/", "http://100.64.0.1/", "http://0.0.0.0:5432/", "http://[fe80::1]/"]


def test_a_webhook_to_an_address_that_is_not_public_is_refused_by_default(tmp_path: Path) -> None:
    """SSRF: the control plane's own networks are no client's endpoint (orchestrator/notify/targets.py)."""
    world = make_world(tmp_path, "ssrf", webhook_private_targets=False)
    for url in NOT_PUBLIC:
        answer = world.api.call("POST", "/v1/webhooks", world.api.alice, json={"url": url, "events": ["*"]})
        assert answer.status_code == 422, (url, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert "not a public address" in answer.json()["detail"], answer.json()
    with Session(world.api.engine) as session:
        assert session.exec(select(func.count()).select_from(Webhook)).one() == 0


def test_public_addresses_are_the_ones_taken() -> None:
    """Checked without connecting anywhere: addresses written in the URL are not resolved."""
    for host in ("8.8.8.8", "2001:4860:4860::8888", "[2606:4700:4700::1111]", "193.51.224.1"):
        targets.check_host(host, 443)
    for host in ("127.0.0.2", "169.254.169.254", "::", "fd00::1", "224.0.0.1", "198.51.100.7"):
        with pytest.raises(InvalidRequest, match="not a public address"):
            targets.check_host(host, 443)


def test_a_name_that_resolves_to_a_private_address_when_delivering_is_refused_before_connecting(
        tmp_path: Path) -> None:
    """The check at each connection (DNS rebinding: a name public when the webhook was made may
    point inward later): the sender resolves, checks and refuses before connecting; the same
    delivery, allowed to private targets, reaches the receiver (so the check was the refusal)."""
    world = make_world(tmp_path, "rebind", **FAST)  # private targets allowed: the webhook is made
    api, engine, settings = world.api, world.api.engine, world.api.settings
    with receiving() as end:
        hook = make_hook(world, api.alice, f"http://localhost:{end.port}/hook", ["vps.status_changed"])
        stop_vps(world)
        strict = settings.replace(webhook_private_targets=False)
        assert webhooks.deliver_due(engine, strict, limit=1) == 1
        assert end.received == []
        log = api.call("GET", f"/v1/webhooks/{hook['id']}/deliveries", api.alice).json()["items"]
        assert [(d["attempt"], d["status"]) for d in log] == [(2, "pending"), (1, "failed")]
        assert log[1]["error"].startswith("ConnectError: refused: localhost resolves to 127.0.0.1"), log[1]
        assert webhooks.deliver_due(engine, settings, limit=1) == 1
        assert [r.headers["webhook-attempt"] for r in end.wait(1)] == ["2"]


def test_events_are_recorded_in_the_changes_transaction_and_a_refused_request_records_none(tmp_path: Path) -> None:
    world = make_world(tmp_path, "tx")
    api = world.api
    with Session(api.engine) as session:
        before = session.exec(select(func.count()).select_from(Event)).one()
        alice = session.exec(select(Customer.id).where(Customer.name == "alice")).one()
        types = [e.type for e in session.exec(select(Event).order_by(Event.id)).all()]  # type: ignore[arg-type]
    assert types[:2] == ["vps.created", "job.requested"] and "job.succeeded" in types
    refused = api.call("POST", f"/v1/vps/{world.vps_id}/start", api.alice)  # running already
    assert refused.status_code == 409
    with Session(api.engine) as session:
        assert session.exec(select(func.count()).select_from(Event)).one() == before
        assert {e.customer_id for e in session.exec(select(Event)).all()} == {alice}


def test_settings_reject_a_bad_webhook_key(tmp_path: Path) -> None:
    from orchestrator.core.errors import SchemaError
    from orchestrator.core.sealing import seal

    with pytest.raises(SchemaError):
        seal(Settings(state_dir=tmp_path, webhook_key="short"), "whsec_x")
    sealed = seal(Settings(state_dir=tmp_path), "whsec_x")
    assert (tmp_path / "webhook.key").stat().st_mode & 0o077 == 0 and "whsec_x" not in sealed


def test_incidents_and_invoices_reach_their_customers_webhook_only(tmp_path: Path) -> None:
    world = make_world(tmp_path, "money", **FAST)
    api, engine, settings = world.api, world.api.engine, world.api.settings
    with receiving() as alice_end, receiving() as bob_end:
        make_hook(world, api.alice, alice_end.url, ["invoice.*", "incident.*"])
        make_hook(world, api.bob, bob_end.url, ["*"])
        opened = api.call("POST", "/v1/incidents", api.support,
                          json={"vps_id": world.vps_id, "malfunction": "network", "description": "switch"})
        assert opened.status_code == 201, opened.text
        resolved = api.call("POST", f"/v1/incidents/{opened.json()['id']}/resolve", api.support,
                            json={"resolution": "switch replaced"})
        assert resolved.status_code == 200, resolved.text
        fee = api.call("POST", "/v1/customers/alice/blacklist-complaints", api.support, json={"complaints": 1})
        assert fee.status_code == 201, fee.text
        webhooks.deliver_due(engine, settings)
        got = sorted((r.event for r in alice_end.wait(3)), key=lambda e: int(e["id"]))  # sent side by side
        assert [e["type"] for e in got] == ["incident.opened", "incident.resolved", "invoice.issued"]
        assert got[0]["data"]["incident_id"] == opened.json()["id"] and got[0]["vps_id"] == world.vps_id
        invoice = fee.json()["invoice"]
        assert (got[2]["data"]["invoice_id"], got[2]["data"]["total_ttc"]) == (invoice["id"], invoice["total_ttc"])
        assert "description" not in got[0]["data"]
        assert bob_end.received == []


def test_an_idempotent_creation_keeps_no_secret_and_makes_one_webhook(tmp_path: Path) -> None:
    world = make_world(tmp_path, "idem")
    api = world.api
    body = {"url": "http://127.0.0.1:9/hook", "events": ["*"]}
    first = api.call("POST", "/v1/webhooks", api.alice, json=body, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201 and first.headers["cache-control"] == "no-store"
    again = api.call("POST", "/v1/webhooks", api.alice, json=body, headers={"Idempotency-Key": "k1"})
    assert again.status_code == 409 and again.headers["idempotent-replayed"] == "true"
    assert first.json()["secret"] not in again.text
    with Session(api.engine) as session:
        assert session.exec(select(func.count()).select_from(Webhook)).one() == 1
        kept = session.exec(select(IdempotentRequest)).all()
        assert kept and all(first.json()["secret"] not in row.body for row in kept)


def test_a_slow_endpoint_does_not_hold_up_another(tmp_path: Path) -> None:
    world = make_world(tmp_path, "slow", webhook_timeout_seconds=3, webhook_slots=2, webhook_retry_seconds=60)
    api, engine, settings = world.api, world.api.engine, world.api.settings
    with receiving(delay=6) as slow_end, receiving() as fast_end:
        slow = make_hook(world, api.alice, slow_end.url, ["vps.status_changed"])
        make_hook(world, api.alice, fast_end.url, ["vps.status_changed"])
        stop_vps(world)
        with Session(engine) as session:  # the slow endpoint's delivery is the first due
            for delivery in session.exec(select(WebhookDelivery).where(WebhookDelivery.webhook_id == slow["id"])):
                delivery.due_at = utcnow() - timedelta(minutes=1)
                session.add(delivery)
            session.commit()
        started = time.monotonic()
        sending = threading.Thread(target=webhooks.deliver_due, args=(engine, settings))
        sending.start()
        fast_end.wait(1, timeout=2.5)
        assert time.monotonic() - started < 2.5  # before the slow POST timed out (3 s)
        sending.join(timeout=20)
        assert len(slow_end.received) == 1
    log = api.call("GET", f"/v1/webhooks/{slow['id']}/deliveries", api.alice).json()["items"]
    assert [(d["attempt"], d["status"], d["status_code"]) for d in log] == [(2, "pending", None), (1, "failed", None)]
    assert "Timeout" in log[1]["error"]


def test_automation_tokens_need_the_webhooks_and_events_scopes(tmp_path: Path) -> None:
    world = make_world(tmp_path, "scopes")
    api = world.api
    with Session(api.engine) as session:
        fleet = create_token(session, Role.automation, scopes=["vps:read"])
        hooks = create_token(session, Role.automation, scopes=["webhooks:read", "webhooks:write"])
    body = {"url": "http://127.0.0.1:9/hook", "events": ["job.*"]}
    refused = api.call("POST", "/v1/webhooks", fleet, json=body)
    assert refused.status_code == 403 and "webhooks:write" in refused.json()["detail"]
    assert api.call("GET", "/v1/events", fleet).status_code == 403
    made = api.call("POST", "/v1/webhooks", hooks, json=body)
    assert made.status_code == 201 and made.json()["owner"] == "staff"
    assert [h["id"] for h in api.call("GET", "/v1/webhooks", hooks).json()["items"]] == [made.json()["id"]]
    assert api.call("GET", "/v1/events", hooks).status_code == 403  # events:read is its own scope
    with Session(api.engine) as session:
        assert session.exec(select(func.count()).select_from(Webhook)).one() == 1
