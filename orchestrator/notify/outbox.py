"""The outbox: notices are queued in the caller's transaction and sent later, by ``deliver_due``.

- ``enqueue`` renders the message at once (a missing value fails the caller's request, not a
  background loop) and stores it with its context; no SMTP happens in the caller's transaction.
- ``deliver_due`` claims one due message at a time in a short transaction (attempts + 1, and
  ``next_attempt_at`` pushed past the time a send may take, so a second process does not take it
  and a process that dies mid-send leaves it to be retried), renders it again for the sending
  instant, resolves the recipient, sends it outside any transaction, then records the outcome.
- R6.5-contact: with a customer, the address used is the one on file when the message is sent;
  ``to_address`` records it.
- R6.2-notice, R8.7-default, R9-delivery: ``sent_at`` is the instant the SMTP server accepted the
  message, set after the fact: the deadlines count from it.  The deadlines written in the email
  are computed from the moment the message was composed, just before, and shown to the minute
  below: what the client reads is never later than what ``orchestrator.contract.deadlines``
  enforces from ``sent_at``.
- A message is never lost: while SMTP fails it stays ``pending`` with ``last_error`` and a
  doubling delay (``outbox_retry_seconds`` .. ``outbox_max_backoff_seconds``); after
  ``outbox_max_attempts`` it is ``failed`` (kept; ``requeue`` puts it back).  Delivery is at least
  once: if the process dies after the server accepted a message but before recording it, the
  message is sent again (with a new Message-ID).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import event, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from orchestrator.contract.calendar import BusinessCalendar
from orchestrator.core.clock import utcnow
from orchestrator.core.db import session_scope
from orchestrator.core.errors import Conflict, InvalidRequest, NotFound
from orchestrator.core.models import Customer, Outbox
from orchestrator.core.settings import Settings
from orchestrator.notify.smtp import Sender, SmtpSender, build_message, new_message_id
from orchestrator.notify.templates import decode_context, encode_context, get_spec, normalize_language, render

log = logging.getLogger(__name__)

PENDING = "pending"
SENT = "sent"
FAILED = "failed"
STATUSES = (PENDING, SENT, FAILED)
BATCH = 100  # messages tried by one deliver_due call at most

_wake = threading.Event()


def notify() -> None:
    """Wake ``run_outbox_forever`` (called on its own once a session that queued mail commits)."""
    _wake.set()


def _wake_after_commit(_session: Any) -> None:
    _wake.set()


def backoff_seconds(attempts: int, base: float, ceiling: float) -> float:
    """The delay before the next try after ``attempts`` failed tries: base, 2 x base, 4 x base, ...
    never more than ``ceiling``."""
    if attempts < 1:
        return 0.0
    return float(min(ceiling, base * 2.0 ** min(attempts - 1, 60)))


def claim_lease_seconds(settings: Settings) -> float:
    """How long a claimed message is left alone by other processes: more than one SMTP exchange
    can take (each blocking step is bounded by ``smtp_timeout_seconds``)."""
    return 5 * settings.smtp.timeout_seconds + 30


def enqueue(session: Session, customer_id: int | None, template: str, context: Mapping[str, Any],
            vps_id: str | None = None, job_id: str | None = None, *, settings: Settings,
            to_address: str | None = None, language: str | None = None) -> Outbox:
    """Queue ``template`` for ``customer_id`` (or, without a customer, for ``to_address``), in the
    caller's session; it is sent once the caller commits.  The language is the customer's
    (``language`` overrides it; fallback French).  Raises InvalidRequest when the template does
    not exist or the context does not fit it."""
    get_spec(template)
    customer: Customer | None = None
    if customer_id is not None:
        if to_address is not None:
            raise InvalidRequest("R6.5-contact: a customer's notices go to the address on file, not to another one")
        customer = session.get(Customer, customer_id)
        if customer is None:
            raise NotFound(f"customer {customer_id} not found")
    elif not (to_address or "").strip():
        raise InvalidRequest("an email needs a customer or an address")
    lang = normalize_language(language or (customer.language if customer else None))
    stored = encode_context(context)
    preview = render(template, decode_context(stored), language=lang, sent_at=utcnow(),
                     company_name=settings.mail.company_name, customer_name=customer.name if customer else "")
    message = Outbox(
        customer_id=customer_id,
        to_address=(customer.email if customer else (to_address or "")).strip(),
        language=lang,
        template=template,
        subject=preview.subject,
        body_text=preview.body,
        context=stored,
        vps_id=vps_id,
        job_id=job_id,
        status=PENDING,
        next_attempt_at=utcnow(),
    )
    session.add(message)
    session.flush()
    event.listen(session, "after_commit", _wake_after_commit, once=True)
    return message


def requeue(session: Session, outbox_id: int) -> Outbox:
    """Put a failed message back in the queue, with a fresh count of attempts."""
    message = session.get(Outbox, outbox_id)
    if message is None:
        raise NotFound(f"outbox message {outbox_id} not found")
    if message.status != FAILED:
        raise Conflict(f"outbox message {outbox_id} is {message.status}, not failed")
    message.status = PENDING
    message.attempts = 0
    message.next_attempt_at = utcnow()
    session.add(message)
    event.listen(session, "after_commit", _wake_after_commit, once=True)
    return message


@dataclass(frozen=True)
class _Claim:
    id: int
    attempts: int
    to_address: str
    template: str
    subject: str
    body: str
    message_id: str
    message: EmailMessage | None  # None: could not be prepared (the failure is already recorded)


def _record_failure(message: Outbox, error: str, settings: Settings, now: datetime) -> None:
    message.last_error = error[:2000]
    if message.attempts >= settings.mail.max_attempts:
        message.status = FAILED
        log.error("outbox %s (%s to %s) failed for good after %d attempts: %s", message.id, message.template,
                  message.to_address or "?", message.attempts, error)
    else:
        delay = backoff_seconds(message.attempts, settings.mail.retry_seconds, settings.mail.max_backoff_seconds)
        message.next_attempt_at = now + timedelta(seconds=delay)
        log.warning("outbox %s (%s to %s) not sent (attempt %d), next try in %.0f s: %s", message.id,
                    message.template, message.to_address or "?", message.attempts, delay, error)


def _prepare(session: Session, message: Outbox, settings: Settings, calendar: BusinessCalendar,
             now: datetime) -> EmailMessage:
    """R6.5-contact: the address on file now; the text rendered for this sending instant."""
    customer_name = ""
    if message.customer_id is not None:
        customer = session.get(Customer, message.customer_id)
        if customer is None:
            raise NotFound(f"customer {message.customer_id} no longer exists")
        message.to_address = customer.email.strip()
        customer_name = customer.name
        if not message.to_address:
            raise InvalidRequest(f"R6.5-contact: no email address on file for customer {message.customer_id}")
    rendered = render(message.template, decode_context(message.context), language=message.language, sent_at=now,
                      calendar=calendar, company_name=settings.mail.company_name, customer_name=customer_name)
    message.subject, message.body_text = rendered.subject, rendered.body
    message.message_id = new_message_id(settings.mail.sender, f"outbox.{message.id}.{message.attempts}")
    return build_message(mail_from=settings.mail.sender, to_address=message.to_address, subject=rendered.subject,
                         body=rendered.body, date=now, message_id=message.message_id)


def _claim_next(engine: Engine, settings: Settings, calendar: BusinessCalendar, exclude: set[int]) -> _Claim | None:
    now = utcnow()
    with session_scope(engine) as session:
        query = select(Outbox).where(
            col(Outbox.status) == PENDING,
            or_(col(Outbox.next_attempt_at).is_(None), col(Outbox.next_attempt_at) <= now),
        )
        if exclude:
            query = query.where(col(Outbox.id).not_in(exclude))
        query = query.order_by(col(Outbox.next_attempt_at), col(Outbox.id)).limit(1)
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        message = session.exec(query).first()
        if message is None or message.id is None:
            return None
        message.attempts += 1
        retry = backoff_seconds(message.attempts, settings.mail.retry_seconds, settings.mail.max_backoff_seconds)
        message.next_attempt_at = now + timedelta(seconds=max(retry, claim_lease_seconds(settings)))
        try:
            email: EmailMessage | None = _prepare(session, message, settings, calendar, now)
        except Exception as exc:
            email = None
            _record_failure(message, f"{type(exc).__name__}: {exc}", settings, now)
        session.add(message)
        return _Claim(message.id, message.attempts, message.to_address, message.template, message.subject,
                      message.body_text, message.message_id or "", email)


def _finish(engine: Engine, settings: Settings, claim: _Claim, error: str | None) -> None:
    with session_scope(engine) as session:
        message = session.get(Outbox, claim.id)
        if message is None:
            return
        if error is not None:
            if message.status == PENDING and message.attempts == claim.attempts:  # not taken over meanwhile
                _record_failure(message, error, settings, utcnow())
                session.add(message)
            return
        if message.status == SENT:
            log.warning("outbox %s was sent twice (a claim outlived its lease)", claim.id)
            return
        message.status = SENT
        message.sent_at = utcnow()
        message.to_address = claim.to_address
        message.subject, message.body_text, message.message_id = claim.subject, claim.body, claim.message_id
        message.last_error = None
        message.next_attempt_at = None
        session.add(message)
        log.info("outbox %s (%s) sent to %s", claim.id, claim.template, claim.to_address)


def _deliver(engine: Engine, settings: Settings, sender: Sender, calendar: BusinessCalendar | None,
             limit: int) -> tuple[int, int]:
    cal = calendar or BusinessCalendar()
    tried: set[int] = set()
    sent = 0
    while len(tried) < limit:
        claim = _claim_next(engine, settings, cal, tried)
        if claim is None:
            break
        tried.add(claim.id)
        if claim.message is None:
            continue
        try:
            sender.send(claim.message)
        except Exception as exc:
            _finish(engine, settings, claim, f"{type(exc).__name__}: {exc}")
            continue
        _finish(engine, settings, claim, None)
        sent += 1
    return sent, len(tried)


def deliver_due(engine: Engine, settings: Settings, sender: Sender, *, calendar: BusinessCalendar | None = None,
                limit: int = BATCH) -> int:
    """Send the pending messages that are due (each one tried at most once per call, ``limit`` at
    most); returns how many were sent.  ``calendar`` counts the jours ouvrés of the deadlines shown
    (default: metropolitan France)."""
    return _deliver(engine, settings, sender, calendar, limit)[0]


def _wait(stop_event: threading.Event, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not stop_event.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        if _wake.wait(min(left, 0.5)):
            _wake.clear()
            return


def run_outbox_forever(engine: Engine, settings: Settings, stop_event: threading.Event, *,
                       sender: Sender | None = None, calendar: BusinessCalendar | None = None) -> None:
    """Deliver due messages until ``stop_event`` is set (SMTP from the settings unless ``sender``
    is given); waits ``outbox_poll_seconds`` between rounds, less when mail is queued."""
    sender = sender or SmtpSender.from_settings(settings)
    cal = calendar or BusinessCalendar()
    log.info("outbox started (SMTP %s:%d)", settings.smtp.host, settings.smtp.port)
    while not stop_event.is_set():
        busy = False
        try:
            _sent, tried = _deliver(engine, settings, sender, cal, BATCH)
            busy = tried >= BATCH
        except Exception:
            log.exception("outbox loop error")
        if not busy:
            _wait(stop_event, settings.mail.poll_seconds)
    log.info("outbox stopped")


def start_outbox_thread(engine: Engine, settings: Settings, stop_event: threading.Event, *,
                        sender: Sender | None = None, calendar: BusinessCalendar | None = None) -> threading.Thread:
    """``run_outbox_forever`` in a daemon thread."""
    thread = threading.Thread(target=run_outbox_forever, args=(engine, settings, stop_event),
                              kwargs={"sender": sender, "calendar": calendar}, name="vpsctl-outbox", daemon=True)
    thread.start()
    return thread
