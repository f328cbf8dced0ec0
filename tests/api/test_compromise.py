"""R6.2-notice through the API: a compromise reported on Wednesday 13 May 2026 at 10:00 in Paris
(Ascension is Thursday 14) may be reinstalled from Tuesday 19 May 10:00, not before, unless the
client's written agreement is recorded; the notice waits in the outbox; the VPS is cut off."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from orchestrator import clock
from orchestrator.models import Job, Outbox
from tests.conftest import Api


@pytest.fixture
def wednesday_before_ascension(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("VPSCTL_NOW", "2026-05-13T10:00:00+02:00")
    clock.reset()
    yield
    monkeypatch.delenv("VPSCTL_NOW")
    clock.reset()


def test_compromise_notice_and_reinstall_gate(wednesday_before_ascension: None, offline_api: Api,
                                              tmp_path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    key = (tmp_path / "k.pub").read_text().strip()
    vps = offline_api.call("POST", "/v1/vps", offline_api.alice, json={
        "name": "hacked", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [key]}
    ).json()["vps"]
    with Session(offline_api.engine) as session:  # as if the create job had run
        from orchestrator.models import Vps

        record = session.get(Vps, vps["id"])
        record.status = "running"
        session.add(record)
        session.commit()

    path = f"/v1/vps/{vps['id']}/compromise"
    assert offline_api.call("POST", path, offline_api.alice, json={"details": "x"}).status_code == 403
    reported = offline_api.call("POST", path, offline_api.support, json={"details": "a miner runs as root"})
    assert reported.status_code == 201, reported.text
    # the clock started at VPSCTL_NOW and ran on for a few milliseconds since
    not_before = reported.json()["reinstall_not_before"]
    assert not_before.startswith("2026-05-19T10:00:00") and not_before.endswith("+02:00"), not_before
    assert offline_api.call("POST", path, offline_api.support, json={"details": "again"}).status_code == 409
    with Session(offline_api.engine) as session:
        kinds = [j.kind for j in session.exec(select(Job)).all()]
        notices = session.exec(select(Outbox).where(Outbox.template == "compromise_notice")).all()
    assert "cutoff" in kinds  # R5.5-cutoff at once
    assert len(notices) == 1 and notices[0].vps_id == vps["id"]

    reinstall = {"ssh_keys": [key], "confirm_data_loss": True}
    refused = offline_api.call("POST", f"/v1/vps/{vps['id']}/reinstall", offline_api.support, json=reinstall)
    assert refused.status_code == 422 and refused.json()["rule"] == "R6.2-notice"
    assert "2026-05-19T10:00:00" in refused.json()["detail"]

    agreed = offline_api.call("POST", f"{path}/agreement", offline_api.support,
                              json={"note": "client's email of 13 May, 11:02"})
    assert agreed.status_code == 200
    accepted = offline_api.call("POST", f"/v1/vps/{vps['id']}/reinstall", offline_api.support, json=reinstall)
    assert accepted.status_code == 202, accepted.text
