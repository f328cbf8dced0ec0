"""Incidents through the API: the fix deadline of 48 heures ouvrées (R5.4-fix-delay) across a
weekend and public holidays, the deadline job scheduled then cancelled on resolution or fired when
the deadline passes unresolved, force majeure (R5.3-force-majeure) and the clock it stops
(R12-suspend), the termination right after a 4th occurrence of a malfunction within three months
(R5.4-repeat), and who may see and do what (R7-confidential)."""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from orchestrator.compute.hosts import Drivers
from orchestrator.core.models import Job, JobEvent, Outbox, Vps
from orchestrator.engine.worker import Worker
from tests.conftest import Api

PARIS = ZoneInfo("Europe/Paris")


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


def near(value: Any, expected: Any) -> bool:
    """``value`` is ``expected`` give or take the seconds the clock ran on since it was moved (the
    same UTC offset when both are ISO strings)."""
    if isinstance(value, str) and isinstance(expected, str) and value[-6:] != expected[-6:]:
        return False
    got = datetime.fromisoformat(value) if isinstance(value, str) else value
    want = datetime.fromisoformat(expected) if isinstance(expected, str) else expected
    return bool(got is not None and timedelta(0) <= got - want < timedelta(seconds=60))


@pytest.fixture
def vps_id(offline_api: Api, tmp_path: Path) -> str:
    """Alice's VPS, recorded running (as if its create job had run)."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    key = (tmp_path / "k.pub").read_text().strip()
    created = offline_api.unbilled("alice", json={
        "name": "shop", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [key]})
    assert created.status_code == 202, created.text
    with Session(offline_api.engine) as session:
        vps = session.get(Vps, created.json()["vps"]["id"])
        assert vps is not None
        vps.status = "running"  # type: ignore[assignment]
        session.add(vps)
        for job in session.exec(select(Job)).all():  # as if the create job had run
            job.status = "succeeded"  # type: ignore[assignment]
            session.add(job)
        session.commit()
        return vps.id


def open_incident(api: Api, vps_id: str, malfunction: str = "vps_down", **extra: Any) -> dict[str, Any]:
    response = api.call("POST", "/v1/incidents", api.support,
                        json={"vps_id": vps_id, "malfunction": malfunction, "description": "no answer", **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


def right(api: Api, vps_id: str, token: str | None = None) -> Any:
    response = api.call("GET", f"/v1/vps/{vps_id}/termination-right", token or api.alice)
    assert response.status_code == 200, response.text
    return response.json()["termination_right"]


def job(api: Api, job_id: str) -> Job:
    with Session(api.engine) as session:
        found = session.get(Job, job_id)
        assert found is not None
        return found


def mails(api: Api, template: str) -> list[Outbox]:
    with Session(api.engine) as session:
        return list(session.exec(select(Outbox).where(Outbox.template == template)).all())


def run_due_jobs(api: Api) -> int:
    """Run the jobs that are due, as the worker would (deadline jobs have no hypervisor step)."""
    worker = Worker(api.engine, api.settings, Drivers())
    ran = 0
    while worker.run_once():
        ran += 1
    return ran


@pytest.mark.parametrize(("opened", "deadline"), [
    # Wednesday before Ascension (Thursday 14 May 2026), then a weekend: 14 h + 24 h + 10 h.
    (paris(2026, 5, 13, 10), "2026-05-18T10:00:00+02:00"),
    # Friday 10:00 + 48 h ouvrées = Tuesday 10:00.
    (paris(2026, 6, 5, 10), "2026-06-09T10:00:00+02:00"),
    # Friday before Whit Monday (25 May 2026): one more day.
    (paris(2026, 5, 22, 10), "2026-05-27T10:00:00+02:00"),
])
def test_fix_deadline_skips_weekends_and_holidays(offline_api: Api, clock: Any, vps_id: str, opened: datetime,
                                                  deadline: str) -> None:
    """R5.4-fix-delay: 48 heures ouvrées counted around the clock on jours ouvrés only."""
    clock.travel_to(opened)
    incident = open_incident(offline_api, vps_id)
    assert near(incident["fix_deadline"], deadline)
    scheduled = job(offline_api, incident["deadline_job_id"])
    assert scheduled.kind == "incident_deadline" and scheduled.status == "queued"
    assert near(scheduled.scheduled_at, deadline)
    notice = mails(offline_api, "incident_notice")
    assert len(notice) == 1 and notice[0].vps_id == vps_id and notice[0].to_address == "alice@example.test"


def test_support_hours_reading_is_a_setting(offline_api: Api, clock: Any, vps_id: str) -> None:
    """R5.4-fix-delay, R4-support-hours: the alternative reading counts 09:00-17:00 on jours ouvrés."""
    offline_api.settings.contract.fix_delay_reading = "support_hours"
    clock.travel_to(paris(2026, 6, 5, 10))  # Friday 10:00: 7 h on Friday, 8 h a day for five days, 1 h
    incident = open_incident(offline_api, vps_id)
    assert near(incident["fix_deadline"], "2026-06-15T10:00:00+02:00")


def test_only_staff_open_flag_and_resolve_and_customers_see_only_their_own(offline_api: Api, clock: Any,
                                                                           vps_id: str) -> None:
    """R7-confidential; bad input is a 422 that changes nothing."""
    clock.travel_to(paris(2026, 6, 1, 10))
    body = {"vps_id": vps_id, "malfunction": "network"}
    assert offline_api.call("POST", "/v1/incidents", offline_api.alice, json=body).status_code == 403
    assert offline_api.call("POST", "/v1/incidents", json=body).status_code == 401
    for bad in ({**body, "malfunction": "Network Down"}, {**body, "malfunction": ""},
                {**body, "force_majeure": True}, {**body, "surprise": 1}, {"malfunction": "network"}):
        response = offline_api.call("POST", "/v1/incidents", offline_api.support, json=bad)
        assert response.status_code == 422, (bad, response.text)
    unknown = {**body, "vps_id": "00000000-0000-4000-8000-000000000000"}
    assert offline_api.call("POST", "/v1/incidents", offline_api.support, json=unknown).status_code == 404
    assert offline_api.call("GET", "/v1/incidents", offline_api.support).json()["items"] == []

    incident = open_incident(offline_api, vps_id, "network")
    path = f"/v1/incidents/{incident['id']}"
    mine = offline_api.call("GET", "/v1/incidents", offline_api.alice).json()["items"]
    assert [i["id"] for i in mine] == [incident["id"]]
    assert offline_api.call("GET", "/v1/incidents", offline_api.bob).json()["items"] == []
    assert offline_api.call("GET", path, offline_api.alice).status_code == 200
    assert len(offline_api.call("GET", "/v1/incidents?open=true", offline_api.alice).json()["items"]) == 1
    assert offline_api.call("GET", path, offline_api.bob).status_code == 404
    assert offline_api.call("GET", "/v1/incidents/not-a-uuid", offline_api.support).status_code == 404
    assert offline_api.call("GET", f"/v1/incidents?vps_id={vps_id}", offline_api.bob).status_code == 404
    assert offline_api.call("GET", f"/v1/vps/{vps_id}/termination-right", offline_api.bob).status_code == 404
    assert right(offline_api, vps_id, offline_api.support) is None

    fm = {"force_majeure": True, "note": "storm"}
    assert offline_api.call("POST", f"{path}/force-majeure", offline_api.alice, json=fm).status_code == 403
    assert offline_api.call("POST", f"{path}/force-majeure", offline_api.support,
                            json={"force_majeure": True}).status_code == 422
    assert offline_api.call("POST", f"{path}/resolve", offline_api.alice, json={"resolution": "x"}).status_code == 403
    assert offline_api.call("POST", f"{path}/resolve", offline_api.support, json={"resolution": ""}).status_code == 422
    assert job(offline_api, incident["deadline_job_id"]).status == "queued"  # nothing changed

    clock.advance(timedelta(hours=3))
    resolved = offline_api.call("POST", f"{path}/resolve", offline_api.support, json={"resolution": "uplink fixed"})
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["resolution"] == "uplink fixed" and resolved.json()["deadline_job_id"] is None
    again = offline_api.call("POST", f"{path}/resolve", offline_api.support, json={"resolution": "again"})
    assert again.status_code == 409
    assert offline_api.call("GET", "/v1/incidents?open=true", offline_api.alice).json()["items"] == []
    assert len(offline_api.call("GET", f"/v1/incidents?vps_id={vps_id}", offline_api.alice).json()["items"]) == 1


def test_deadline_job_is_cancelled_when_resolved_in_time(offline_api: Api, clock: Any, vps_id: str) -> None:
    """R5.4-fix-delay: resolved before its deadline, the incident gives no right and its job is called off."""
    clock.travel_to(paris(2026, 6, 5, 10))
    incident = open_incident(offline_api, vps_id)
    clock.travel_to(paris(2026, 6, 9, 9, 59))
    offline_api.call("POST", f"/v1/incidents/{incident['id']}/resolve", offline_api.support,
                     json={"resolution": "disk replaced"})
    assert job(offline_api, incident["deadline_job_id"]).status == "cancelled"
    clock.travel_to(paris(2026, 6, 10, 12))
    assert run_due_jobs(offline_api) == 0
    assert right(offline_api, vps_id) is None
    assert mails(offline_api, "termination_right_notice") == []


def test_deadline_passed_unresolved_gives_the_right_and_the_job_tells_the_client(offline_api: Api, clock: Any,
                                                                                 vps_id: str) -> None:
    """R5.4-fix-delay: past 48 heures ouvrées without a solution the client may request termination;
    the deadline job records it and emails them, once."""
    clock.travel_to(paris(2026, 6, 5, 10))
    incident = open_incident(offline_api, vps_id, "disk")
    clock.travel_to(paris(2026, 6, 9, 9, 59))
    assert right(offline_api, vps_id) is None
    assert run_due_jobs(offline_api) == 0  # not due yet
    clock.travel_to(paris(2026, 6, 9, 10, 1))
    got = right(offline_api, vps_id)
    assert got["rule"] == "R5.4-fix-delay" and near(got["since"], "2026-06-09T10:00:00+02:00"), got
    assert "disk" in got["reason"]
    shown = offline_api.call("GET", f"/v1/incidents/{incident['id']}", offline_api.alice).json()
    assert shown["deadline_passed"] is True

    assert run_due_jobs(offline_api) == 1
    fired = job(offline_api, incident["deadline_job_id"])
    assert fired.status == "succeeded", fired.error
    notices = mails(offline_api, "termination_right_notice")
    assert len(notices) == 1 and notices[0].job_id == fired.id and notices[0].to_address == "alice@example.test"
    assert "résiliation" in notices[0].subject
    with Session(offline_api.engine) as session:
        done = session.exec(select(JobEvent).where(JobEvent.job_id == fired.id, JobEvent.step == "termination_right",
                                                   JobEvent.status == "done")).one()
    assert "R5.4-fix-delay" in done.message and "still unresolved" in done.message
    # Resolved late: the right stays (it arose at the deadline); no second job, no second email.
    offline_api.call("POST", f"/v1/incidents/{incident['id']}/resolve", offline_api.support,
                     json={"resolution": "disk replaced"})
    assert right(offline_api, vps_id)["rule"] == "R5.4-fix-delay"
    assert run_due_jobs(offline_api) == 0
    assert len(mails(offline_api, "termination_right_notice")) == 1


def test_force_majeure_does_not_count_and_stops_the_clock(offline_api: Api, clock: Any, vps_id: str) -> None:
    """R5.3-force-majeure: a force-majeure incident never counts; R12-suspend: while one lasts, the
    other incidents' 48 heures ouvrées stop; their deadline jobs follow."""
    clock.travel_to(paris(2026, 6, 1, 10))  # Monday
    counted = open_incident(offline_api, vps_id, "network")
    assert near(counted["fix_deadline"], "2026-06-03T10:00:00+02:00")
    first_job = counted["deadline_job_id"]

    clock.travel_to(paris(2026, 6, 1, 12))
    storm = open_incident(offline_api, vps_id, "power", force_majeure=True,
                          force_majeure_note="regional power-grid outage")
    assert storm["force_majeure"] is True and storm["fix_deadline"] is None and storm["deadline_job_id"] is None
    stopped = offline_api.call("GET", f"/v1/incidents/{counted['id']}", offline_api.support).json()
    assert stopped["fix_deadline"] is None and stopped["deadline_job_id"] is None
    assert job(offline_api, first_job).status == "cancelled"

    clock.travel_to(paris(2026, 6, 2, 12))  # the outage lasted 24 h
    offline_api.call("POST", f"/v1/incidents/{storm['id']}/resolve", offline_api.support,
                     json={"resolution": "grid back"})
    moved = offline_api.call("GET", f"/v1/incidents/{counted['id']}", offline_api.support).json()
    assert near(moved["fix_deadline"], "2026-06-04T10:00:00+02:00")
    assert near(job(offline_api, moved["deadline_job_id"]).scheduled_at, paris(2026, 6, 4, 10))

    clock.travel_to(paris(2026, 6, 3, 11))  # past the first deadline, not the suspended one
    assert right(offline_api, vps_id) is None
    assert run_due_jobs(offline_api) == 0
    clock.travel_to(paris(2026, 6, 4, 10, 1))
    assert right(offline_api, vps_id)["rule"] == "R5.4-fix-delay"

    # Flagged as force majeure afterwards, the incident no longer counts and its job is called off.
    flagged = offline_api.call("POST", f"/v1/incidents/{counted['id']}/force-majeure", offline_api.support,
                               json={"force_majeure": True, "note": "upstream transit provider outage"})
    assert flagged.status_code == 200, flagged.text
    assert flagged.json()["force_majeure"] is True and flagged.json()["deadline_job_id"] is None
    assert job(offline_api, moved["deadline_job_id"]).status == "cancelled"
    assert right(offline_api, vps_id) is None
    # Unflagged, it counts again: a deadline job is back (already due) and fires.
    unflagged = offline_api.call("POST", f"/v1/incidents/{counted['id']}/force-majeure", offline_api.support,
                                 json={"force_majeure": False}).json()
    assert near(unflagged["fix_deadline"], "2026-06-04T10:00:00+02:00") and unflagged["deadline_job_id"]
    assert right(offline_api, vps_id)["rule"] == "R5.4-fix-delay"
    assert run_due_jobs(offline_api) == 1
    assert len(mails(offline_api, "termination_right_notice")) == 1


