"""Webhooks: endpoints that receive the event log (orchestrator/core/eventlog.py) as signed HTTP
POSTs, delivered by a loop beside the job worker.

- ``create`` checks the URL (http or https only, a host, no credentials in it, a public address
  unless ``events.private_targets``: orchestrator/notify/targets.py) and the event patterns,
  makes a signing secret, stores it sealed (orchestrator/core/sealing.py) and returns it in
  clear once, to the caller alone.
- A delivery is queued for each enabled webhook that wants an event, in the event's own
  transaction (``eventlog._fan_out``): nothing committed is missed, nothing rolled back is sent.
- ``deliver_due`` claims one due delivery at a time in a short transaction (``sending``, with a
  lease past the POST's timeout: a process that dies mid-POST leaves it to be taken again),
  POSTs outside any transaction with ``events.timeout_seconds``, then records the answer: a 2xx
  is ``succeeded``; anything else (status, timeout, refused connection) is ``failed`` with the
  status code or the error, and the next attempt is queued after a doubling delay until
  ``events.max_attempts``.  Redirects are not followed (a 3xx is a failure).  ``events.slots``
  POSTs run at once: a slow endpoint holds one.
- ``events.disable_after`` failed attempts in a row disable the webhook (its pending deliveries
  wait); its owner enables it again (``enable``) and they are sent.
- Delivery is at least once: a receiver deduplicates by ``Webhook-Id`` (the event's id, the same
  at every attempt).

The signature (docs/api.md, "Webhooks"): ``Webhook-Signature: v1=<hex HMAC-SHA256>`` of
``"<Webhook-Timestamp>.<body>"`` keyed with the whole secret (``whsec_...``) as UTF-8.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
from sqlalchemy import and_, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select

from orchestrator.core import eventlog
from orchestrator.core.auth import Principal
from orchestrator.core.clock import utcnow
from orchestrator.core.db import session_scope
from orchestrator.core.errors import Conflict, Forbidden, InvalidRequest
from orchestrator.core.models import Event, Webhook, WebhookDelivery
from orchestrator.core.sealing import seal, unseal
from orchestrator.core.settings import Settings
from orchestrator.notify import targets
from orchestrator.notify.outbox import backoff_seconds  # the same doubling delay as mail retries

log = logging.getLogger(__name__)

PENDING, SENDING, SUCCEEDED, FAILED = "pending", "sending", "succeeded", "failed"
SECRET_PREFIX = "whsec_"  # noqa: S105  (a prefix, not a secret)
URL_MAX = 2000
PATTERNS_MAX = 50
BATCH = 100
USER_AGENT = "vpsctl-webhooks"


def check_url(url: str) -> str:
    """http or https, with a host, without credentials or a fragment (422 otherwise)."""
    url = url.strip()
    if not url or len(url) > URL_MAX:
        raise InvalidRequest(f"url: between 1 and {URL_MAX} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidRequest(f"url: not a URL ({exc})") from exc
    if parts.scheme not in ("http", "https"):
        raise InvalidRequest("url: only http:// and https:// endpoints receive webhooks")
    if not parts.hostname:
        raise InvalidRequest("url: a host is needed")
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest("url: no credentials in the URL (verify the signature instead)")
    if parts.fragment:
        raise InvalidRequest("url: no fragment")
    if port == 0:
        raise InvalidRequest("url: port 0")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise InvalidRequest("url: no spaces or control characters")
    return url


def check_patterns(patterns: list[str]) -> list[str]:
    if not patterns:
        raise InvalidRequest(f"events: at least one event type or pattern (e.g. 'job.*', '*'); "
                             f"the types are {', '.join(eventlog.TYPES)}")
    if len(patterns) > PATTERNS_MAX:
        raise InvalidRequest(f"events: at most {PATTERNS_MAX}")
    unknown = [p[:64] for p in patterns if not eventlog.valid_pattern(p)]
    if unknown:
        raise InvalidRequest(f"events: {', '.join(map(repr, unknown))} match no event type; "
                             f"the types are {', '.join(eventlog.TYPES)}")
    return sorted(set(patterns))


def check_target(settings: Settings, url: str) -> str:
    """``check_url``, and (unless ``events.private_targets``) the host a public address."""
    url = check_url(url)
    if not settings.events.private_targets:
        parts = urlsplit(url)
        assert parts.hostname is not None  # check_url
        targets.check_host(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    return url


def http_client(settings: Settings) -> httpx.Client:
    return targets.client(settings.events.timeout_seconds, settings.events.private_targets)


def create(session: Session, settings: Settings, principal: Principal, url: str,
           patterns: list[str]) -> tuple[Webhook, str]:
    """A webhook for the principal's customer (a customer's own events), or for staff (every
    event); returns it and its secret, in clear this once."""
    if not principal.is_staff and principal.customer_id is None:
        raise Forbidden("this token belongs to no customer")
    patterns = check_patterns(patterns)
    url = check_target(settings, url)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    hook = Webhook(customer_id=None if principal.is_staff else principal.customer_id, url=url,
                   events=patterns, secret_encrypted=seal(settings, secret),
                   created_by=str(principal)[:100])
    session.add(hook)
    session.flush()
    return hook, secret


def enable(session: Session, hook: Webhook) -> Webhook:
    """Enabled again after it was disabled by failures: its pending deliveries are sent."""
    if hook.enabled:
        raise Conflict(f"webhook {hook.id} is enabled already")
    hook.enabled = True
    hook.consecutive_failures = 0
    hook.disabled_at = None
    now = utcnow()
    for delivery in session.exec(select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id,
                                                               WebhookDelivery.status == PENDING)).all():
        delivery.due_at = now
        session.add(delivery)
    session.add(hook)
    _wake.set()
    return hook


def remove(session: Session, hook: Webhook) -> None:
    session.exec(delete(WebhookDelivery).where(col(WebhookDelivery.webhook_id) == hook.id))
    session.delete(hook)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Webhook-Signature`` header's value."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def body_of(event: Event) -> bytes:
    return json.dumps({"id": event.id, "type": event.type, "created_at": event.created_at.isoformat()
                       if event.created_at else None, "customer_id": event.customer_id, "vps_id": event.vps_id,
                       "data": event.data}, separators=(",", ":"), sort_keys=True).encode()


def lease_seconds(settings: Settings) -> float:
    return 2 * settings.events.timeout_seconds + 30


@dataclass(frozen=True)
class _Claim:
    id: str
    webhook_id: str
    event_id: int
    attempt: int
    url: str
    secret: str
    body: bytes
    claimed_at: datetime


def _claim_next(engine: Engine, settings: Settings, exclude: set[str]) -> _Claim | None:
    now = utcnow()
    with session_scope(engine) as session:
        query = (select(WebhookDelivery)
                 .join(Webhook, col(Webhook.id) == col(WebhookDelivery.webhook_id))
                 .where(col(Webhook.enabled).is_(True),
                        or_(and_(col(WebhookDelivery.status) == PENDING, col(WebhookDelivery.due_at) <= now),
                            and_(col(WebhookDelivery.status) == SENDING, col(WebhookDelivery.due_at) <= now))))
        if exclude:
            query = query.where(col(WebhookDelivery.id).not_in(exclude))
        query = query.order_by(col(WebhookDelivery.due_at), col(WebhookDelivery.event_id)).limit(1)
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=WebhookDelivery)
        delivery = session.exec(query).first()
        if delivery is None:
            return None
        hook = session.get(Webhook, delivery.webhook_id)
        event = session.get(Event, delivery.event_id)
        assert hook is not None and event is not None
        delivery.status = SENDING
        delivery.attempted_at = now
        delivery.due_at = now + timedelta(seconds=lease_seconds(settings))
        session.add(delivery)
        return _Claim(delivery.id, hook.id, delivery.event_id, delivery.attempt, hook.url,
                      unseal(settings, hook.secret_encrypted), body_of(event), now)


def _post(client: httpx.Client, claim: _Claim) -> tuple[int | None, str | None]:
    timestamp = int(time.time())
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               "Webhook-Id": str(claim.event_id), "Webhook-Timestamp": str(timestamp),
               "Webhook-Attempt": str(claim.attempt), "Webhook-Signature": sign(claim.secret, timestamp, claim.body)}
    try:
        response = client.post(claim.url, content=claim.body, headers=headers)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}"


def _finish(engine: Engine, settings: Settings, claim: _Claim, status_code: int | None, error: str | None,
            duration_ms: int) -> None:
    with session_scope(engine) as session:
        delivery = session.get(WebhookDelivery, claim.id)
        hook = session.get(Webhook, claim.webhook_id)
        if delivery is None or hook is None or delivery.status != SENDING or delivery.attempted_at != claim.claimed_at:
            return  # deleted meanwhile, or taken over after its lease
        delivery.status_code, delivery.duration_ms = status_code, duration_ms
        now = utcnow()
        if error is None:
            delivery.status = SUCCEEDED
            delivery.error = None
            hook.consecutive_failures = 0
        else:
            delivery.status = FAILED
            delivery.error = error
            hook.consecutive_failures += 1
            if hook.enabled and hook.consecutive_failures >= settings.events.disable_after:
                hook.enabled = False
                hook.disabled_at = now
                log.warning("webhook %s disabled after %d failed deliveries in a row", hook.id,
                            hook.consecutive_failures)
            if claim.attempt < settings.events.max_attempts:
                delay = backoff_seconds(claim.attempt, settings.events.retry_seconds,
                                        settings.events.max_backoff_seconds)
                session.add(WebhookDelivery(webhook_id=hook.id, event_id=claim.event_id, attempt=claim.attempt + 1,
                                            due_at=now + timedelta(seconds=delay)))
            else:
                log.warning("webhook %s: event %d given up after %d attempts", hook.id, claim.event_id, claim.attempt)
        delivery.due_at = None
        session.add(delivery)
        session.add(hook)


def _send(engine: Engine, settings: Settings, client: httpx.Client, claim: _Claim) -> None:
    started = time.monotonic()
    status_code, error = _post(client, claim)
    _finish(engine, settings, claim, status_code, error, int((time.monotonic() - started) * 1000))


def deliver_due(engine: Engine, settings: Settings, *, limit: int = BATCH,
                client: httpx.Client | None = None) -> int:
    """Send the deliveries that are due (each at most once per call, ``limit`` at most), up to
    ``events.slots`` at once (a slow endpoint holds one slot, not the others); returns how many
    were tried."""
    own = client is None
    http = client or http_client(settings)
    tried: set[str] = set()
    slots = settings.events.slots
    try:
        with ThreadPoolExecutor(max_workers=slots, thread_name_prefix="vpsctl-webhook") as pool:
            while len(tried) < limit:
                claims: list[_Claim] = []
                while len(claims) < slots and len(tried) < limit:
                    claim = _claim_next(engine, settings, tried)
                    if claim is None:
                        break
                    tried.add(claim.id)
                    claims.append(claim)
                if not claims:
                    break
                for done in [pool.submit(_send, engine, settings, http, claim) for claim in claims]:
                    done.result()
    finally:
        if own:
            http.close()
    return len(tried)


_wake = threading.Event()


def _wait(stop_event: threading.Event, seconds: float, seen: int) -> None:
    deadline = time.monotonic() + seconds
    while not stop_event.is_set() and not _wake.is_set() and eventlog.serial() == seen:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        with eventlog.published:
            if eventlog.serial() == seen:
                eventlog.published.wait(min(left, 0.5))
    _wake.clear()


def run_webhooks_forever(engine: Engine, settings: Settings, stop_event: threading.Event) -> None:
    """Deliver due webhooks until ``stop_event`` is set; waits ``events.poll_seconds`` between
    rounds, less when this process records events."""
    log.info("webhook sender started")
    with http_client(settings) as client:
        while not stop_event.is_set():
            seen = eventlog.serial()
            busy = False
            try:
                busy = deliver_due(engine, settings, client=client) >= BATCH
            except Exception:
                log.exception("webhook sender loop error")
            if not busy:
                _wait(stop_event, settings.events.poll_seconds, seen)
    log.info("webhook sender stopped")


def start_webhook_thread(engine: Engine, settings: Settings, stop_event: threading.Event) -> threading.Thread:
    """``run_webhooks_forever`` in a daemon thread."""
    thread = threading.Thread(target=run_webhooks_forever, args=(engine, settings, stop_event),
                              name="vpsctl-webhooks", daemon=True)
    thread.start()
    return thread
