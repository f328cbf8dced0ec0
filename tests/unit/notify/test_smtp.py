"""Building messages, and keeping the SMTP password out of every repr."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.utils import parsedate_to_datetime
from pathlib import Path

from pydantic import SecretStr

from orchestrator.core.settings import Settings
from orchestrator.notify import FunctionSender, Sender, SmtpSender, build_message
from orchestrator.notify.smtp import address_domain, new_message_id


def test_message_headers_and_utf8_body() -> None:
    when = datetime(2026, 5, 13, 8, 0, 17, tzinfo=UTC)
    message = build_message(mail_from="Hébergement <noreply@hosting.example>", to_address="ops@acme.example",
                            subject="Procès-verbal de mise à disposition de votre VPS web-1",
                            body="Procès-verbal de mise à disposition : « yes »\n", date=when,
                            message_id=new_message_id("noreply@hosting.example", "outbox.1.1"))
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed["Subject"] == "Procès-verbal de mise à disposition de votre VPS web-1"
    assert parsed["From"] == "Hébergement <noreply@hosting.example>"
    assert parsed["To"] == "ops@acme.example"
    assert parsedate_to_datetime(parsed["Date"]) == when.replace(microsecond=0)
    assert parsed["Date"].endswith("+0200")  # shown on the Paris clock
    assert parsed["Message-ID"].endswith("@hosting.example>") and "outbox.1.1" in parsed["Message-ID"]
    assert parsed.get_content_charset() == "utf-8"
    assert parsed.get_content() == "Procès-verbal de mise à disposition : « yes »\n"


def test_address_domain() -> None:
    assert address_domain("vpsctl <noreply@localhost>") == "localhost"
    assert address_domain("noreply@hosting.example") == "hosting.example"
    assert address_domain("nobody") == "localhost"


def test_password_never_shown(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, smtp_user="mailer", smtp_password=SecretStr("hunter2-s3cret"),
                        smtp_starttls=True)
    sender = SmtpSender.from_settings(settings)
    assert sender.password is not None and sender.password.get_secret_value() == "hunter2-s3cret"
    assert "hunter2" not in repr(sender)
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())


def test_senders_satisfy_the_protocol() -> None:
    assert isinstance(SmtpSender(), Sender)
    assert isinstance(FunctionSender(lambda _m: None), Sender)
