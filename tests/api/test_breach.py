"""R10-breach through the API: a formal notice by registered letter queues the termination
deadline job for the start (Paris) of the day after its cure date; the breach recorded remedied
calls it off; otherwise the subscription is terminated then (R10-after: the VPS stopped, the
client emailed); insolvency or cessation of activity terminate at once. Staff only; bad input
changes nothing. The clock stands on Wednesday 13 May 2026, 10:00 in Paris."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from orchestrator.compute.hosts import Drivers
from orchestrator.core.models import BreachNotice, Job, Outbox, Subscription, Vps
from orchestrator.engine.worker import Worker
from tests.api.money import paris, running_vps, subscribe
from tests.conftest import Api


@pytest.fixture
def api(offline_api: Api, clock: Any) -> Api:
    clock.travel_to(paris(2026, 5, 13, 10, 0))
    return offline_api


@pytest.fixture
def sub(api: Api, tmp_path: Path) -> dict[str, Any]:
    vps_id = running_vps(api, tmp_path, api.alice)
    with Session(api.engine) as session:
        for job in session.exec(select(Job)).all():  # as if the create job had run
            job.status = "succeeded"  # type: ignore[assignment]
            session.add(job)
        session.commit()
    return subscribe(api, vps_id)["subscription"]


def notice(api: Api, sub: dict[str, Any], **overrides: Any) -> Any:
    body = {"breach": "open SMTP relay used for spam (article 6.4)", "letter_sent_on": "2026-05-13",
            "cure_by": "2026-05-28", **overrides}
    return api.call("POST", f"/v1/subscriptions/{sub['id']}/breach-notices", api.support, json=body)


def job(api: Api, job_id: str) -> Job:
    with Session(api.engine) as session:
        found = session.get(Job, job_id)
        assert found is not None
        return found


def record(api: Api, model: Any, key: str) -> Any:
    with Session(api.engine) as session:
        return session.get(model, key)


def run_due_jobs(api: Api) -> int:
    """Run the jobs that are due, as the worker would (the VPS has no host: nothing to power off)."""
    worker = Worker(api.engine, api.settings, Drivers())
    ran = 0
    while worker.run_once():
        ran += 1
    return ran


def terminations(api: Api) -> list[Outbox]:
    with Session(api.engine) as session:
        return list(session.exec(select(Outbox).where(Outbox.template == "termination_notice")).all())


def test_a_notice_schedules_the_termination_the_day_after_the_cure_date(api: Api, sub: dict[str, Any]) -> None:
    """R10-breach: the letter gives until the end of cure_by (Paris): the job is at the next midnight."""
    created = notice(api, sub)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "open" and body["cure_by"] == "2026-05-28" and body["letter_sent_on"] == "2026-05-13"
    assert datetime.fromisoformat(body["terminates_at"]) == paris(2026, 5, 29, 0, 0)
    scheduled = job(api, body["termination_job_id"])
    assert scheduled.kind == "terminate" and scheduled.status == "queued"
    assert scheduled.params["reason"] == "breach" and scheduled.cause == f"breach_notice:{body['id']}"
    assert scheduled.scheduled_at == paris(2026, 5, 29, 0, 0)
    listed = api.call("GET", f"/v1/subscriptions/{sub['id']}/breach-notices", api.support).json()["items"]
    assert [n["id"] for n in listed] == [body["id"]]
    # nothing happens before the deadline
    assert run_due_jobs(api) == 0
    assert record(api, Subscription, sub["id"]).status == "active"


def test_bad_input_and_customers_are_refused_and_change_nothing(api: Api, sub: dict[str, Any]) -> None:
    assert notice(api, sub, cure_by="2026-05-13").status_code == 422  # not after the letter
    assert notice(api, sub, cure_by="2026-05-10").status_code == 422
    assert notice(api, sub, letter_sent_on="2026-05-14", cure_by="2026-05-30").status_code == 422  # future
    assert notice(api, sub, breach="   ").status_code == 422
    assert notice(api, sub, extra="x").status_code == 422
    by_customer = api.call("POST", f"/v1/subscriptions/{sub['id']}/breach-notices", api.alice, json={
        "breach": "x", "letter_sent_on": "2026-05-13", "cure_by": "2026-05-28"})
    assert by_customer.status_code == 403
    assert api.call("GET", f"/v1/subscriptions/{sub['id']}/breach-notices", api.alice).status_code == 403
    assert api.call("POST", f"/v1/subscriptions/{sub['id']}/terminate", api.alice,
                    json={"reason": "insolvency"}).status_code == 403
    assert api.call("POST", f"/v1/subscriptions/{sub['id']}/terminate", api.support,
                    json={"reason": "bored"}).status_code == 422
    missing = api.call("POST", "/v1/subscriptions/nope/breach-notices", api.support, json={
        "breach": "x", "letter_sent_on": "2026-05-13", "cure_by": "2026-05-28"})
    assert missing.status_code == 404
    assert api.call("GET", f"/v1/subscriptions/{sub['id']}/breach-notices", api.support).json()["items"] == []
    with Session(api.engine) as session:
        assert session.exec(select(Job).where(Job.kind == "terminate")).all() == []
        assert session.get(Subscription, sub["id"]).status == "active"  # type: ignore[union-attr]


def test_a_remedied_breach_calls_the_termination_off(api: Api, sub: dict[str, Any], clock: Any) -> None:
    created = notice(api, sub).json()
    clock.travel_to(paris(2026, 5, 28, 18, 0))
    done = api.call("POST", f"/v1/subscriptions/{sub['id']}/breach-notices/{created['id']}/remedied",
                    api.support, json={"note": "relay closed, checked from outside"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "remedied" and done.json()["remedy_note"] == "relay closed, checked from outside"
    cancelled = job(api, created["termination_job_id"])
    assert cancelled.status == "cancelled" and "R10-breach" in (cancelled.error or "")
    again = api.call("POST", f"/v1/subscriptions/{sub['id']}/breach-notices/{created['id']}/remedied",
                     api.support, json={})
    assert again.status_code == 409
    assert api.call("POST", f"/v1/subscriptions/{sub['id']}/breach-notices/other/remedied",
                    api.support, json={}).status_code == 404
    clock.travel_to(paris(2026, 5, 30, 10, 0))
    assert run_due_jobs(api) == 0
    assert record(api, Subscription, sub["id"]).status == "active"
    assert terminations(api) == []


def test_a_notice_without_effect_terminates_at_the_deadline(api: Api, sub: dict[str, Any], clock: Any) -> None:
    """R10-breach, R10-after: at the deadline the service stops and the client is emailed."""
    created = notice(api, sub).json()
    clock.travel_to(paris(2026, 5, 28, 23, 58))
    assert run_due_jobs(api) == 0  # the whole cure date is the client's
    clock.travel_to(paris(2026, 5, 29, 0, 1))
    assert run_due_jobs(api) == 1
    assert job(api, created["termination_job_id"]).status == "succeeded"
    ended = record(api, Subscription, sub["id"])
    assert (ended.status, ended.end_reason, ended.ends_on.isoformat()) == ("terminated", "breach", "2026-05-29")
    assert record(api, BreachNotice, created["id"]).status == "terminated"
    assert record(api, Vps, sub["vps_id"]).status == "stopped"
    [mail] = terminations(api)
    assert mail.context["reason"] == "breach"
    assert "lettre recommandée" in mail.body_text or "registered letter" in mail.body_text
    # too late to remedy
    late = api.call("POST", f"/v1/subscriptions/{sub['id']}/breach-notices/{created['id']}/remedied",
                    api.support, json={})
    assert late.status_code == 409
    assert notice(api, sub).status_code == 409  # terminated: no further notice


@pytest.mark.parametrize("reason", ["insolvency", "cessation"])
def test_insolvency_or_cessation_terminates_at_once(api: Api, sub: dict[str, Any], reason: str) -> None:
    """R10-breach: the later planned ends (a non-renewal, an open breach notice) give way."""
    planned = api.call("POST", f"/v1/subscriptions/{sub['id']}/non-renewal", api.alice, json={"channel": "online"})
    assert planned.status_code == 200, planned.text
    open_notice = notice(api, sub).json()
    answered = api.call("POST", f"/v1/subscriptions/{sub['id']}/terminate", api.support,
                        json={"reason": reason, "note": "judgment of 12 May 2026"})
    assert answered.status_code == 202, answered.text
    now_job = job(api, answered.json()["termination_job_id"])
    assert now_job.params["reason"] == reason and now_job.params["note"] == "judgment of 12 May 2026"
    assert now_job.scheduled_at is not None and now_job.scheduled_at <= paris(2026, 5, 13, 10, 1)
    assert job(api, planned.json()["termination_job_id"]).status == "cancelled"
    assert job(api, open_notice["termination_job_id"]).status == "cancelled"
    assert record(api, BreachNotice, open_notice["id"]).status == "superseded"
    assert run_due_jobs(api) == 1
    ended = record(api, Subscription, sub["id"])
    assert (ended.status, ended.end_reason, ended.ends_on.isoformat()) == ("terminated", reason, "2026-05-13")
    assert record(api, Vps, sub["vps_id"]).status == "stopped"
    [mail] = terminations(api)
    assert mail.context["reason"] == reason
    assert api.call("POST", f"/v1/subscriptions/{sub['id']}/terminate", api.support,
                    json={"reason": reason}).status_code == 409
