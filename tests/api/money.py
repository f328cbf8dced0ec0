"""Helpers for the subscription and billing API tests: a VPS recorded as running (no hypervisor
behind the offline API) and a subscription for it."""

from __future__ import annotations

import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from orchestrator.core.models import Vps, VpsStatus
from tests.conftest import Api

PARIS = ZoneInfo("Europe/Paris")


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


def running_vps(api: Api, tmp_path: Path, token: str, name: str = "web") -> str:
    """A VPS of the customer of ``token`` recorded running; made by staff without an order (no
    subscription nor invoice: the test bills it itself, e.g. with ``subscribe``)."""
    key = tmp_path / f"k-{name}"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    response = api.unbilled(api.customer_of(token), json={
        "name": name, "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2,
        "ssh_keys": [key.with_suffix(".pub").read_text().strip()]})
    assert response.status_code == 202, response.text
    vps_id = str(response.json()["vps"]["id"])
    with Session(api.engine) as session:  # as if the create job had run
        record = session.get(Vps, vps_id)
        assert record is not None
        record.status = VpsStatus.running
        session.add(record)
        session.commit()
    return vps_id


def subscribe(api: Api, vps_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"vps_id": vps_id, "term_months": 12, "billing_period": "monthly", "rent_ht": "10.00",
                            "setup_fee_ht": "50.00"}
    body.update(overrides)
    response = api.call("POST", "/v1/subscriptions", api.support, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())