def test_a_due_job_waits_again_when_force_majeure_moved_the_deadline(offline_api: Api, clock: Any,
                                                                     vps_id: str) -> None:
    """R12-suspend: the deadline job recomputes the deadline when it wakes and is Deferred to it."""
    clock.travel_to(paris(2026, 6, 1, 10))
    counted = open_incident(offline_api, vps_id, "network")
    clock.travel_to(paris(2026, 6, 1, 12))
    storm = open_incident(offline_api, vps_id, "power", force_majeure=True, force_majeure_note="storm")
    clock.travel_to(paris(2026, 6, 2, 12))
    offline_api.call("POST", f"/v1/incidents/{storm['id']}/resolve", offline_api.support, json={"resolution": "ok"})
    job_id = offline_api.call("GET", f"/v1/incidents/{counted['id']}", offline_api.support).json()["deadline_job_id"]
    with Session(offline_api.engine) as session:  # as if it had been left at the first deadline
        row = session.get(Job, job_id)
        assert row is not None
        row.scheduled_at = row.not_before = paris(2026, 6, 3, 10)
        session.add(row)
        session.commit()
    clock.travel_to(paris(2026, 6, 3, 11))
    assert run_due_jobs(offline_api) == 1
    waiting = job(offline_api, job_id)
    assert waiting.status == "queued" and near(waiting.scheduled_at, paris(2026, 6, 4, 10))
    assert mails(offline_api, "termination_right_notice") == []


