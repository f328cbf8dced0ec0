"""The event log on SQLite and PostgreSQL (orchestrator/core/eventlog.py): events and the
deliveries they queue are written in the transaction of their change and vanish with it; the
delivery claim works on both (``SKIP LOCKED`` on PostgreSQL); a stream never moves past a fresh
gap in event ids (a transaction that took its id and has not committed yet) but does past an old
one (a rollback)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, func, select

from api.routers.events import Reader
from orchestrator.core.accounts import create_customer
from orchestrator.core.auth import Principal
from orchestrator.core.clock import utcnow
from orchestrator.core.db import make_engine
from orchestrator.core.models import Event, Job, JobStatus, Role, Vps, VpsStatus, Webhook, WebhookDelivery
from orchestrator.notify import webhooks
from tests.databases import databases, empty_database
from tests.receiver import receiving


def count(session: Session, model: type) -> int:
    return int(session.exec(select(func.count()).select_from(model)).one())


@pytest.mark.parametrize("kind", databases())
def test_events_and_deliveries_are_written_with_their_change_and_rolled_back_with_it(
        kind: str, tmp_path: Path) -> None:
    with empty_database(kind, tmp_path) as settings:
        settings = settings.replace(webhook_retry_seconds=0, webhook_private_targets=True)  # a receiver on loopback
        engine = make_engine(settings)
        try:
            with Session(engine) as session:
                alice = create_customer(session, "alice", "a@example.test", "fr", actor="tests")
                bob = create_customer(session, "bob", "b@example.test", "en", actor="tests")
                session.commit()
                alice_id, bob_id = alice.id, bob.id
                principal = Principal(Role.customer, alice_id, "alice")
            with receiving(answers=[500]) as end:
                with Session(engine) as session:
                    webhooks.create(session, settings, principal, end.url, ["job.*", "vps.status_changed"])
                    bobs, _ = webhooks.create(session, settings, Principal(Role.customer, bob_id, "bob"),
                                              end.url, ["*"])
                    session.commit()
                    bobs_id = bobs.id
                with Session(engine) as session:
                    vps = Vps(name="v1", customer_id=alice_id, image="tiny", vcpus=1, memory_mib=256, disk_gib=2)
                    session.add(vps)
                    session.flush()
                    session.add(Job(kind="create", vps_id=vps.id))
                    session.flush()
                    assert count(session, Event) == 2 and count(session, WebhookDelivery) == 1
                    session.rollback()
                with Session(engine) as session:
                    assert count(session, Event) == 0 and count(session, WebhookDelivery) == 0
                    vps = Vps(name="v1", customer_id=alice_id, image="tiny", vcpus=1, memory_mib=256, disk_gib=2)
                    session.add(vps)
                    session.flush()
                    job = Job(kind="create", vps_id=vps.id)
                    session.add(job)
                    session.commit()
                    job.status = JobStatus.running
                    vps.status = VpsStatus.running
                    session.commit()
                    types = [e.type for e in session.exec(select(Event).order_by(col(Event.id))).all()]
                    assert types[:2] == ["vps.created", "job.requested"]
                    assert sorted(types[2:]) == ["job.started", "vps.status_changed"]  # one flush
                    assert count(session, WebhookDelivery) == 3  # alice's: job.requested, job.started, vps
                    assert session.exec(select(func.count()).select_from(WebhookDelivery)
                                        .where(WebhookDelivery.webhook_id == bobs_id)).one() == 0
                for _ in range(3):
                    webhooks.deliver_due(engine, settings)
                got = end.wait(4)
                answered = [r for r in got if r.answered == 200]
                assert sorted(r.event["type"] for r in answered) == ["job.requested", "job.started",
                                                                      "vps.status_changed"]
                retried = [r for r in answered if r.headers["webhook-attempt"] == "2"]
                assert [r.headers["webhook-id"] for r in retried] == [got[0].headers["webhook-id"]]
                with Session(engine) as session:
                    states = session.exec(select(WebhookDelivery.status, func.count())
                                          .group_by(col(WebhookDelivery.status))).all()
                    assert dict(states) == {"succeeded": 3, "failed": 1}
                    hook = session.exec(select(Webhook).where(Webhook.customer_id == alice_id)).one()
                    assert hook.consecutive_failures == 0
        finally:
            engine.dispose()


@pytest.mark.parametrize("kind", databases())
def test_a_stream_waits_at_a_fresh_gap_and_moves_past_an_old_one(kind: str, tmp_path: Path) -> None:
    with empty_database(kind, tmp_path) as settings:
        engine = make_engine(settings)
        try:
            staff = Principal(Role.support, None, "support")
            with Session(engine) as session:
                for event_id in (1, 2, 4):  # 3: taken by a transaction not committed yet
                    session.add(Event(id=event_id, type="job.started", subject=str(event_id)))
                session.commit()
            reader = Reader(engine, staff, 0, gap_wait=0.5)
            assert [e.id for e in reader.read()] == [1, 2]
            assert reader.read() == []
            with Session(engine) as session:
                session.add(Event(id=3, type="job.started", subject="3"))  # it commits
                session.commit()
            assert [e.id for e in reader.read()] == [3, 4]

            with Session(engine) as session:
                session.add(Event(id=6, type="job.started", subject="6"))  # 5 rolled back: never comes
                session.add(Event(id=8, type="job.started", subject="8", created_at=utcnow() - timedelta(hours=1)))
                session.commit()
            assert reader.read() == []
            time.sleep(0.6)
            assert [e.id for e in reader.read()] == [6, 8]
            # An old gap (the event after it was recorded long ago) holds no reader up.
            late = Reader(engine, staff, 6, gap_wait=60)
            assert [e.id for e in late.read()] == [8]
        finally:
            engine.dispose()
