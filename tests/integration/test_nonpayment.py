"""The non-payment flow to erasure, on the real libvirtd, with the notices read from a real SMTP
server and the orchestrator's clock moved through the contract's days.

R8.7-default: an overdue invoice put in default suspends the VPS (paused in libvirt; the client
cannot resume it), the formal notice is emailed, and the data is erased five days after the
notice was *sent*, not before: the erasure job, due five days after it was queued, waits again
when the notice went out later. R10-after: the erasure is real (domain gone, every volume of the
VPS gone from both pools, its export file gone) and recorded. R10-nonpayment: the subscription ends
fifteen days after the notice. A payment before the deadline calls the erasure off and the VPS
runs again (seen from inside the guest)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import libvirt
import pytest
from sqlmodel import Session, select

from orchestrator.contract.deadlines import erasure_not_before, termination_for_nonpayment_at
from orchestrator.core.clock import utcnow as clock_now
from orchestrator.core.models import Customer, Erasure, Job, JobEvent, Outbox
from orchestrator.hypervisor.libvirt_driver import refresh_pool
from orchestrator.operations.backup import export_path
from tests.api.money import paris, subscribe
from tests.conftest import URI, Api
from tests.integration.lifecycle import Guest, eventually, order, worker_looked

pytestmark = pytest.mark.usefixtures("requires_libvirt")

FRENCH_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
                 "octobre", "novembre", "décembre")


def domain_state(guest: Guest) -> int | None:
    conn = libvirt.open(URI)
    try:
        return int(conn.lookupByUUIDString(guest.id).state()[0])
    except libvirt.libvirtError:
        return None
    finally:
        conn.close()


def volumes_of(api: Api, vps_id: str) -> list[str]:
    conn = libvirt.open(URI)
    try:
        found = []
        for name in (api.settings.hosts.storage_pool, api.settings.hosts.backup_pool):
            pool = conn.storagePoolLookupByName(name)
            refresh_pool(pool)
            found += [v.name() for v in pool.listAllVolumes(0) if v.name().startswith(f"vps-{vps_id}-")]
        return sorted(found)
    finally:
        conn.close()


def job_status(api: Api, job_id: str) -> str:
    return str(api.call("GET", f"/v1/jobs/{job_id}", api.support).json()["status"])


def wait_for(what: str, probe: Any, timeout: float = 60) -> Any:
    return eventually(probe, timeout, what)


def erasure_date_in(body: str) -> datetime:
    """The erasure date the French notice gives (Paris wall clock, to the minute)."""
    found = re.search(r"effacées à partir du\s+\w+ (\d+|1er) (\w+) (\d{4}) à (\d\d):(\d\d)", body)
    assert found, body
    day, month, year, hour, minute = found.groups()
    return paris(int(year), FRENCH_MONTHS.index(month) + 1, 1 if day == "1er" else int(day), int(hour), int(minute))


def overdue_vps(api: Api, clock: Any, tmp_path: Path) -> tuple[Guest, dict[str, Any]]:
    clock.travel_to(paris(2026, 5, 13, 10, 0))
    guest = order(api, tmp_path, unbilled=True)
    invoice = subscribe(api, guest.id, rent_ht="9.90", setup_fee_ht="0")["invoice"]
    clock.travel_to(paris(2026, 5, 20, 10, 0))  # a week past its due date
    return guest, invoice


def declare_default(api: Api, guest: Guest, invoice: dict[str, Any]) -> dict[str, Any]:
    declared = api.call("POST", f"/v1/invoices/{invoice['id']}/default", api.support)
    assert declared.status_code == 201, declared.text
    body = dict(declared.json())
    assert body["suspended_vps"] == [guest.id]
    suspend = list(api.call("GET", f"/v1/vps/{guest.id}/events?order=asc&limit=500", api.support).json()["items"])
    assert suspend
    wait_for("the suspension", lambda: guest.record["status"] == "suspended")
    assert domain_state(guest) == libvirt.VIR_DOMAIN_PAUSED
    refused = api.call("POST", f"/v1/vps/{guest.id}/resume", api.alice)
    assert refused.status_code == 422 and refused.json()["rule"] == "R8.7-default"  # suspended for non-payment
    return body


def test_nonpayment_to_erasure_and_termination(live_api: Api, clock: Any, tmp_path: Path) -> None:
    api = live_api
    guest, invoice = overdue_vps(api, clock, tmp_path)
    # A data disk, added by staff (a client's goes through an accepted order form, R5.1-change-order).
    added = guest.do("disks", {"size_gib": 1, "reason": "order form 2026-0001"}, token=api.support)
    assert added["status"] == "succeeded"
    export = guest.do("export")
    assert export["status"] == "succeeded"
    export_file = export_path(api.settings, export["id"])
    assert export_file.is_file()
    before = volumes_of(api, guest.id)
    assert any("root" in v for v in before) and any("backup" in v for v in before) and len(before) >= 4

    # The notice cannot leave at once (no address on file): it goes out two hours later.
    with Session(api.engine) as session:
        alice = session.exec(select(Customer).where(Customer.name == "alice")).one()
        alice.email = ""
        session.add(alice)
        session.commit()
    declared = declare_default(api, guest, invoice)
    [erase_job] = declared["erasure_job_ids"]
    with Session(api.engine) as session:
        alice = session.exec(select(Customer).where(Customer.name == "alice")).one()
        alice.email = "alice@example.test"
        session.add(alice)
        session.commit()
    clock.advance(timedelta(hours=2))
    mail = api.wait_mail("Mise en demeure")
    with Session(api.engine) as session:
        notice = session.exec(select(Outbox).where(Outbox.template == "payment_formal_notice")).one()
        assert notice.sent_at is not None
        sent_at = notice.sent_at
    erase_at = erasure_not_before(sent_at)
    shown = erasure_date_in(mail.message.get_content())
    assert shown <= erase_at < shown + timedelta(minutes=1)  # the email tells the deadline enforced
    assert erase_at - datetime.fromisoformat(declared["erasure_not_before"]) >= timedelta(hours=2)
    shown_on_subscription = api.call("GET", "/v1/subscriptions", api.alice).json()["items"][0]["payment_default"]
    assert datetime.fromisoformat(shown_on_subscription["erasure_not_before"]) == erase_at

    # Past the date the job was queued for, before the one counted from the sending: it waits again.
    clock.travel_to(erase_at - timedelta(minutes=30))
    deferred = wait_for("the erasure job to defer itself", lambda: _deferred(api, erase_job))
    # It looked at its deadline then, and says what it waits for: the date counted from the sending.
    assert deferred.at is not None and deferred.at >= erase_at - timedelta(minutes=30)
    assert datetime.fromisoformat(deferred.message.rpartition("; due ")[2]) == erase_at, deferred.message
    assert job_status(api, erase_job) == "queued"
    assert domain_state(guest) == libvirt.VIR_DOMAIN_PAUSED
    assert volumes_of(api, guest.id) == before and export_file.is_file()

    clock.travel_to(erase_at + timedelta(minutes=1))
    assert api.wait_job(erase_job, api.support, timeout=120)["status"] == "succeeded"
    assert domain_state(guest) is None  # R10-after: the domain is gone
    assert volumes_of(api, guest.id) == []  # root, seed, data disk, backup: all gone
    assert not export_file.exists()
    assert guest.record["status"] == "deleted"
    with Session(api.engine) as session:
        erasure = session.exec(select(Erasure).where(Erasure.vps_id == guest.id)).one()
    assert erasure.job_id == erase_job and sorted(erasure.volumes) == before
    assert erasure.reason.startswith("nonpayment")

    # R10-nonpayment: fifteen days after the notice, the contract ends.
    subscription = api.call("GET", "/v1/subscriptions", api.alice).json()["items"][0]
    assert subscription["status"] == "active"
    clock.travel_to(termination_for_nonpayment_at(sent_at) + timedelta(minutes=1))
    ended = wait_for("the termination", lambda: _terminated(api, subscription["id"]), timeout=120)
    assert ended["end_reason"] == "nonpayment"
    api.wait_mail("Fin de votre abonnement")
    # paying now changes nothing already done
    paid = api.call("POST", f"/v1/invoices/{invoice['id']}/payments", api.support, json={"method": "transfer"})
    assert paid.status_code == 200
    assert guest.record["status"] == "deleted"


def _deferred(api: Api, job_id: str) -> JobEvent | None:
    with Session(api.engine) as session:
        event = session.exec(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.status == "deferred")).first()
        if event is not None:
            session.expunge(event)
        return event


def _terminated(api: Api, subscription_id: str) -> dict[str, Any] | None:
    view = api.call("GET", f"/v1/subscriptions/{subscription_id}", api.alice).json()
    return dict(view) if view["status"] == "terminated" else None


def test_payment_before_the_deadline_cancels_the_erasure_and_resumes(live_api: Api, clock: Any,
                                                                     tmp_path: Path) -> None:
    api = live_api
    guest, invoice = overdue_vps(api, clock, tmp_path)
    declared = declare_default(api, guest, invoice)
    api.wait_mail("Mise en demeure")
    clock.advance(timedelta(days=3))
    paid = api.call("POST", f"/v1/invoices/{invoice['id']}/payments", api.support, json={"method": "transfer"})
    assert paid.status_code == 200, paid.text
    [erase_job] = declared["erasure_job_ids"]
    assert job_status(api, erase_job) == "cancelled"
    assert job_status(api, declared["termination_job_id"]) == "cancelled"
    wait_for("the VPS to run again", lambda: guest.record["status"] == "running")
    assert domain_state(guest) == libvirt.VIR_DOMAIN_RUNNING
    assert guest.ssh_eventually("echo alive").strip() == "alive"  # running again, seen from inside

    clock.advance(timedelta(days=20))  # past both deadlines: nothing happens
    # The worker looked at the queue by its clock past both deadlines and found no job ready: the
    # cancelled erasure and termination are not for it.
    past = clock_now()
    for job_id in (erase_job, declared["termination_job_id"]):
        assert datetime.fromisoformat(api.call("GET", f"/v1/jobs/{job_id}", api.support).json()["scheduled_at"]) < past
    worker_looked(api, past, "the worker's look past both deadlines")
    assert job_status(api, erase_job) == "cancelled" and job_status(api, declared["termination_job_id"]) == "cancelled"
    assert domain_state(guest) == libvirt.VIR_DOMAIN_RUNNING and volumes_of(api, guest.id)
    with Session(api.engine) as session:
        assert session.exec(select(Erasure)).first() is None
        assert {j.status for j in session.exec(select(Job).where(Job.kind == "erase")).all()} == {"cancelled"}
    assert api.call("GET", "/v1/subscriptions", api.alice).json()["items"][0]["status"] == "active"


def test_reversibility_exports_the_disk_then_ends_the_service(live_api: Api, clock: Any, tmp_path: Path) -> None:
    """R13-reversibility: the registered letter queues an export of the disk, downloadable as a
    standalone qcow2; two months later the service stops (R10-after) and the data is kept."""
    api = live_api
    clock.travel_to(paris(2026, 5, 13, 10, 0))
    guest = order(api, tmp_path, unbilled=True)
    sub = subscribe(api, guest.id, rent_ht="9.90", setup_fee_ht="0")["subscription"]
    answer = api.call("POST", f"/v1/subscriptions/{sub['id']}/reversibility", api.support,
                      json={"received_at": "2026-05-13T09:00:00+02:00"})
    assert answer.status_code == 200, answer.text
    [export_job] = answer.json()["export_job_ids"]
    assert api.wait_job(export_job, api.alice)["status"] == "succeeded"
    [export] = [b for b in api.call("GET", f"/v1/vps/{guest.id}/backups?kind=export", api.alice).json()["items"]]
    image = api.call("GET", export["download"], api.alice)
    assert image.status_code == 200 and image.content[:4] == b"QFI\xfb"  # a qcow2 image
    assert "Aucun remboursement" in api.wait_mail("changement d'hébergeur").message.get_content()
    kept = volumes_of(api, guest.id)

    clock.travel_to(paris(2026, 7, 13, 9, 1))
    ended = wait_for("the end of the service", lambda: _terminated(api, sub["id"]), timeout=150)
    assert ended["end_reason"] == "reversibility"
    wait_for("the VPS to be stopped", lambda: guest.record["status"] == "stopped")
    assert domain_state(guest) == libvirt.VIR_DOMAIN_SHUTOFF
    assert volumes_of(api, guest.id) == kept  # stopped, not erased
    api.wait_mail("Fin de votre abonnement")
