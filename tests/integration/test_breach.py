"""R10-breach on the real libvirtd: a formal notice by registered letter that had no effect by its
cure date ends the contract by right as the next day begins in Paris (R10-after: the domain is
shut off, the data kept, the termination notice read from a real SMTP server); the same notice
recorded remedied in time leaves the guest running."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import libvirt
import pytest

from tests.api.money import paris, subscribe
from tests.conftest import Api
from tests.integration.lifecycle import eventually, order
from tests.integration.test_nonpayment import domain_state, volumes_of

pytestmark = pytest.mark.usefixtures("requires_libvirt")


def _status(api: Api, subscription_id: str) -> str:
    return str(api.call("GET", f"/v1/subscriptions/{subscription_id}", api.support).json()["status"])


def test_a_notice_without_effect_stops_the_service_at_the_deadline(live_api: Api, clock: Any,
                                                                   tmp_path: Path) -> None:
    api = live_api
    clock.travel_to(paris(2026, 5, 13, 10, 0))
    guest = order(api, tmp_path, unbilled=True)
    sub = subscribe(api, guest.id, rent_ht="9.90", setup_fee_ht="0")["subscription"]
    remedied = api.call("POST", f"/v1/subscriptions/{sub['id']}/breach-notices", api.support, json={
        "breach": "open relay", "letter_sent_on": "2026-05-13", "cure_by": "2026-05-20"}).json()
    kept = api.call("POST", f"/v1/subscriptions/{sub['id']}/breach-notices/{remedied['id']}/remedied",
                    api.support, json={"note": "closed"})
    assert kept.status_code == 200, kept.text
    unheeded = api.call("POST", f"/v1/subscriptions/{sub['id']}/breach-notices", api.support, json={
        "breach": "resale of the service (article 6)", "letter_sent_on": "2026-05-13", "cure_by": "2026-05-27"})
    assert unheeded.status_code == 201, unheeded.text
    volumes = volumes_of(api, guest.id)

    clock.travel_to(paris(2026, 5, 21, 10, 0))  # past the remedied notice's deadline: nothing happens
    assert api.wait_job(remedied["termination_job_id"], api.support)["status"] == "cancelled"
    assert domain_state(guest) == libvirt.VIR_DOMAIN_RUNNING
    assert guest.ssh("echo alive").strip() == "alive"
    assert _status(api, sub["id"]) == "active"

    clock.travel_to(paris(2026, 5, 28, 0, 1))  # the day after cure_by has begun in Paris
    eventually(lambda: _status(api, sub["id"]) == "terminated", 150, "the termination")
    assert api.wait_job(unheeded.json()["termination_job_id"], api.support)["status"] == "succeeded"
    view = api.call("GET", f"/v1/subscriptions/{sub['id']}", api.alice).json()
    assert view["end_reason"] == "breach" and view["ends_on"] == "2026-05-28"
    eventually(lambda: guest.record["status"] == "stopped", 60, "the VPS stopped")
    assert domain_state(guest) == libvirt.VIR_DOMAIN_SHUTOFF
    assert volumes_of(api, guest.id) == volumes  # stopped, not erased
    body = api.wait_mail("Fin de votre abonnement").message.get_content()
    assert "mise en demeure adressée par lettre recommandée" in body
    refused = api.call("POST", f"/v1/vps/{guest.id}/start", api.alice, json={})
    assert refused.status_code == 422 and refused.json()["rule"] == "R10-after"
