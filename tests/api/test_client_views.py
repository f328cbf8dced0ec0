"""A client sees their own jobs in client terms (api/views.py): not the staff's own work on their
VPS (evidence, hooks), not who among staff acted (a token's label) nor which worker (host and
pid), not the errors as they came (hosts, paths), not the host their VPS is on; and a 404 for
another customer's evidence says only "not found"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlmodel import Session

from orchestrator.core.errors import HypervisorError
from orchestrator.core.models import Evidence, Job, JobEvent, JobStatus
from tests.api.fakeworld import make_world
from tests.fakes import FakeDriver


class Broken(FakeDriver):
    """Fails to start a domain the way libvirt says it: with the host's paths in the message."""

    def start_domain(self, uuid: str) -> None:
        if self.state.domains[uuid].state.value == "shutoff" and (uuid in Broken.refuse or "*" in Broken.refuse):
            raise HypervisorError("Cannot access storage file '/var/lib/libvirt/vpsctl/secret-host-7/root.qcow2' "
                                  "on kvm-par-07.internal")
        super().start_domain(uuid)

    refuse: set[str] = set()


def text_of(answer: Any) -> str:
    return json.dumps(answer)


def test_a_client_reads_their_jobs_in_client_terms(tmp_path: Path) -> None:
    world = make_world(tmp_path, "w", driver=lambda uri, host: Broken(uri, host))
    api = world.api
    # staff suspend and resume: the client sees "staff", not the token's label
    for step, body in (("suspend", {"reason": "abuse"}), ("resume", None)):
        assert api.call("POST", f"/v1/vps/{world.vps_id}/{step}", api.support, json=body).status_code == 202
        world.run()
    # the client's own stop, then a start that fails on the host
    assert api.call("POST", f"/v1/vps/{world.vps_id}/stop", api.alice, json={"force": True}).status_code == 202
    world.run()
    Broken.refuse.add(world.vps_id)
    started = api.call("POST", f"/v1/vps/{world.vps_id}/start", api.alice).json()["job"]["id"]
    world.run()

    seen = api.call("GET", f"/v1/jobs/{started}", api.alice).json()
    assert seen["status"] == "failed" and "staff have the details" in seen["error"]
    assert seen["requested_by"] == "customer:alice"
    staff_view = api.call("GET", f"/v1/jobs/{started}", api.support).json()
    assert "/var/lib/libvirt" in staff_view["error"] and "kvm-par-07" in text_of(staff_view)
    assert any(":" in e["actor"] and e["actor"].count(":") >= 2 for e in staff_view["events"])  # host:pid:id

    log = api.call("GET", f"/v1/vps/{world.vps_id}/events?order=asc&limit=500", api.alice).json()["items"]
    everything = text_of(log) + text_of(seen)
    for secret in ("/var/lib/libvirt", "kvm-par-07", "support:support", "fake://", "h1"):
        assert secret not in everything, secret
    assert {e["actor"] for e in log} <= {"staff", "orchestrator", "customer:alice"}
    assert {e["requested_by"] for e in log if e["operation"] in ("suspend", "resume")} == {"staff"}
    assert any(e["message"] == "shut down by the guest" or e["message"] == "forced off" for e in log)
    record = api.call("GET", f"/v1/vps/{world.vps_id}", api.alice).json()
    assert record["host"] is None and api.call("GET", f"/v1/vps/{world.vps_id}", api.support).json()["host"] == "h1"


def test_a_client_reads_a_failed_create_in_client_terms(tmp_path: Path) -> None:
    """The VPS's record keeps the failure as it came (hosts, paths) for staff; its client reads
    that the operation did not complete, in the record as in the job."""
    world = make_world(tmp_path, "w", driver=lambda uri, host: Broken(uri, host))
    api = world.api
    Broken.refuse.add("*")  # every domain's start fails
    try:
        ordered = api.order(api.alice, json={"name": "second", "image": "tiny", "vcpus": 1, "memory_mib": 256,
                                             "disk_gib": 2, "ssh_keys": [world.key]})
        assert ordered.status_code == 202, ordered.text
        world.run()
    finally:
        Broken.refuse.discard("*")
    vps_id = ordered.json()["vps"]["id"]
    staff = api.call("GET", f"/v1/vps/{vps_id}", api.support).json()
    assert staff["status"] == "error" and "kvm-par-07" in staff["error"]
    client = api.call("GET", f"/v1/vps/{vps_id}", api.alice).json()
    assert client["status"] == "error"
    assert client["error"] == "the operation did not complete; the provider's staff have the details"
    listed = api.call("GET", "/v1/vps", api.alice).json()["items"]
    assert "kvm-par-07" not in text_of(listed) and "/var/lib/libvirt" not in text_of(listed)


def test_the_client_sees_that_staff_checked_not_what_was_found(tmp_path: Path) -> None:
    """R6.3-evidence: the check is in the VPS's events (a recorded action), its result is staff's."""
    world = make_world(tmp_path, "w")
    api = world.api
    asked = api.call("POST", f"/v1/vps/{world.vps_id}/evidence", api.support,
                     json={"reason": "phishing kit", "port": 8080, "path": "/login.php"})
    assert asked.status_code == 202
    job_id = asked.json()["job"]["id"]
    with Session(api.engine) as session:  # as if it had run (no fetch here): what matters is who reads it
        job = session.get(Job, job_id)
        assert job is not None
        session.add(JobEvent(job_id=job_id, vps_id=world.vps_id, step="fetch_content", status="done",
                             message="evidence e1: http://192.0.2.10:8080/login.php HTTP 200, sha256 abc",
                             actor="vm:123:abcdef"))
        job.status = JobStatus.succeeded
        session.add(job)
        session.commit()
    seen = api.call("GET", f"/v1/jobs/{job_id}", api.alice).json()
    log = api.call("GET", f"/v1/vps/{world.vps_id}/events?order=asc&limit=500", api.alice).json()["items"]
    assert seen["kind"] == "evidence" and any(e["job_id"] == job_id for e in log)
    for found in ("login.php", "sha256 abc", "phishing", "vm:123"):
        assert found not in text_of(seen) + text_of(log), found
    staff = api.call("GET", f"/v1/jobs/{job_id}", api.support).json()
    assert "login.php" in text_of(staff)


def test_another_customers_evidence_is_just_not_found(tmp_path: Path) -> None:
    world = make_world(tmp_path, "w")
    api = world.api
    with Session(api.engine) as session:
        row = Evidence(vps_id=world.vps_id, job_id="j", requested_by="support:support", reason="r", url="http://x/")
        session.add(row)
        session.commit()
        evidence_id = row.id
    for path in (f"/v1/evidence/{evidence_id}", f"/v1/evidence/{evidence_id}/download"):
        answer = api.call("GET", path, api.bob)
        assert answer.status_code == 404 and world.vps_id not in answer.text and answer.json()["detail"] == "not found"
