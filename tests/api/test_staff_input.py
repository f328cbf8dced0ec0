"""Staff input at the edges of the calendar and of integers gets a clear 4xx and changes nothing,
never a 500: dates far in the future or the past, ids past 64 bits, dates in the wrong order, a
cure date already past."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, func, select

from orchestrator.core.models import BreachNotice, Job, Maintenance, SyntecIndex
from tests.api.money import paris, running_vps, subscribe
from tests.conftest import Api


@pytest.fixture
def api(offline_api: Api, clock: Any) -> Api:
    clock.travel_to(paris(2026, 5, 13, 10, 0))
    return offline_api


def counts(api: Api) -> tuple[int, ...]:
    with Session(api.engine) as session:
        return tuple(int(session.exec(select(func.count()).select_from(t)).one())
                     for t in (Job, Maintenance, BreachNotice, SyntecIndex))


FAR_FUTURE, FAR_PAST = "9999-12-31", "0001-01-02"


def cases(vps_id: str, sub_id: str, unsubscribed: str) -> list[tuple[str, str, dict[str, Any]]]:
    breach = f"/v1/subscriptions/{sub_id}/breach-notices"
    return [
        ("POST", breach, {"breach": "spam", "letter_sent_on": "2026-05-13", "cure_by": FAR_FUTURE}),
        ("POST", breach, {"breach": "spam", "letter_sent_on": FAR_PAST, "cure_by": "2026-05-28"}),
        ("POST", breach, {"breach": "spam", "letter_sent_on": 0, "cure_by": "2000-01-01"}),
        ("POST", breach, {"breach": "spam", "letter_sent_on": "2026-05-01", "cure_by": "2026-05-10"}),  # past
        ("POST", breach, {"breach": "spam", "letter_sent_on": "2026-05-13", "cure_by": "2026-05-12"}),  # order
        ("POST", "/v1/maintenance", {"vps_ids": [vps_id], "starts_at": "9999-12-31T23:00:00+00:00",
                                     "duration_minutes": 30, "reason": "kernel"}),
        ("POST", "/v1/maintenance", {"host_id": 2**70, "starts_at": "2026-06-01T03:00:00+00:00",
                                     "duration_minutes": 30, "reason": "kernel"}),
        ("POST", "/v1/interruptions", {"vps_ids": [vps_id], "starts_at": "9999-12-31T23:00:00+00:00",
                                       "duration_minutes": 30, "reason": "switch"}),
        ("POST", "/v1/interruptions", {"host_id": 2**70, "starts_at": "2026-06-01T03:00:00+00:00",
                                       "duration_minutes": 30, "reason": "switch"}),
        ("POST", f"/v1/subscriptions/{sub_id}/reversibility", {"received_at": "0001-01-01T10:00:00+00:00"}),
        ("POST", f"/v1/subscriptions/{sub_id}/reversibility", {"received_at": "9999-12-31T10:00:00+00:00"}),
        ("POST", f"/v1/subscriptions/{sub_id}/non-renewal", {"channel": "registered_letter",
                                                             "received_at": "0001-01-01T10:00:00+00:00"}),
        ("POST", "/v1/billing/syntec", {"month": FAR_FUTURE, "value": "300.0"}),
        ("POST", "/v1/billing/syntec", {"month": FAR_PAST, "value": "300.0"}),
        ("POST", "/v1/subscriptions", {"vps_id": unsubscribed, "term_months": 12, "rent_ht": "10.00",
                                       "started_on": FAR_FUTURE}),
    ]


def test_staff_input_at_the_edges_is_refused_cleanly(api: Api, tmp_path: Path) -> None:
    vps_id = running_vps(api, tmp_path, api.alice)
    sub_id = subscribe(api, vps_id)["subscription"]["id"]
    other_vps = running_vps(api, tmp_path, api.alice, name="other")
    before = counts(api)
    for method, path, body in cases(vps_id, sub_id, other_vps):
        response = api.call(method, path, api.support, json=body)
        assert 400 <= response.status_code < 500, (path, body, response.status_code, response.text)
        assert response.headers["content-type"] == "application/problem+json", (path, body)
    late = api.call("GET", f"/v1/invoices/{subscribe(api, other_vps)['invoice']['id']}/late-fees?on={FAR_FUTURE}",
                    api.support)
    assert 400 <= late.status_code < 500, late.text
    assert counts(api)[1:] == before[1:]  # no maintenance, breach notice or index recorded
