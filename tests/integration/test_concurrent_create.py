"""Customers who order at the same moment do not wait for each other's guests to boot: the API's
worker runs their creates at once on the real libvirtd (``VPSCTL_WORKER_SLOTS``, 4 by default),
and a create that waits for its guest's DHCP lease or SSH banner gives its slot back meanwhile.
Each guest is then logged into over SSH, its host key checked against the one reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from orchestrator.core.models import Job, JobEvent
from tests.conftest import Api, client_key
from tests.integration.lifecycle import Guest

pytestmark = pytest.mark.libvirt
AT_ONCE = 4


def test_orders_at_the_same_moment_are_created_together(live_api: Api, tmp_path: Path) -> None:
    api = live_api
    assert api.settings.jobs.worker_slots == 4  # the default
    key, public = client_key(tmp_path)
    asked = []
    for n in range(AT_ONCE):
        response = api.order(api.alice, json={
            "name": f"together{n}", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2,
            "ssh_keys": [public]})
        assert response.status_code == 202, response.text
        asked.append(response.json())
    finished = [api.wait_job(body["job"]["id"], api.support) for body in asked]
    assert [job["status"] for job in finished] == ["succeeded"] * AT_ONCE, [job["error"] for job in finished]

    with Session(api.engine) as session:
        rows = [session.get(Job, body["job"]["id"]) for body in asked]
        # All four were under way together: each started before the first one ended.
        assert max(r.started_at for r in rows) < min(r.finished_at for r in rows)
        # Booting guests were waited for without holding a slot the whole time.
        waited = session.exec(select(JobEvent).where(
            JobEvent.job_id.in_([r.id for r in rows]), JobEvent.status == "waiting")).all()  # type: ignore[attr-defined]
        assert waited, "no create gave its slot back while its guest booted"

    for n, body in enumerate(asked):
        guest = Guest(api, api.alice, body["vps"], key)
        assert guest.ssh("hostname").strip() == f"together{n}"
