"""The outbox: queued in the caller's transaction, sent later; the address is the one on file at
sending time (R6.5-contact); nothing is lost while SMTP fails; deadlines count from the sending
(R6.2-notice, R8.7-default)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from orchestrator.contract.calendar import BusinessCalendar, to_utc
from orchestrator.contract.deadlines import reinstall_not_before
from orchestrator.core import clock
from orchestrator.core.clock import utcnow
from orchestrator.core.errors import Conflict, InvalidRequest, NotFound
from orchestrator.core.models import Customer, Outbox
from orchestrator.core.settings import Settings
from orchestrator.notify import (
    FAILED,
    PENDING,
    SENT,
    FunctionSender,
    backoff_seconds,
    deliver_due,
    enqueue,
    requeue,
    run_outbox_forever,
)
from orchestrator.notify.outbox import claim_lease_seconds
from tests.unit.notify.samples import FINGERPRINT, add_customer, contexts, engine_for


class Inbox:
    """A function-backed sender that records what it was given, and fails while told to."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.failing: Exception | None = None

    def __call__(self, message: EmailMessage) -> None:
        if self.failing is not None:
            raise self.failing
        self.messages.append(message)

    @property
    def sender(self) -> FunctionSender:
        return FunctionSender(self)


@pytest.fixture
def set_clock() -> Iterator[Callable[[str], None]]:
    """Stand the orchestrator's clock on a chosen instant (it runs on from there)."""

    def _set(iso: str) -> None:
        clock.travel_to(datetime.fromisoformat(iso))

    yield _set
    clock.reset()


@pytest.fixture
def world(tmp_path: Path) -> tuple[Engine, Settings, int]:
    engine, settings = engine_for(tmp_path, outbox_max_attempts=4)
    return engine, settings, add_customer(engine)


def queue(engine: Engine, settings: Settings, customer_id: int | None, template: str = "delivery_report",
          **kwargs: object) -> int:
    with Session(engine) as session:
        message = enqueue(session, customer_id, template, contexts()[template], settings=settings, **kwargs)  # type: ignore[arg-type]
        session.commit()
        assert message.id is not None
        return message.id


def load(engine: Engine, outbox_id: int) -> Outbox:
    with Session(engine) as session:
        message = session.get(Outbox, outbox_id)
        assert message is not None
        return message


def make_due(engine: Engine, outbox_id: int) -> None:
    with Session(engine) as session:
        message = session.get(Outbox, outbox_id)
        assert message is not None
        message.next_attempt_at = utcnow() - timedelta(seconds=1)
        session.add(message)
        session.commit()


