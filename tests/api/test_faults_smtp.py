"""Fault: the SMTP server is down while notices are due (docs/reliability.md, "Faults injected").

A real SMTP server on loopback (tests/smtp.py) is stopped; notices are queued by the flows that
send them (a VPS's delivery report after its create and after a reinstall, R9-delivery; the
formal notice of a payment default, R8.7-default) while the real outbox loop runs.  Each attempt
is refused and recorded on its row (attempts, last error), the rows stay pending; the server is
started again on the same port and every notice arrives once, counted by Message-ID and by
outbox row; a notice queued afterwards arrives too (the loop went on) and none of the earlier
ones is sent again.  The formal notice's ``sent_at`` is when the server accepted it, after it came
back: the deadlines of R8.7-default count from it."""

from __future__ import annotations

import functools
import socket
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from orchestrator.core.clock import utcnow
from orchestrator.core.models import Invoice, Outbox
from orchestrator.notify import PENDING, SENT, start_outbox_thread
from tests.api.fakeworld import World, make_world
from tests.api.money import paris
from tests.conftest import until as shared_until
from tests.smtp import Server, free_port


def rows(world: World) -> list[Outbox]:
    with Session(world.api.engine) as session:
        return list(session.exec(select(Outbox).order_by(col(Outbox.id))).all())


until = functools.partial(shared_until, within=30)  # tests/conftest.until


def refused(port: int) -> bool:
    """Nothing listens on the port (the server really is down)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_notices_queued_while_smtp_is_down_arrive_once_when_it_is_back(tmp_path: Path, clock: Any) -> None:
    clock.travel_to(paris(2026, 5, 13, 10, 0))
    port = free_port()
    server = Server(port)
    server.start()
    server.stop()
    assert refused(port)

    world = make_world(tmp_path, "smtp", smtp_host="127.0.0.1", smtp_port=port, smtp_timeout_seconds=5,
                       outbox_poll_seconds=0.1, outbox_retry_seconds=0.2, outbox_max_backoff_seconds=1.0)
    api = world.api
    stop = threading.Event()
    outbox = start_outbox_thread(api.engine, api.settings, stop)
    try:
        # Notices due while the server is down, from the flows that queue them.
        assert world.call("reinstall") == 202
        world.run()
        clock.travel_to(paris(2026, 5, 20, 10, 0))  # the first invoice is overdue
        [invoice] = api.call("GET", "/v1/invoices", api.support).json()["items"]
        declared = api.call("POST", f"/v1/invoices/{invoice['id']}/default", api.support)
        assert declared.status_code == 201, declared.text
        world.run()  # the suspension
        due = rows(world)
        assert Counter(r.template for r in due) == {"delivery_report": 2, "payment_formal_notice": 1}, \
            [r.template for r in due]

        # The loop tries them, again and again: each attempt refused and recorded on its row.
        def retried() -> list[Outbox]:
            now = rows(world)
            return now if all(r.attempts >= 2 for r in now) else []

        tried = until("every notice tried twice while the server is down", retried)
        assert refused(port)  # still down after those attempts: they were made against no server
        for row in tried:
            assert row.status == PENDING and row.sent_at is None, (row.id, row.status)
            assert row.last_error is not None and "Connection refused" in row.last_error, row.last_error
        assert server.collector.received == []

        back_at = utcnow()
        server.start()  # the same port
        sent = until("every notice sent once the server is back",
                     lambda: (lambda now: now if all(r.status == SENT for r in now) else [])(rows(world)))
        received = [str(r.message["Message-ID"]).strip() for r in server.collector.received]
        assert len(received) == len(due)
        assert Counter(received) == Counter(r.message_id for r in sent)  # each row's message, exactly once
        assert all(r.last_error is None and r.attempts >= 3 for r in sent)
        formal = next(r for r in sent if r.template == "payment_formal_notice")
        assert formal.sent_at is not None and formal.sent_at >= back_at
        assert invoice["number"] in next(str(r.message["Subject"]) for r in server.collector.received
                                         if str(r.message["Message-ID"]).strip() == formal.message_id)

        # The loop goes on: a notice queued now (the invoice paid, the VPS resumed, reinstalled
        # again) arrives, and none of the earlier ones is sent a second time.
        with Session(api.engine) as session:
            invoice_id = session.exec(select(Invoice.id)).one()
        paid = api.call("POST", f"/v1/invoices/{invoice_id}/payments", api.support, json={"method": "transfer"})
        assert paid.status_code == 200, paid.text
        world.run()
        assert world.call("reinstall") == 202
        world.run()
        # Sent is recorded once the server accepted it, a moment after the server holds it (a CI
        # run read the rows in between): until the row says so.
        later = until("the notice queued after the outage recorded sent", lambda: (
            lambda now: now if len(now) == len(due) + 1 and all(r.status == SENT for r in now) else [])(rows(world)))
        assert len(later) == len(due) + 1 and all(r.status == SENT for r in later)
        ids = [str(r.message["Message-ID"]).strip() for r in server.collector.received]
        assert Counter(ids) == Counter(r.message_id for r in later) and len(set(ids)) == len(ids)
    finally:
        stop.set()
        outbox.join(timeout=10)
        server.stop()
