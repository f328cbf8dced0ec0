"""R6.2-notice through the API: a compromise reported on Wednesday 13 May 2026 at 10:00 in Paris
(Ascension is Thursday 14) may be reinstalled from Tuesday 19 May 10:00, not before, unless the
client's written agreement is recorded; the notice waits in the outbox; the VPS is cut off."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from orchestrator.core import clock
from orchestrator.core.models import Job, Outbox
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
    vps = offline_api.unbilled("alice", json={
        "name": "hacked", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [key]}
    ).json()["vps"]
    with Session(offline_api.engine) as session:  # as if the create job had run
        from orchestrator.core.models import Vps

        record = session.get(Vps, vps["id"])
        record.status = "running"
        session.add(record)
        session.commit()

    path = f"/v1/vps/{vps['id']}/compromise"
    assert offline_api.call("POST", path, offline_api.alice, json={"details": "x"}).status_code == 403
    reported = offline_api.call("POST", path, offline_api.support, json={"details": "a miner runs as root"})
    assert reported.status_code == 201, reported.text
    # the clock started at VPSCTL_NOW and ran on since (seconds on a busy machine)
    not_before = reported.json()["reinstall_not_before"]
    assert not_before.startswith("2026-05-19T10:00:") and not_before.endswith("+02:00"), not_before
    assert offline_api.call("POST", path, offline_api.support, json={"details": "again"}).status_code == 409
    with Session(offline_api.engine) as session:
        kinds = [j.kind for j in session.exec(select(Job)).all()]
        notices = session.exec(select(Outbox).where(Outbox.template == "compromise_notice")).all()
    assert "cutoff" in kinds  # R5.5-cutoff at once
    assert len(notices) == 1 and notices[0].vps_id == vps["id"]

    reinstall = {"ssh_keys": [key], "confirm_data_loss": True}
    refused = offline_api.call("POST", f"/v1/vps/{vps['id']}/reinstall", offline_api.support, json=reinstall)
    assert refused.status_code == 422 and refused.json()["rule"] == "R6.2-notice"
    # the same instant, give or take the seconds the clock ran on (a CI run saw 10:00:01.43)
    detail = refused.json()["detail"]
    assert "before 2026-05-19T10:00:" in detail and "the notice of 2026-05-13T10:00:" in detail, detail

    agreed = offline_api.call("POST", f"{path}/agreement", offline_api.support,
                              json={"note": "client's email of 13 May, 11:02"})
    assert agreed.status_code == 200
    accepted = offline_api.call("POST", f"/v1/vps/{vps['id']}/reinstall", offline_api.support, json=reinstall)
    assert accepted.status_code == 202, accepted.text


def _running_vps(api: Api, key: str) -> dict:
    vps = api.unbilled("alice", json={
        "name": "hacked", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [key]}
    ).json()["vps"]
    with Session(api.engine) as session:
        from orchestrator.core.models import Vps

        record = session.get(Vps, vps["id"])
        record.status = "cut_off"
        record.cut_off = True
        session.add(record)
        session.commit()
    return vps


def test_compromise_schedules_the_reinstall_and_paid_services_wait_for_payment(
        wednesday_before_ascension: None, offline_api: Api, tmp_path: Path) -> None:
    """R6.2-notice, R6.2-reinstall, R6.2-backup, R6.2-transfer: the reinstall is a deadline job of
    the ordered OS at reinstall_not_before; a backup or transfer ordered by the client is
    invoiced and the backup job appears only once the invoice is paid."""
    api = offline_api
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "new")], check=True)
    key, new_key = (tmp_path / "k.pub").read_text().strip(), (tmp_path / "new.pub").read_text().strip()
    vps = _running_vps(api, key)
    path = f"/v1/vps/{vps['id']}/compromise"
    reported = api.call("POST", path, api.support, json={"details": "phishing kit", "cut_off": False}).json()
    with Session(api.engine) as session:
        job = session.get(Job, reported["reinstall_job_id"])
        assert job.kind == "reinstall" and job.status == "queued" and job.params["image"] == "tiny"
        assert job.scheduled_at.isoformat().startswith("2026-05-19T08:00:")  # 10:00 Paris, after Ascension
        assert job.cause == f"compromise:{reported['id']}" and job.params["ssh_keys"] == [key]
    assert reported["image"] == "tiny"

    # The customer sees their own report and gives the new system's keys; bob sees nothing.
    assert api.call("GET", path, api.bob).status_code == 404
    assert api.call("GET", path, api.alice).json()["reinstall_job_id"] == reported["reinstall_job_id"]
    assert api.call("PUT", f"{path}/ssh-keys", api.bob, json={"ssh_keys": [new_key]}).status_code == 404
    assert api.call("PUT", f"{path}/ssh-keys", api.alice, json={"ssh_keys": ["not a key"]}).status_code == 422
    assert api.call("PUT", f"{path}/ssh-keys", api.alice, json={"ssh_keys": [new_key]}).status_code == 200
    with Session(api.engine) as session:
        assert session.get(Job, reported["reinstall_job_id"]).params["ssh_keys"] == [new_key]

    # Paid services: staff only, a positive price, one of each.
    order = {"kind": "backup", "price_ht": "49.00", "request_note": "client's email of 13 May 10:30, acknowledged"}
    assert api.call("POST", f"{path}/orders", api.alice, json=order).status_code == 403
    assert api.call("POST", f"{path}/orders", api.support, json={**order, "price_ht": "0"}).status_code == 422
    assert api.call("POST", f"{path}/orders", api.support, json={**order, "kind": "fork"}).status_code == 422
    ordered = api.call("POST", f"{path}/orders", api.support, json=order)
    assert ordered.status_code == 201, ordered.text
    assert api.call("POST", f"{path}/orders", api.support, json=order).status_code == 409
    invoice_id = ordered.json()["backup_invoice_id"]
    invoice = api.call("GET", f"/v1/invoices/{invoice_id}", api.alice).json()
    assert invoice["purpose"] == "compromise_backup" and invoice["status"] == "open"
    assert invoice["total_ht"] == "49.00" and invoice["total_ttc"] == "58.80"  # R8.3-ht: 20 % VAT
    assert invoice["lines"][0]["rule"] == "R6.2-backup"
    assert api.call("GET", f"/v1/invoices/{invoice_id}", api.bob).status_code == 404
    with Session(api.engine) as session:
        assert not [j for j in session.exec(select(Job)).all() if j.kind == "backup"]  # not before payment

    assert api.call("POST", f"/v1/invoices/{invoice_id}/payments", api.alice,
                    json={"method": "card"}).status_code == 403
    paid = api.call("POST", f"/v1/invoices/{invoice_id}/payments", api.support, json={"method": "transfer"})
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    assert api.call("POST", f"/v1/invoices/{invoice_id}/payments", api.support,
                    json={"method": "transfer"}).status_code == 409
    with Session(api.engine) as session:
        backups = [j for j in session.exec(select(Job)).all() if j.kind == "backup"]
        assert len(backups) == 1 and backups[0].params["kind"] == "export"
        assert backups[0].cause == f"compromise:{reported['id']}"

    # The client's written agreement brings the reinstall forward to now.
    api.call("POST", f"{path}/agreement", api.support, json={"note": "letter of 13 May"})
    with Session(api.engine) as session:
        job = session.get(Job, reported["reinstall_job_id"])
        assert job.scheduled_at < clock.utcnow()
