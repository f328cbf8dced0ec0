"""Hook jobs (orchestrator/workflows/hooks.py, orchestrator/operations/hook.py) through the real queue and
worker, with the runner swapped for a recording one: queued once per succeeded operation whose
event has a playbook, in the operation's place in the VPS's queue, retried then recorded failed
with the output tail, and never failing the operation."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlmodel import Session, col, select

from orchestrator.adapters import ansible
from orchestrator.core import clock
from orchestrator.core.db import make_engine
from orchestrator.core.models import Customer, Host, Job, JobEvent, JobStatus, Vps, VpsStatus
from orchestrator.core.settings import Settings
from orchestrator.engine import jobs
from orchestrator.engine.operation import OPERATIONS, Operation, Step
from orchestrator.engine.worker import Worker
from orchestrator.workflows import hooks


class Evented(Operation):
    """Stands for an operation whose success is an event (no hypervisor needed)."""

    kind: ClassVar[str] = "evented"
    allowed_from = frozenset(VpsStatus)
    steps = (Step("nothing", lambda ctx: "done"),)


class Plain(Operation):
    kind: ClassVar[str] = "plain"
    allowed_from = frozenset(VpsStatus)
    steps = (Step("nothing", lambda ctx: "done"),)


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[Path, dict[str, Any]]] = []
        self.fail = fail

    def __call__(self, playbook: Path, extravars: dict[str, Any], *, work_dir: Path,
                 timeout: float) -> ansible.HookResult:
        self.calls.append((playbook, extravars))
        if self.fail:
            return ansible.HookResult("failed", 2, "TASK [notify the CMDB]\nfatal: [localhost]: CMDB answered 503")
        return ansible.HookResult("successful", 0, "PLAY RECAP ok=1")


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Settings, str]]:
    (tmp_path / "hooks").mkdir()
    (tmp_path / "hooks" / "vps_evented.yml").write_text("- hosts: localhost\n  tasks: []\n")
    settings = Settings(state_dir=tmp_path, hooks_dir=str(tmp_path / "hooks"), hook_max_attempts=2,
                        job_heartbeat_seconds=0.2)
    monkeypatch.setitem(OPERATIONS, Evented.kind, Evented)
    monkeypatch.setitem(OPERATIONS, Plain.kind, Plain)
    monkeypatch.setitem(hooks.EVENTS, Evented.kind, "vps_evented")
    monkeypatch.setitem(hooks.EVENTS, Plain.kind, "vps_without_playbook")
    engine = make_engine(settings)
    with Session(engine) as session:
        customer, host = Customer(name="alice", email="alice@example.test"), Host(name="h1", uri="test:///default",
                                                                                  site="Marseille")
        session.add(customer)
        session.add(host)
        session.flush()
        vps = Vps(name="web", customer_id=customer.id, host_id=host.id, image="tiny", vcpus=1, memory_mib=256,
                  disk_gib=2, status=VpsStatus.running, addresses=["192.168.151.9"],
                  ssh_authorized_keys=["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPrivateToTheCustomer alice@laptop"],
                  ssh_host_keys=[{"type": "ssh-ed25519", "public_key": "ssh-ed25519 AAAA", "fingerprint": "SHA256:hk"}])
        session.add(vps)
        session.commit()
        vps_id = vps.id
    yield engine, settings, vps_id
    clock.reset()
    engine.dispose()


def add(engine: Any, vps_id: str, kind: str) -> str:
    with Session(engine) as session:
        job = jobs.enqueue(session, kind, session.get(Vps, vps_id), {}, "test", 1, 3)
        session.commit()
        return job.id


def hook_jobs(engine: Any, vps_id: str) -> list[Job]:
    with Session(engine) as session:
        return list(session.exec(select(Job).where(Job.vps_id == vps_id, Job.kind == hooks.HOOK_KIND)).all())


def status(engine: Any, job_id: str) -> JobStatus:
    with Session(engine) as session:
        row = session.get(Job, job_id)
        assert row is not None
        return row.status


def test_a_succeeded_operation_queues_its_hook_which_runs_with_public_facts(world: Any) -> None:
    engine, settings, vps_id = world
    runner = Recorder()
    previous = ansible.use_runner(runner)
    try:
        worker = Worker(engine, settings)
        operation = add(engine, vps_id, Evented.kind)
        assert worker.run_once()
        assert status(engine, operation) == JobStatus.succeeded
        [hook] = hook_jobs(engine, vps_id)
        assert hook.status == JobStatus.queued and hook.params["operation_job_id"] == operation
        assert worker.run_once()
    finally:
        ansible.use_runner(previous)
    assert status(engine, hook.id) == JobStatus.succeeded
    [(playbook, extravars)] = runner.calls
    assert playbook == Path(settings.hooks.directory) / "vps_evented.yml"
    assert extravars["event"] == "vps_evented"
    assert extravars["vps"]["addresses"] == ["192.168.151.9"]
    assert extravars["vps"]["ssh_host_key_fingerprints"] == ["SHA256:hk"]
    assert extravars["customer_name"] == "alice" and extravars["hypervisor"] == {"name": "h1", "site": "Marseille"}
    assert extravars["inventory_path"] == str(settings.state_dir / "hooks" / "inventory.ini")
    # public facts only (R7-confidential): no email, no client key
    text = repr(extravars)
    assert "alice@example.test" not in text and "PrivateToTheCustomer" not in text


def test_the_hook_runs_before_a_job_asked_while_its_operation_ran(world: Any) -> None:
    engine, settings, vps_id = world
    runner = Recorder()
    previous = ansible.use_runner(runner)
    try:
        worker = Worker(engine, settings)
        operation = add(engine, vps_id, Evented.kind)
        later = add(engine, vps_id, Plain.kind)  # asked while the operation waits or runs
        assert worker.run_once()
        [hook] = hook_jobs(engine, vps_id)
        claimed = jobs.claim(engine, "w", 30)
        assert claimed is not None and claimed.id == hook.id  # the event's hook first
        assert jobs.claim(engine, "w2", 30) is None  # the later job waits for it
        assert status(engine, later) == JobStatus.queued
    finally:
        ansible.use_runner(previous)
    assert status(engine, operation) == JobStatus.succeeded


def test_a_failing_hook_is_retried_then_recorded_failed_and_the_operation_stands(world: Any) -> None:
    engine, settings, vps_id = world
    runner = Recorder(fail=True)
    previous = ansible.use_runner(runner)
    try:
        worker = Worker(engine, settings)
        operation = add(engine, vps_id, Evented.kind)
        assert worker.run_once()
        [hook] = hook_jobs(engine, vps_id)
        assert worker.run_once()
        assert status(engine, hook.id) == JobStatus.queued  # first failure: retried after a back-off
        clock.travel_to(clock.utcnow() + timedelta(minutes=2))
        assert worker.run_once()
    finally:
        ansible.use_runner(previous)
    assert len(runner.calls) == settings.hooks.max_attempts == 2
    assert status(engine, operation) == JobStatus.succeeded
    with Session(engine) as session:
        row = session.get(Job, hook.id)
        assert row is not None and row.status == JobStatus.failed
        assert "CMDB answered 503" in (row.error or "")
        events = session.exec(select(JobEvent).where(JobEvent.job_id == hook.id).order_by(col(JobEvent.id))).all()
        assert [e.status for e in events if e.status in ("retry", "failed")] == ["retry", "failed", "failed"]
        assert all("fatal: [localhost]: CMDB answered 503" in e.message for e in events if e.status == "retry")
        vps = session.get(Vps, vps_id)
        assert vps is not None and vps.status == VpsStatus.running and vps.task is None


def test_no_playbook_for_the_event_no_hook_job(world: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The workflow heard each success, looked for its event's playbook and said why it queued
    no hook (a log line for whoever wonders): no playbook for that event, or hooks off."""
    engine, settings, vps_id = world
    caplog.set_level(logging.INFO, logger=hooks.__name__)
    worker = Worker(engine, settings)
    operation = add(engine, vps_id, Plain.kind)
    assert worker.run_once()
    assert status(engine, operation) == JobStatus.succeeded
    missing = Path(settings.hooks.directory) / "vps_without_playbook.yml"
    assert decisions(caplog) == [f"job {operation} (plain) succeeded: event vps_without_playbook, no hook: "
                                 f"no playbook {missing}"]
    assert hook_jobs(engine, vps_id) == []
    caplog.clear()
    settings.hooks.directory = ""  # hooks off: not even an event with a playbook queues one
    evented = add(engine, vps_id, Evented.kind)
    assert worker.run_once()
    assert decisions(caplog) == [f"job {evented} (evented) succeeded: event vps_evented, no hook: hooks are off "
                                 "(VPSCTL_HOOKS_DIR is empty)"]
    assert hook_jobs(engine, vps_id) == []


def decisions(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == hooks.__name__ and "no hook" in r.getMessage()]
