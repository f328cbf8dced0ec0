"""R5.1-change-order end to end on a real libvirtd + QEMU: a change order from request to the guest
seeing its new memory.  The order form arrives on a real SMTP server (R8.3-ht: its prices before
tax); only the client's acceptance starts the resize; the guest's /proc/meminfo shows the growth."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from tests.conftest import Api
from tests.integration.lifecycle import eventually as wait_until
from tests.integration.lifecycle import mem_total_mib, order


def test_a_change_order_from_request_to_the_guest_seeing_its_new_memory(live_api: Api, tmp_path: Path) -> None:
    api = live_api
    guest = order(api, tmp_path, vcpus=1, memory_mib=256, disk_gib=2)
    before = mem_total_mib(guest)
    assert before <= 256

    # the client cannot resize directly: R5.1-change-order
    direct = api.call("POST", f"/v1/vps/{guest.id}/resize", api.alice, json={"memory_mib": 448})
    assert direct.status_code == 422 and direct.json()["rule"] == "R5.1-change-order"

    asked = api.call("POST", f"/v1/vps/{guest.id}/change-orders", api.alice, json={"memory_mib": 448})
    assert asked.status_code == 201, asked.text
    base = f"/v1/change-orders/{asked.json()['id']}"
    approved = api.call("POST", f"{base}/approve", api.support, json={"rent_ht": "24.90", "fee_ht": "10.00"})
    assert approved.status_code == 200, approved.text
    number = approved.json()["number"]

    # the order form, as the SMTP server received it (alice reads French)
    mail = api.wait_mail(f"Bon de commande {number}")
    assert str(mail.message["To"]) == "alice@example.test"
    body = mail.message.get_content()
    for text in (number, "256 Mio", "448 Mio", "24,90 € HT", "10,00 € HT", asked.json()["id"]):
        assert text in body, (text, body)
    # nothing ran on the VPS before the acceptance
    assert guest.record["memory_mib"] == 256
    assert not [e for e in api.call("GET", f"/v1/vps/{guest.id}/events?order=asc&limit=500", api.alice).json()["items"]
                if e["operation"] == "resize"]

    accepted = api.call("POST", f"{base}/accept", api.alice)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["plan"]["mode"] == "live"
    job = api.wait_job(accepted.json()["job"]["id"], api.alice, timeout=180)
    assert job["status"] == "succeeded", job

    wait_until(lambda: mem_total_mib(guest) > before + 150, within=90)  # the balloon gave it back
    assert mem_total_mib(guest) <= 448
    assert guest.record["memory_mib"] == 448
    done = api.call("GET", base, api.alice).json()
    assert done["status"] == "done" and done["job_id"] == job["id"]
    fee = api.call("GET", f"/v1/invoices/{done['invoice_id']}", api.alice).json()
    assert fee["purpose_ref"] == done["id"] and Decimal(str(fee["total_ht"])) == Decimal("10.00")
    events = api.call("GET", f"/v1/vps/{guest.id}/events?order=asc&limit=500", api.alice).json()["items"]
    assert any(f"order form {number} accepted" in e["message"] for e in events), events
