"""Every operation tried from every status it must refuse: 409 naming the status, no job
recorded, the VPS unchanged.  (The worker re-checks the same guard when a job starts.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from orchestrator.core.models import Backup, Job, Vps, VpsStatus
from orchestrator.engine.operation import OPERATIONS
from tests.conftest import Api

# operation -> (path suffix, method, body, token role)
CALLS: dict[str, tuple[str, str, dict[str, object], str]] = {
    "start": ("start", "POST", {}, "alice"),
    "stop": ("stop", "POST", {}, "alice"),
    "reboot": ("reboot", "POST", {}, "alice"),
    "suspend": ("suspend", "POST", {}, "alice"),
    "resume": ("resume", "POST", {}, "support"),
    "resize": ("resize", "POST", {"memory_mib": 300}, "alice"),
    "reinstall": ("reinstall", "POST", {"confirm_data_loss": True}, "alice"),
    "restore": ("restore", "POST", {"backup_id": "b1", "confirm_data_loss": True}, "alice"),
    "backup": ("backup", "POST", {}, "alice"),
    "cutoff": ("cutoff", "POST", {"reason": "hacked"}, "support"),
    "reconnect": ("reconnect", "POST", {"corrective_measures": "patched"}, "support"),
    "mail-block": ("mail-block", "POST", {}, "support"),
    "mail-unblock": ("mail-unblock", "POST", {}, "support"),
    "evidence": ("evidence", "POST", {"reason": "phishing reported"}, "support"),
    "attach-disk": ("disks", "POST", {"size_gib": 1}, "alice"),
    "rename": ("rename", "POST", {"name": "renamed"}, "alice"),
    "migrate": ("migrate", "POST", {}, "support"),
    "delete": ("?confirm_data_loss=true", "DELETE", {}, "alice"),
    "discard-backup": ("backups/b1?confirm_data_loss=true", "DELETE", {}, "alice"),
}
STATUSES = [s for s in VpsStatus]


@pytest.fixture
def pubkey(tmp_path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    return (tmp_path / "k.pub").read_text().strip()


def test_every_operation_has_a_guarded_route() -> None:
    # erase and terminate are deadline jobs of the non-payment and end-of-contract workflows
    # (R8.7-default, R10-nonpayment, R3-notice): no route of their own; nor have an incident's
    # fix deadline (R5.4-fix-delay), the reconciler's restart (R5.2-keep-running) and its
    # network-sync (an interface filter brought to the record's); a hook job is queued by the
    # worker after an operation succeeded (orchestrator/workflows/hooks.py); an evacuation is
    # asked for every VPS of a host that is down (POST /v1/hosts/{host}/evacuate, R5.2)
    deadline_jobs = {"erase", "terminate", "incident_deadline", "recover", "network-sync", "evacuate"}
    assert set(CALLS) | {"create", "detach-disk", "hook"} | deadline_jobs == set(OPERATIONS)


@pytest.mark.parametrize("status", STATUSES, ids=[s.value for s in STATUSES])
def test_refused_from_every_status_it_does_not_allow(offline_api: Api, pubkey: str, status: VpsStatus) -> None:
    created = offline_api.unbilled("alice", json={
        "name": "guarded", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [pubkey]})
    vps_id = created.json()["vps"]["id"]
    with Session(offline_api.engine) as session:
        vps = session.get(Vps, vps_id)
        vps.status = status
        # flags that the network operations look at, so that only the status decides
        session.add(vps)
        session.add(Backup(id="b1", vps_id=vps_id, kind="manual", pool="p", volume="v", status="available"))
        session.commit()
    for kind, (suffix, method, body, role) in CALLS.items():
        operation = OPERATIONS[kind]
        if status in operation.allowed_from or (kind == "delete" and status not in ("deleting", "deleted")):
            continue
        if kind == "reinstall":
            body = {**body, "ssh_keys": [pubkey]}
        with Session(offline_api.engine) as session:
            jobs_before = session.exec(select(func.count()).select_from(Job)).one()
        path = f"/v1/vps/{vps_id}/{suffix}" if not suffix.startswith("?") else f"/v1/vps/{vps_id}{suffix}"
        response = offline_api.call(method, path, getattr(offline_api, role), json=body or None)
        assert response.status_code == 409, (kind, status, response.text)
        problem = response.json()
        assert problem["current_status"] == status.value and f"'{status.value}'" in problem["detail"], problem
        with Session(offline_api.engine) as session:
            assert session.exec(select(func.count()).select_from(Job)).one() == jobs_before
            assert session.get(Vps, vps_id).status == status
