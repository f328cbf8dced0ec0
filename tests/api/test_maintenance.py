"""POST /v1/maintenance: refusals name the contract rule (R5.4-duration, R5.4-frequency);
an accepted window is recorded and every affected customer gets a notice in the outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from orchestrator.core.models import Host, Maintenance, Outbox, Vps
from tests.conftest import Api

START = datetime(2030, 3, 4, 2, 0, tzinfo=UTC)  # a Monday, 03:00 in Paris


def window(starts_at: datetime, minutes: int = 45, **target: object) -> dict[str, object]:
    return {"starts_at": starts_at.isoformat(), "duration_minutes": minutes, "reason": "kernel update", **target}


def host_id(api: Api) -> int:
    with Session(api.engine) as session:
        host = session.exec(select(Host)).first()
        assert host is not None and host.id is not None
        return host.id


def test_only_staff_schedule(offline_api: Api, two_vps: list[str]) -> None:
    response = offline_api.call("POST", "/v1/maintenance", offline_api.alice, json=window(START, vps_ids=two_vps))
    assert response.status_code == 403


def test_longer_than_an_hour_is_refused_naming_R5_4_duration(offline_api: Api, two_vps: list[str]) -> None:
    """R5.4-duration"""
    response = offline_api.call("POST", "/v1/maintenance", offline_api.support,
                                json=window(START, 61, host_id=host_id(offline_api)))
    assert response.status_code == 422
    assert response.json()["rule"] == "R5.4-duration" and "R5.4-duration" in response.json()["detail"]
    with Session(offline_api.engine) as session:
        assert session.exec(select(Maintenance)).all() == []


def test_host_maintenance_reaches_every_customer_and_the_next_one_waits_a_week(
    offline_api: Api, two_vps: list[str]
) -> None:
    """R5.4-frequency: strictly more than 7 days between two maintenances of a VPS."""
    accepted = offline_api.call("POST", "/v1/maintenance", offline_api.support,
                                json=window(START, 60, host_id=host_id(offline_api)))
    assert accepted.status_code == 201, accepted.text
    body = accepted.json()
    assert sorted(body["vps_ids"]) == sorted(two_vps) and body["least_harmful_hours_utc"]
    with Session(offline_api.engine) as session:
        notices = session.exec(select(Outbox).where(Outbox.template == "maintenance_notice")).all()
        assert sorted(n.vps_id for n in notices) == sorted(two_vps)
        assert {n.language for n in notices} == {"fr", "en"}

    exactly_a_week = offline_api.call("POST", "/v1/maintenance", offline_api.support,
                                      json=window(START + timedelta(days=7), vps_ids=[two_vps[0]]))
    assert exactly_a_week.status_code == 422 and exactly_a_week.json()["rule"] == "R5.4-frequency"
    a_week_before = offline_api.call("POST", "/v1/maintenance", offline_api.support,
                                     json=window(START - timedelta(days=6), vps_ids=[two_vps[1]]))
    assert a_week_before.status_code == 422 and a_week_before.json()["rule"] == "R5.4-frequency"
    later = offline_api.call("POST", "/v1/maintenance", offline_api.support,
                             json=window(START + timedelta(days=7, minutes=1), vps_ids=[two_vps[0]]))
    assert later.status_code == 201
    listed = offline_api.call("GET", "/v1/maintenance", offline_api.support).json()["items"]
    assert len(listed) == 2


@pytest.mark.parametrize("bad", [
    {"starts_at": "2030-03-04T02:00:00", "duration_minutes": 30, "reason": "x", "host_id": 1},  # no offset
    {"starts_at": "2001-01-01T00:00:00+00:00", "duration_minutes": 30, "reason": "x", "host_id": 1},  # past
    {"starts_at": "2030-03-04T02:00:00+00:00", "duration_minutes": 30, "reason": "x"},  # no target
    {"starts_at": "2030-03-04T02:00:00+00:00", "duration_minutes": 0, "reason": "x", "host_id": 1},
    {"starts_at": "2030-03-04T02:00:00+00:00", "duration_minutes": 30, "reason": "x", "vps_ids": ["nope"]},
])
def test_bad_windows_are_refused(offline_api: Api, two_vps: list[str], bad: dict[str, object]) -> None:
    response = offline_api.call("POST", "/v1/maintenance", offline_api.support, json=bad)
    assert 400 <= response.status_code < 500 and response.headers["content-type"].startswith(
        "application/problem+json")
    with Session(offline_api.engine) as session:
        assert session.exec(select(Maintenance)).all() == []
        assert all(v.status == "building" for v in session.exec(select(Vps)).all())