def test_a_fourth_occurrence_within_three_months_gives_the_right(offline_api: Api, clock: Any,
                                                                 vps_id: str) -> None:
    """R5.4-repeat: the same malfunction more than three times within three months, even when each
    was fixed in time; not after a third, and never counting force majeure (R5.3-force-majeure)."""
    starts = [paris(2026, 3, 2, 10), paris(2026, 3, 20, 10), paris(2026, 4, 15, 10)]
    for opened in starts:
        clock.travel_to(opened)
        incident = open_incident(offline_api, vps_id, "network")
        clock.advance(timedelta(hours=2))
        offline_api.call("POST", f"/v1/incidents/{incident['id']}/resolve", offline_api.support,
                         json={"resolution": "link reset"})
    assert right(offline_api, vps_id) is None  # three times: not more than three

    clock.travel_to(paris(2026, 5, 4, 10))  # the same malfunction, but force majeure: does not count
    storm = open_incident(offline_api, vps_id, "network", force_majeure=True,
                          force_majeure_note="fibre cut by public works")
    clock.advance(timedelta(hours=2))
    offline_api.call("POST", f"/v1/incidents/{storm['id']}/resolve", offline_api.support, json={"resolution": "ok"})
    assert right(offline_api, vps_id) is None
    disk = open_incident(offline_api, vps_id, "disk")  # another malfunction does not count either
    offline_api.call("POST", f"/v1/incidents/{disk['id']}/resolve", offline_api.support, json={"resolution": "ok"})
    assert right(offline_api, vps_id) is None
    assert mails(offline_api, "termination_right_notice") == []

    clock.travel_to(paris(2026, 6, 1, 10))  # within three months of 2 March 10:00 (until 2 June 10:00)
    fourth = open_incident(offline_api, vps_id, "network")
    got = right(offline_api, vps_id)
    assert got["rule"] == "R5.4-repeat" and near(got["since"], "2026-06-01T10:00:00+02:00"), got
    notices = mails(offline_api, "termination_right_notice")
    assert len(notices) == 1 and notices[0].context["right"] == "repeat" and notices[0].context["occurrences"] == 4
    assert near(fourth["fix_deadline"], "2026-06-03T10:00:00+02:00")


def test_four_occurrences_spread_over_more_than_three_months_give_no_right(offline_api: Api, clock: Any,
                                                                           vps_id: str) -> None:
    """R5.4-repeat: first to last within three months (same Paris time, three months on)."""
    for opened in (paris(2026, 3, 2, 10), paris(2026, 3, 20, 10), paris(2026, 4, 15, 10), paris(2026, 6, 2, 10, 1)):
        clock.travel_to(opened)
        incident = open_incident(offline_api, vps_id, "network")
        offline_api.call("POST", f"/v1/incidents/{incident['id']}/resolve", offline_api.support,
                         json={"resolution": "link reset"})
    assert right(offline_api, vps_id) is None
