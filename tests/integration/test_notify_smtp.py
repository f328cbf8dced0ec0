"""The outbox through a real SMTP server on loopback (aiosmtpd): headers, UTF-8 French text and
SSH fingerprints arrive intact (R9-delivery); while the server is down the message stays pending
with its error, and is delivered once the server is back, ``sent_at`` being the actual sending
time (R6.2-notice, R8.7-default count their deadlines from it)."""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr, ValidationError
from sqlmodel import Session

from orchestrator.core.clock import utcnow
from orchestrator.core.models import Customer, Outbox
from orchestrator.core.settings import Settings
from orchestrator.notify import PENDING, SENT, SmtpSender, deliver_due, enqueue
from tests.smtp import Server, free_port
from tests.tls import make_ca_and_server
from tests.unit.notify.samples import FINGERPRINT, FINGERPRINT_RSA, add_customer, contexts, engine_for


@pytest.fixture
def smtp_server() -> Iterator[Server]:
    server = Server(free_port())
    server.start()
    yield server
    server.stop()


def queue(engine: Any, customer_id: int, template: str, settings: Any) -> int:
    with Session(engine) as session:
        message = enqueue(session, customer_id, template, contexts()[template], settings=settings)
        outbox_id = message.id
        session.commit()
    assert outbox_id is not None
    return outbox_id


def load(engine: Any, outbox_id: int) -> Outbox:
    with Session(engine) as session:
        message = session.get(Outbox, outbox_id)
        assert message is not None
        return message


def test_delivery_report_through_smtp(tmp_path: Path, smtp_server: Server) -> None:
    """R9-delivery, R6.5-contact: the procès-verbal reaches the address on file, in French, with the
    fingerprints."""
    engine, settings = engine_for(tmp_path, smtp_port=smtp_server.port, mail_from="Hébergement Provençal "
                                  "<noreply@hosting.example>", smtp_timeout_seconds=5)
    customer_id = add_customer(engine, "acme", "old@acme.example")
    outbox_id = queue(engine, customer_id, "delivery_report", settings)
    with Session(engine) as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        customer.email = "ops@acme.example"
        session.add(customer)
        session.commit()

    before = utcnow()
    assert deliver_due(engine, settings, SmtpSender.from_settings(settings)) == 1
    after = utcnow()

    [got] = smtp_server.collector.received
    assert got.mail_from == "noreply@hosting.example"
    assert got.rcpt_tos == ["ops@acme.example"]
    message = got.message
    assert message["From"] == "Hébergement Provençal <noreply@hosting.example>"
    assert message["To"] == "ops@acme.example"
    assert message["Subject"] == "Procès-verbal de mise à disposition de votre VPS web-prod-1"
    date = parsedate_to_datetime(message["Date"])
    assert before.replace(microsecond=0) <= date <= after
    body = message.get_content().replace("\r\n", "\n")  # as received: CRLF line ends
    assert "Le présent message vaut procès-verbal de mise à disposition." in body
    assert "Mémoire               : 4 Gio" in body
    assert "ssh root@192.0.2.45" in body
    assert FINGERPRINT in body and FINGERPRINT_RSA in body
    assert "« yes »" in body
    assert body.endswith("Hébergement Provençal\n")

    sent = load(engine, outbox_id)
    assert sent.status == SENT and sent.to_address == "ops@acme.example"
    assert sent.message_id == message["Message-ID"].strip()  # may arrive folded
    assert sent.sent_at is not None and date <= sent.sent_at and before <= sent.sent_at <= after


def test_smtp_down_then_back(tmp_path: Path, smtp_server: Server) -> None:
    """Nothing is lost while the server is down; once it is back the message is delivered and
    ``sent_at`` is when it was accepted, not when it was queued."""
    engine, settings = engine_for(tmp_path, smtp_port=smtp_server.port, outbox_retry_seconds=0,
                                  smtp_timeout_seconds=5)
    customer_id = add_customer(engine, "globex", "it@globex.example", language="en")
    smtp_server.stop()
    outbox_id = queue(engine, customer_id, "compromise_notice", settings)
    queued_at = load(engine, outbox_id).created_at
    assert queued_at is not None

    sender = SmtpSender.from_settings(settings)
    assert deliver_due(engine, settings, sender) == 0
    waiting = load(engine, outbox_id)
    assert waiting.status == PENDING and waiting.attempts == 1 and waiting.sent_at is None
    assert waiting.last_error is not None and "Connection refused" in waiting.last_error

    smtp_server.start()
    before = utcnow()
    assert deliver_due(engine, settings, sender) == 1
    after = utcnow()
    sent = load(engine, outbox_id)
    assert sent.status == SENT and sent.attempts == 2 and sent.last_error is None
    assert sent.sent_at is not None and before <= sent.sent_at <= after and sent.sent_at > queued_at
    [got] = smtp_server.collector.received
    assert got.message["Subject"] == "Your VPS web-prod-1 has been hacked: reinstallation planned"
    assert got.message["To"] == "it@globex.example"
    assert parsedate_to_datetime(got.message["Date"]) <= sent.sent_at
    assert "(Paris time, UTC+0" in got.message.get_content()


def test_login_without_leaking_the_password(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The login happens only inside STARTTLS (the server's certificate verified against the CA
    of VPSCTL_SMTP_CA_FILE); a refused login is retried later and never shows the password."""
    ca_file, tls = make_ca_and_server(tmp_path)

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"mailer", b"s3cret-pw")
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    server = Server(free_port(), authenticator=authenticator, tls_context=tls, require_starttls=True,
                    auth_require_tls=True)
    server.start()
    try:
        engine, settings = engine_for(tmp_path, smtp_port=server.port, smtp_user="mailer", smtp_starttls=True,
                                      smtp_ca_file=ca_file, smtp_password="wrong-pw-123", outbox_retry_seconds=0,
                                      smtp_timeout_seconds=5)
        customer_id = add_customer(engine)
        outbox_id = queue(engine, customer_id, "reconnect_notice", settings)
        assert deliver_due(engine, settings, SmtpSender.from_settings(settings)) == 0
        waiting = load(engine, outbox_id)
        assert waiting.status == PENDING and waiting.last_error is not None
        assert "login as 'mailer' refused" in waiting.last_error and "wrong-pw" not in waiting.last_error
        assert "wrong-pw" not in caplog.text and "wrong-pw" not in repr(settings)
        good = settings.replace(smtp_password=SecretStr("s3cret-pw"))
        assert deliver_due(engine, good, SmtpSender.from_settings(good)) == 1
        assert load(engine, outbox_id).status == SENT
        assert server.collector.received[0].message["Subject"].startswith("Connexion réseau rétablie")
    finally:
        server.stop()


def test_a_password_is_never_sent_in_clear(tmp_path: Path) -> None:
    """AUTH without STARTTLS is refused as a configuration, and by the sender itself: the server
    hears no AUTH at all."""
    heard: list[str] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        heard.append(mechanism)
        return AuthResult(success=True)

    with pytest.raises(ValidationError, match="STARTTLS"):
        Settings(state_dir=tmp_path, smtp_user="mailer", smtp_password=SecretStr("s3cret-pw"))
    server = Server(free_port(), authenticator=authenticator, auth_require_tls=False)
    server.start()
    try:
        with pytest.raises(ValueError, match="STARTTLS"):
            SmtpSender(host="127.0.0.1", port=server.port, user="mailer", password=SecretStr("s3cret-pw"))
        assert heard == []
    finally:
        server.stop()
