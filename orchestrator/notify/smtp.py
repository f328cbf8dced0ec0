"""Sending email: a ``Sender`` protocol, an SMTP sender over ``smtplib``, and a function-backed
sender for tests and other transports.  The SMTP password is a ``SecretStr``: it never appears in a
repr, a log line or an error message of ours."""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Protocol, runtime_checkable

from pydantic import SecretStr

from orchestrator.contract.calendar import to_paris
from orchestrator.core.settings import Settings

log = logging.getLogger(__name__)


@runtime_checkable
class Sender(Protocol):
    """Hands one message to the mail system; raises when it was not accepted."""

    def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True)
class FunctionSender:
    """A Sender backed by a plain function (tests, or another transport)."""

    function: Callable[[EmailMessage], None]

    def send(self, message: EmailMessage) -> None:
        self.function(message)


class SmtpRefused(Exception):
    """The server accepted the connection but refused the recipient."""


@dataclass(frozen=True)
class SmtpSender:
    """One SMTP connection per message: connect, EHLO, optional STARTTLS (certificate verified)
    and login — never a login without STARTTLS —, send, QUIT."""

    host: str = "127.0.0.1"
    port: int = 25
    user: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    starttls: bool = False
    timeout: float = 30.0
    ca_file: str | None = None  # verify the server's certificate by this CA (default: the system's)

    def __post_init__(self) -> None:
        if self.user and not self.starttls:
            raise ValueError("an SMTP login needs STARTTLS: the password never travels in clear")

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpSender:
        smtp = settings.smtp
        return cls(host=smtp.host, port=smtp.port, user=smtp.user, password=smtp.password, starttls=smtp.starttls,
                   timeout=smtp.timeout_seconds, ca_file=str(smtp.ca_file) if smtp.ca_file else None)

    def send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=self.ca_file))
                smtp.ehlo()
            if self.user:
                secret = self.password.get_secret_value() if self.password is not None else ""
                try:
                    smtp.login(self.user, secret)
                except smtplib.SMTPAuthenticationError as exc:
                    # The server's reply only; never the credentials.
                    raise SmtpRefused(f"SMTP login as {self.user!r} refused: {exc.smtp_code}") from None
            refused = smtp.send_message(message)
            if refused:
                raise SmtpRefused(f"recipients refused: {', '.join(sorted(refused))}")
        log.debug("SMTP %s:%d accepted %s", self.host, self.port, message["Message-ID"])


def address_domain(address: str) -> str:
    """The domain of an address such as 'vpsctl <noreply@example.com>' (for Message-IDs)."""
    _name, addr = parseaddr(address)
    _local, at, domain = addr.rpartition("@")
    return domain if at and domain else "localhost"


def new_message_id(mail_from: str, idstring: str | None = None) -> str:
    return make_msgid(idstring=idstring, domain=address_domain(mail_from))


def build_message(*, mail_from: str, to_address: str, subject: str, body: str, date: datetime,
                  message_id: str) -> EmailMessage:
    """A plain-text UTF-8 message.  The Date header shows the Paris time of ``date``."""
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = to_address
    message["Subject"] = subject
    message["Date"] = format_datetime(to_paris(date))
    message["Message-ID"] = message_id
    message.set_content(body, charset="utf-8")
    return message
