"""POST /v1/interruptions (R5.4-notice): an interruption that is not normal maintenance is
announced beforehand to every affected client; it does not count as maintenance (R5.4-frequency);
staff see whether the notices have left before starting the work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from orchestrator.core import clock
from orchestrator.core.models import Maintenance, Outbox
from tests.api.test_maintenance import START, host_id, window
from tests.conftest import Api


def test_an_interruption_is_announced_beforehand_to_every_client(offline_api: Api, two_vps: list[str]) -> None:
    """R5.4-notice"""
    api = offline_api
    body = {**window(START, 180, host_id=host_id(api)), "reason": "replacement of the host's disks"}
    assert api.call("POST", "/v1/interruptions", api.alice, json=body).status_code == 403
    created = api.call("POST", "/v1/interruptions", api.support, json=body)
    assert created.status_code == 201, created.text
    out = created.json()
    assert sorted(out["vps_ids"]) == sorted(two_vps) and out["duration_minutes"] == 180
    assert out["notices_sent"] is False and out["notices_pending"] == 2  # no outbox thread here
    with Session(api.engine) as session:
        notices = session.exec(select(Outbox).where(Outbox.template == "interruption_notice")).all()
        assert sorted(n.language for n in notices) == ["en", "fr"]  # bob reads English, alice French
        assert all("replacement of the host's disks" in n.body_text for n in notices)
        for notice in notices:  # as the outbox would, once SMTP accepted them
            notice.sent_at, notice.status = clock.utcnow(), "sent"
            session.add(notice)
        session.commit()
    again = api.call("GET", f"/v1/interruptions/{out['id']}", api.support).json()
    assert again["notices_sent"] is True and again["notices_pending"] == 0

    # Not maintenance: a maintenance the next day is still allowed (R5.4-frequency counts maintenance).
    maintenance = api.call("POST", "/v1/maintenance", api.support,
                           json=window(START + timedelta(days=1), vps_ids=two_vps))
    assert maintenance.status_code == 201, maintenance.text
    maintenances = api.call("GET", "/v1/maintenance", api.support).json()["items"]
    assert [m["id"] for m in maintenances] == [maintenance.json()["id"]]
    assert [i["id"] for i in api.call("GET", "/v1/interruptions", api.support).json()["items"]] == [out["id"]]


def test_an_interruption_cannot_be_announced_after_it_started(offline_api: Api, two_vps: list[str]) -> None:
    """R5.4-notice: beforehand, or not at all."""
    api = offline_api
    past = datetime.now(UTC) - timedelta(minutes=5)
    refused = api.call("POST", "/v1/interruptions", api.support, json=window(past, 120, vps_ids=two_vps))
    assert refused.status_code == 422 and refused.json()["rule"] == "R5.4-notice"
    bad: list[dict[str, Any]] = [
        window(START, 0, vps_ids=two_vps), window(START, 120), window(START, 120, vps_ids=["nope"]),
        {**window(START, 120, vps_ids=two_vps), "starts_at": "2030-03-04T02:00:00"},  # no offset
    ]
    codes = [api.call("POST", "/v1/interruptions", api.support, json=b).status_code for b in bad]
    assert codes == [422, 422, 404, 422]
    with Session(api.engine) as session:
        assert session.exec(select(Maintenance)).all() == []
        assert session.exec(select(Outbox)).all() == []