def test_backoff_schedule() -> None:
    assert [backoff_seconds(n, 60, 3600) for n in range(0, 9)] == [0, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert backoff_seconds(10_000, 60, 3600) == 3600
    assert backoff_seconds(3, 0, 3600) == 0


def test_enqueue_renders_and_stores_without_sending(world: tuple[Engine, Settings, int]) -> None:
    engine, settings, customer_id = world
    inbox = Inbox()
    with Session(engine) as session:
        message = enqueue(session, customer_id, "delivery_report", contexts()["delivery_report"], vps_id="v-1",
                          job_id="j-1", settings=settings)
        outbox_id = message.id
        assert outbox_id is not None
        session.commit()
    stored = load(engine, outbox_id)
    assert stored.status == PENDING and stored.attempts == 0 and stored.sent_at is None
    assert stored.to_address == "ops@acme.example"
    assert stored.language == "fr"
    assert stored.subject == "Procès-verbal de mise à disposition de votre VPS web-prod-1"
    assert FINGERPRINT in stored.body_text and "Bonjour acme," in stored.body_text
    assert stored.context["delivered_at"] == {"__datetime__": "2026-05-13T07:58:12+00:00"}
    assert (stored.vps_id, stored.job_id) == ("v-1", "j-1")
    assert inbox.messages == []


def test_enqueue_refuses_bad_input_in_the_callers_transaction(world: tuple[Engine, Settings, int]) -> None:
    engine, settings, customer_id = world
    with Session(engine) as session:
        with pytest.raises(InvalidRequest, match="unknown email template"):
            enqueue(session, customer_id, "welcome", {}, settings=settings)
        with pytest.raises(InvalidRequest, match="needs"):
            enqueue(session, customer_id, "cutoff_notice", {"vps_name": "x"}, settings=settings)
        with pytest.raises(NotFound):
            enqueue(session, 999, "reconnect_notice", contexts()["reconnect_notice"], settings=settings)
        with pytest.raises(InvalidRequest, match="customer or an address"):
            enqueue(session, None, "reconnect_notice", contexts()["reconnect_notice"], settings=settings)
        with pytest.raises(InvalidRequest, match=r"R6\.5-contact"):
            enqueue(session, customer_id, "reconnect_notice", contexts()["reconnect_notice"],
                    to_address="other@example.com", settings=settings)
    with Session(engine) as session:
        assert session.exec(select(Outbox)).all() == []


def test_language_follows_the_customer(tmp_path: Path) -> None:
    engine, settings = engine_for(tmp_path)
    english = add_customer(engine, "globex", "it@globex.example", language="en-GB")
    unknown = add_customer(engine, "initech", "it@initech.example", language="de")
    assert load(engine, queue(engine, settings, english)).language == "en"
    assert load(engine, queue(engine, settings, unknown)).language == "fr"
    assert load(engine, queue(engine, settings, unknown, language="en")).language == "en"


def test_delivers_and_records_the_sending(world: tuple[Engine, Settings, int]) -> None:
    engine, settings, customer_id = world
    outbox_id = queue(engine, settings, customer_id)
    inbox = Inbox()
    before = utcnow()
    assert deliver_due(engine, settings, inbox.sender) == 1
    after = utcnow()
    [email] = inbox.messages
    assert email["To"] == "ops@acme.example"
    assert email["From"] == settings.mail.sender
    assert email["Subject"] == "Procès-verbal de mise à disposition de votre VPS web-prod-1"
    assert FINGERPRINT in email.get_content()
    sent = load(engine, outbox_id)
    assert sent.status == SENT and sent.attempts == 1 and sent.last_error is None
    assert sent.sent_at is not None and before <= sent.sent_at <= after
    assert sent.message_id == email["Message-ID"]
    assert sent.body_text == email.get_content()
    assert deliver_due(engine, settings, inbox.sender) == 0  # sent once
    assert len(inbox.messages) == 1


def test_address_is_the_one_on_file_when_sent(world: tuple[Engine, Settings, int]) -> None:
    """R6.5-contact: the customer changes their email after the notice was queued; the new
    address receives it, and the record says which address was used."""
    engine, settings, customer_id = world
    outbox_id = queue(engine, settings, customer_id, "cutoff_notice")
    assert load(engine, outbox_id).to_address == "ops@acme.example"
    with Session(engine) as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        customer.email = "security@acme.example"
        session.add(customer)
        session.commit()
    inbox = Inbox()
    assert deliver_due(engine, settings, inbox.sender) == 1
    assert [m["To"] for m in inbox.messages] == ["security@acme.example"]
    assert load(engine, outbox_id).to_address == "security@acme.example"


def test_customer_without_address_waits_until_one_is_on_file(world: tuple[Engine, Settings, int]) -> None:
    engine, settings, _ = world
    customer_id = add_customer(engine, "noemail", "")
    outbox_id = queue(engine, settings, customer_id, "reconnect_notice")
    inbox = Inbox()
    assert deliver_due(engine, settings, inbox.sender) == 0
    waiting = load(engine, outbox_id)
    assert waiting.status == PENDING and waiting.attempts == 1
    assert waiting.last_error is not None and "no email address on file" in waiting.last_error
    with Session(engine) as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        customer.email = "boss@noemail.example"
        session.add(customer)
        session.commit()
    make_due(engine, outbox_id)
    assert deliver_due(engine, settings, inbox.sender) == 1
    assert inbox.messages[0]["To"] == "boss@noemail.example"


def test_message_without_customer_goes_to_the_given_address(world: tuple[Engine, Settings, int]) -> None:
    engine, settings, _ = world
    outbox_id = queue(engine, settings, None, "maintenance_notice", to_address="noc@example.net", language="en")
    inbox = Inbox()
    assert deliver_due(engine, settings, inbox.sender) == 1
    assert inbox.messages[0]["To"] == "noc@example.net"
    assert inbox.messages[0]["Subject"] == "Scheduled maintenance of your VPS web-prod-1"
    assert load(engine, outbox_id).status == SENT


def test_kept_pending_while_smtp_fails_then_sent(world: tuple[Engine, Settings, int]) -> None:
    engine, settings, customer_id = world
    outbox_id = queue(engine, settings, customer_id)
    inbox = Inbox()
    inbox.failing = ConnectionRefusedError(111, "Connection refused")
    before = utcnow()
    assert deliver_due(engine, settings, inbox.sender) == 0
    waiting = load(engine, outbox_id)
    assert waiting.status == PENDING and waiting.attempts == 1 and waiting.sent_at is None
    assert waiting.last_error == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert waiting.next_attempt_at is not None
    assert before + timedelta(seconds=60) <= waiting.next_attempt_at <= utcnow() + timedelta(seconds=60)
    # Not due yet: not tried again.
    assert deliver_due(engine, settings, inbox.sender) == 0
    assert load(engine, outbox_id).attempts == 1
    # Second failure: the delay doubles.
    make_due(engine, outbox_id)
    before = utcnow()
    deliver_due(engine, settings, inbox.sender)
    waiting = load(engine, outbox_id)
    assert waiting.attempts == 2 and waiting.next_attempt_at is not None
    assert waiting.next_attempt_at >= before + timedelta(seconds=120)
    # SMTP back: sent, error cleared.
    inbox.failing = None
    make_due(engine, outbox_id)
    assert deliver_due(engine, settings, inbox.sender) == 1
    sent = load(engine, outbox_id)
    assert sent.status == SENT and sent.attempts == 3 and sent.last_error is None and sent.sent_at is not None


def test_failed_after_max_attempts_and_requeued(tmp_path: Path) -> None:
    engine, settings = engine_for(tmp_path, outbox_max_attempts=3, outbox_retry_seconds=0)
    customer_id = add_customer(engine)
    outbox_id = queue(engine, settings, customer_id)
    inbox = Inbox()
    inbox.failing = OSError("SMTP down")
    for attempt in (1, 2):
        assert deliver_due(engine, settings, inbox.sender) == 0  # one try per call, even with no delay
        assert load(engine, outbox_id).attempts == attempt
        assert load(engine, outbox_id).status == PENDING
    deliver_due(engine, settings, inbox.sender)
    failed = load(engine, outbox_id)
    assert failed.status == FAILED and failed.attempts == 3 and failed.last_error == "OSError: SMTP down"
    assert deliver_due(engine, settings, inbox.sender) == 0
    assert load(engine, outbox_id).attempts == 3  # a failed message is kept, not retried
    pending_id = queue(engine, settings, customer_id, "reconnect_notice")
    with Session(engine) as session:
        with pytest.raises(Conflict):
            requeue(session, pending_id)
        with pytest.raises(NotFound):
            requeue(session, 9999)
    with Session(engine) as session:
        requeue(session, outbox_id)
        session.commit()
    inbox.failing = None
    assert deliver_due(engine, settings, inbox.sender) == 2
    assert load(engine, outbox_id).status == SENT
    assert load(engine, outbox_id).attempts == 1


def test_a_claimed_message_is_not_taken_by_another_process(world: tuple[Engine, Settings, int]) -> None:
    """While one deliver_due is sending, another one (another process) finds nothing to send."""
    engine, settings, customer_id = world
    queue(engine, settings, customer_id)
    nested: list[int] = []
    sent: list[EmailMessage] = []

    def slow_sender(message: EmailMessage) -> None:
        nested.append(deliver_due(engine, settings, FunctionSender(sent.append)))
        sent.append(message)

    assert deliver_due(engine, settings, FunctionSender(slow_sender)) == 1
    assert nested == [0]
    assert len(sent) == 1


def test_a_process_dying_mid_send_leaves_the_message_to_be_retried(
        world: tuple[Engine, Settings, int], set_clock: Callable[[str], None]) -> None:
    engine, settings, customer_id = world
    set_clock("2026-05-13T10:00:00+02:00")
    outbox_id = queue(engine, settings, customer_id)

    def dies(_message: EmailMessage) -> None:
        raise KeyboardInterrupt  # not an Exception: nothing is recorded, like a kill

    with pytest.raises(KeyboardInterrupt):
        deliver_due(engine, settings, FunctionSender(dies))
    claimed = load(engine, outbox_id)
    assert claimed.status == PENDING and claimed.attempts == 1
    inbox = Inbox()
    assert deliver_due(engine, settings, inbox.sender) == 0  # still under the claim's lease
    later = datetime(2026, 5, 13, 8, 0, tzinfo=UTC) + timedelta(seconds=claim_lease_seconds(settings) + 5)
    set_clock(later.isoformat())
    assert deliver_due(engine, settings, inbox.sender) == 1
    assert load(engine, outbox_id).attempts == 2


def test_deadlines_count_from_the_sending_not_the_queueing(
        world: tuple[Engine, Settings, int], set_clock: Callable[[str], None]) -> None:
    """R6.2-notice: queued Tuesday 12 May 2026 10:00 (the preview says Monday 18 May), SMTP down
    until Wednesday 13 May 10:00: the email sent says Tuesday 19 May 10:00 (Ascension on Thursday
    14), which is what the deadline computed from sent_at enforces."""
    engine, settings, customer_id = world
    set_clock("2026-05-12T10:00:00+02:00")
    outbox_id = queue(engine, settings, customer_id, "compromise_notice")
    assert "lundi 18 mai 2026 à 10:00" in load(engine, outbox_id).body_text
    inbox = Inbox()
    inbox.failing = TimeoutError("timed out")
    deliver_due(engine, settings, inbox.sender)
    set_clock("2026-05-13T10:00:00+02:00")
    inbox.failing = None
    assert deliver_due(engine, settings, inbox.sender) == 1
    body = inbox.messages[0].get_content()
    assert "mardi 19 mai 2026 à 10:00 (heure de Paris, UTC+02:00)" in body
    assert "lundi 18 mai" not in body
    sent = load(engine, outbox_id)
    assert sent.body_text == body
    assert sent.sent_at is not None
    assert to_utc(reinstall_not_before(sent.sent_at, BusinessCalendar())) >= datetime(2026, 5, 19, 8, 0, tzinfo=UTC)
    assert to_utc(reinstall_not_before(sent.sent_at, BusinessCalendar())) < datetime(2026, 5, 19, 8, 1, tzinfo=UTC)


def test_run_outbox_forever_wakes_on_commit_and_stops(tmp_path: Path) -> None:
    engine, settings = engine_for(tmp_path, outbox_poll_seconds=30)
    customer_id = add_customer(engine)
    inbox = Inbox()
    stop = threading.Event()
    thread = threading.Thread(target=run_outbox_forever, args=(engine, settings, stop),
                              kwargs={"sender": inbox.sender}, daemon=True)
    thread.start()
    try:
        time.sleep(0.1)
        outbox_id = queue(engine, settings, customer_id, "reconnect_notice")
        deadline = time.monotonic() + 5
        while load(engine, outbox_id).status != SENT and time.monotonic() < deadline:
            time.sleep(0.02)
        assert load(engine, outbox_id).status == SENT  # long before the 30 s poll
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert len(inbox.messages) == 1
