"""The one request path of every operation (orchestrator/engine/operation.py), without a
hypervisor: what is checked when a job is asked is checked again when it starts, with the VPS as
it is then; the plan is decided again; a job refused at its start undoes nothing; a job recorded
wakes the worker only once its transaction commits; a refused request records nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from orchestrator.core.errors import InvalidState
from orchestrator.core.models import Job, JobEvent, Vps, VpsStatus
from orchestrator.engine import jobs
from orchestrator.engine.worker import admit
from orchestrator.operations.resize import ResizeVps
from orchestrator.operations.stop import StopVps
from tests.api.test_change_orders import context_for, running_vps
from tests.conftest import Api


@pytest.fixture
def pubkey(tmp_path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    return (tmp_path / "k.pub").read_text().strip()


def set_status(api: Api, vps_id: str, status: VpsStatus) -> None:
    with Session(api.engine) as session:
        vps = session.get(Vps, vps_id)
        assert vps is not None
        vps.status = status
        session.add(vps)
        session.commit()


def test_the_plan_is_decided_again_when_the_job_starts(offline_api: Api, pubkey: str) -> None:
    """Asked of a running VPS beyond its live ceiling: cold, with a reboot.  The VPS is stopped
    before the job starts: then nothing needs a reboot, and the job runs with that plan."""
    api = offline_api
    vps_id = running_vps(api, api.alice, pubkey)  # 256 MiB, live ceiling 512 MiB
    asked = api.call("POST", f"/v1/vps/{vps_id}/resize", api.support, json={"memory_mib": 1024, "reason": "t"})
    assert asked.status_code == 202, asked.text
    assert (asked.json()["plan"]["mode"], asked.json()["plan"]["reboot"]) == ("cold", True)
    job_id = asked.json()["job"]["id"]
    set_status(api, vps_id, VpsStatus.stopped)
    ctx = context_for(api, job_id)
    admit(ctx, ResizeVps)
    assert (ctx.job.params["plan"]["mode"], ctx.job.params["plan"]["reboot"]) == ("live", False)
    with Session(api.engine) as session:
        stored = session.get(Job, job_id)
        assert stored is not None and stored.params["plan"]["reboot"] is False
        told = session.exec(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.step == "plan")).all()
        assert len(told) == 1 and "plan changed since the request" in told[0].message


def test_a_job_whose_vps_changed_is_refused_when_it_starts(offline_api: Api, pubkey: str) -> None:
    api = offline_api
    vps_id = running_vps(api, api.alice, pubkey)
    asked = api.call("POST", f"/v1/vps/{vps_id}/stop", api.alice)
    assert asked.status_code == 202
    set_status(api, vps_id, VpsStatus.stopped)
    with pytest.raises(InvalidState, match="'stopped'"):
        admit(context_for(api, asked.json()["job"]["id"]), StopVps)


def test_the_worker_is_woken_when_the_job_is_committed_not_before(offline_api: Api, pubkey: str) -> None:
    api = offline_api
    vps_id = running_vps(api, api.alice, pubkey)
    wake = jobs._wake
    for commit in (False, True):
        wake.clear()
        with Session(api.engine) as session:
            vps = session.get(Vps, vps_id)
            jobs.enqueue(session, StopVps.kind, vps, {}, "test", 1, 3)
            assert not wake.is_set()  # recorded, not committed: nothing to find yet
            if commit:
                session.commit()
            else:
                session.rollback()
        assert wake.is_set() is commit


def test_a_refused_request_records_nothing(offline_api: Api, pubkey: str) -> None:
    """R6.2-notice refuses the reinstall after the job row was written in the request's
    transaction: the refusal rolls it back."""
    api = offline_api
    vps_id = running_vps(api, api.alice, pubkey)
    reported = api.call("POST", f"/v1/vps/{vps_id}/compromise", api.support, json={"details": "miner"})
    assert reported.status_code == 201, reported.text
    with Session(api.engine) as session:
        before = session.exec(select(col(Job.id))).all()
    refused = api.call("POST", f"/v1/vps/{vps_id}/reinstall", api.alice,
                       json={"ssh_keys": [pubkey], "confirm_data_loss": True})
    assert refused.status_code == 422 and refused.json()["rule"] == "R6.2-notice"
    with Session(api.engine) as session:
        assert session.exec(select(col(Job.id))).all() == before
