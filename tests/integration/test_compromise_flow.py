"""The compromise flow end to end on the real libvirtd (R6.2-notice, R6.2-backup, R6.2-transfer,
R6.2-reinstall, R5.5-cutoff, R5.5-reconnect, R9-delivery): staff report a hacked VPS -> it is cut
off and the client is emailed that it will be reinstalled after three jours ouvrés -> the client
orders a paid backup and a paid data transfer -> the backup starts once paid -> the reinstall
waits for its deadline, then installs the ordered OS with new host keys and the client's new root
key, carrying the old disk over as a data disk -> new delivery report -> reconnected once staff
record the corrective measures.  Emails are read from a real SMTP server, in the order sent."""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import paramiko
import pytest

from orchestrator.core.clock import utcnow as clock_now
from tests.conftest import Api, client_key
from tests.integration.lifecycle import eventually as wait_for
from tests.integration.lifecycle import order, worker_looked

PARIS_WEDNESDAY = datetime.fromisoformat("2026-05-13T10:00:00+02:00")  # Ascension is Thursday 14


def subjects(api: Api) -> list[str]:
    assert api.smtp is not None
    return [str(r.message["Subject"]) for r in api.smtp.collector.received]


def jobs_of(api: Api, vps_id: str) -> list[dict[str, Any]]:
    response = api.call("GET", f"/v1/jobs?vps_id={vps_id}&limit=200", api.support)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def test_compromise_from_report_to_reinstalled_vps(live_api: Api, clock: Any, tmp_path: Path) -> None:
    api = live_api
    api.settings.lifecycle.transfer_attach_delay_seconds = 20  # the tiny guest boots in a few seconds
    clock.travel_to(PARIS_WEDNESDAY)
    guest = order(api, tmp_path, name="victim")
    guest.ssh("echo precious > /data/file; sync")
    old_fingerprint, old_key = guest.record["ssh_host_keys"][0]["fingerprint"], guest.key
    api.wait_mail("Procès-verbal")  # the first delivery report
    first_mails = len(subjects(api))

    # Report: cut off at once, notice emailed, reinstall scheduled three jours ouvrés later.
    path = f"/v1/vps/{guest.id}/compromise"
    reported = api.call("POST", path, api.support, json={"details": "a crypto miner runs as root"})
    assert reported.status_code == 201, reported.text
    report = reported.json()
    # Three jours ouvrés after the report, at its Paris wall-clock time: Tuesday 19 May, 10:xx (the
    # clock, started at 10:00, ran on while the VPS was made: minutes on a loaded machine).
    reported_paris = datetime.fromisoformat(report["reported_at"]).astimezone(PARIS_WEDNESDAY.tzinfo)
    not_before = datetime.fromisoformat(report["reinstall_not_before"])
    assert not_before.isoformat().startswith("2026-05-19T10:"), report
    assert reported_paris.date() == PARIS_WEDNESDAY.date() and reported_paris.hour == 10, report
    notice = api.wait_mail("a été piraté")
    body = notice.message.get_payload(decode=True).decode()
    assert "19 mai 2026" in body  # the deadline told to the client, counted from the sending
    wait_for(lambda: guest.record["status"] == "cut_off", what="cut off")

    # The client asked by email for a backup and a transfer; each is invoiced, starts once paid.
    for kind, price in (("backup", "49.00"), ("transfer", "29.00")):
        ordered = api.call("POST", f"{path}/orders", api.support,
                           json={"kind": kind, "price_ht": price, "request_note": "client's email, acknowledged"})
        assert ordered.status_code == 201, ordered.text
    state = api.call("GET", path, api.alice).json()
    # Not before payment: both invoiced and open, and no backup asked of the queue (a job never
    # recorded cannot run); the worker, looking since, found nothing to do.
    ordered_at = clock_now()
    for invoice in (state["backup_invoice_id"], state["transfer_invoice_id"]):
        assert api.call("GET", f"/v1/invoices/{invoice}", api.alice).json()["status"] == "open"
    worker_looked(api, ordered_at, "the worker's look at the queue after the orders")
    assert [j["kind"] for j in jobs_of(api, guest.id) if j["kind"] in ("backup", "export")] == []
    assert not [b for b in api.call("GET", f"/v1/vps/{guest.id}/backups", api.alice).json()["items"]]
    for invoice in (state["backup_invoice_id"], state["transfer_invoice_id"]):
        paid = api.call("POST", f"/v1/invoices/{invoice}/payments", api.support, json={"method": "transfer"})
        assert paid.status_code == 200, paid.text
    export = wait_for(lambda: next((b for b in api.call("GET", f"/v1/vps/{guest.id}/backups", api.alice).json()["items"]
                                    if b["kind"] == "export" and b["status"] == "available"), None),
                      within=180, what="the paid backup")
    image = tmp_path / "backup.qcow2"
    downloaded = api.call("GET", export["download"], api.alice)
    assert downloaded.status_code == 200, downloaded.text[:500]
    image.write_bytes(downloaded.content)
    info = subprocess.run(["qemu-img", "info", str(image)], capture_output=True, text=True, check=True).stdout
    assert "file format: qcow2" in info and "backing file" not in info

    # The client gives the new system's root key.
    new_key, new_public = client_key(tmp_path)
    assert api.call("PUT", f"{path}/ssh-keys", api.alice, json={"ssh_keys": [new_public]}).status_code == 200

    # Just before the deadline nothing has run: the worker looked at the queue by its clock a
    # minute before the deadline and found no job ready; just after it, the reinstall runs.
    job_path = f"/v1/jobs/{report['reinstall_job_id']}"
    due = datetime.fromisoformat(report["reinstall_not_before"])
    clock.travel_to(due - timedelta(minutes=1))
    seen = worker_looked(api, due - timedelta(minutes=1), "the worker's look a minute before the deadline")
    job = api.call("GET", job_path, api.alice).json()
    # It waits for the reinstall (its deadline counted from the notice's sending), or an earlier job.
    scheduled = datetime.fromisoformat(job["scheduled_at"])
    assert seen.next_due_at is not None and seen.next_due_at <= scheduled, (seen, job)
    if seen.next_due_job_id == job["id"]:
        assert seen.next_due_at == scheduled
    assert job["status"] == "queued" and job["progress"]["done"] == 0 and job["started_at"] is None, job
    assert job["scheduled_at"] is not None
    assert guest.record["ssh_host_keys"][0]["fingerprint"] == old_fingerprint
    clock.travel_to(datetime.fromisoformat(report["reinstall_not_before"]) + timedelta(minutes=1))
    job = api.wait_job(report["reinstall_job_id"], api.alice)
    assert job["status"] == "succeeded", job
    record = guest.record
    assert record["status"] == "cut_off" and record["image"] == "tiny"  # R5.5: until reconnected
    assert record["ssh_host_keys"][0]["fingerprint"] != old_fingerprint
    api.wait_mail("Procès-verbal")
    wait_for(lambda: len([s for s in subjects(api) if "Procès-verbal" in s]) == 2, what="the second delivery report")
    assert api.call("GET", path, api.alice).status_code == 404  # resolved
    transferred = wait_for(lambda: guest.record["data_disks"], what="the transferred disk")[0]

    # Reconnected once the corrective measures are recorded; the client logs in with the new key.
    done = guest.do("reconnect", {"corrective_measures": "reinstalled; passwords changed"}, token=api.support)
    assert done["status"] == "succeeded", done
    api.wait_mail("Connexion réseau rétablie")
    guest.key = new_key
    assert guest.ssh_eventually("cat /data/file 2>/dev/null || echo fresh").strip() == "fresh"
    target = transferred["target"]
    old_data = guest.ssh(f"mkdir -p /mnt/old && mount -o ro /dev/{target}2 /mnt/old && cat /mnt/old/file")
    assert old_data.strip() == "precious"  # R6.2-transfer: the old data, on the new system
    guest.key = old_key
    with pytest.raises(paramiko.AuthenticationException):
        guest.ssh("true")

    # The client's mailbox, in order.
    received = subjects(api)[first_mails:]
    assert received == ["Votre VPS victim a été piraté : réinstallation prévue",
                        "Procès-verbal de mise à disposition de votre VPS victim",
                        "Connexion réseau rétablie pour votre VPS victim"], received
