"""R5.4-hours, the better reading: with traffic measured on the VPS concerned, the maintenance
answer ranks that day's hours by measured traffic and gives the week's quietest hour; without
measurements it falls back to daytime in Europe and the Americas, and says which basis it used."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session

from orchestrator.contract.maintenance import hour_of_week
from orchestrator.core.models import TrafficSample
from tests.conftest import Api

START = datetime(2030, 3, 4, 2, 0, tzinfo=UTC)  # a Monday
WEEK_BEFORE = START - timedelta(days=7)


def order(api: Api, token: str, name: str, key: str) -> str:
    response = api.unbilled(api.customer_of(token), json={
        "name": name, "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [key]})
    assert response.status_code == 202, response.text
    return str(response.json()["vps"]["id"])


def test_least_harmful_hour_from_measured_traffic(offline_api: Api, tmp_path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    key = (tmp_path / "k.pub").read_text().strip()
    measured = order(offline_api, offline_api.alice, "a1", key)
    unmeasured = order(offline_api, offline_api.bob, "b1", key)
    with Session(offline_api.engine) as session:
        for hour in range(24):  # a Monday: busy except 05:00 UTC
            session.add(TrafficSample(vps_id=measured, hour=WEEK_BEFORE.replace(hour=hour),
                                      rx_bytes=1_000 if hour == 5 else 10_000_000, tx_bytes=500))
        # the Wednesday after: 11:00 UTC is the quietest hour of the whole week
        session.add(TrafficSample(vps_id=measured, hour=WEEK_BEFORE.replace(hour=11) + timedelta(days=2),
                                  rx_bytes=10, tx_bytes=5))
        session.add(TrafficSample(vps_id=measured, hour=WEEK_BEFORE.replace(hour=12) + timedelta(days=2),
                                  rx_bytes=10_000, tx_bytes=0))
        session.commit()

    answer = offline_api.call("POST", "/v1/maintenance", offline_api.support, json={
        "vps_ids": [measured], "starts_at": START.isoformat(), "duration_minutes": 30, "reason": "disk firmware"})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["least_harmful_basis"] == "traffic"
    assert body["least_harmful_hours_utc"][0] == 5  # that Monday's quietest measured hour
    assert body["least_harmful_hour_of_week"] == 2 * 24 + 11
    next_start = datetime.fromisoformat(body["least_harmful_next_start"])
    assert hour_of_week(next_start) == 59 and next_start > datetime.now(UTC) - timedelta(minutes=1)

    other = offline_api.call("POST", "/v1/maintenance", offline_api.support, json={
        "vps_ids": [unmeasured], "starts_at": START.isoformat(), "duration_minutes": 30, "reason": "disk firmware"})
    assert other.status_code == 201, other.text
    assert other.json()["least_harmful_basis"] == "time_zones"
    assert other.json()["least_harmful_hour_of_week"] is None
    assert other.json()["least_harmful_hours_utc"] and other.json()["least_harmful_hours_utc"][0] != 5
