"""The reconciler (R5.2-keep-running) and the traffic counters (R5.4-hours) against the database,
with a scripted driver standing in for the hosts (the real libvirtd is in
tests/integration/test_reconciler.py): one incident per drift however many passes and processes,
a restart asked once, a host that does not answer, a busy VPS left alone, intervals counted once;
a running domain without the record's interface filter (clean-traffic) brought to it by one
network-sync job.  On SQLite and, when the test command provides one, on a real PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from orchestrator.compute.designer import interface_config
from orchestrator.compute.hosts import Drivers
from orchestrator.core.errors import TransientError
from orchestrator.core.models import (
    Audit,
    Customer,
    Host,
    Incident,
    Job,
    JobStatus,
    TrafficCounter,
    TrafficSample,
    Vps,
    VpsStatus,
)
from orchestrator.core.settings import Settings
from orchestrator.engine import jobs
from orchestrator.engine.worker import Worker
from orchestrator.hypervisor import DomainInfo, DomainState, FilterRef, InterfaceConfig
from orchestrator.workflows import reconciler, traffic
from tests.databases import databases, empty_database


class ScriptedHost:
    """What a host answers: domains by UUID, their state and their interface filter, or nothing
    at all (``down``)."""

    def __init__(self) -> None:
        self.uri = "scripted:///"
        self.states: dict[str, DomainState] = {}
        self.filters: dict[str, FilterRef | None] = {}
        self.stops_when_read: set[str] = set()
        self.counters: dict[str, tuple[int, int]] = {}
        self.down = False
        self.started: list[str] = []

    def _check(self) -> None:
        if self.down:
            raise TransientError("cannot connect to scripted:///: connection refused")

    def list_domains(self) -> list[DomainInfo]:
        self._check()
        return [DomainInfo(uuid, f"vps-{uuid}", state) for uuid, state in self.states.items()]

    def domain(self, uuid: str) -> DomainInfo | None:
        self._check()
        state = self.states.get(uuid)
        return None if state is None else DomainInfo(uuid, f"vps-{uuid}", state)

    def define_domain(self, config: Any) -> None:
        self._check()
        self.states.setdefault(config.uuid, DomainState.shutoff)

    def start_domain(self, uuid: str) -> None:
        self._check()
        self.states[uuid] = DomainState.running
        self.started.append(uuid)

    def interface_counters(self, uuid: str) -> tuple[int, int] | None:
        self._check()
        return self.counters.get(uuid) if self.states.get(uuid) == DomainState.running else None

    def live_filter(self, uuid: str, mac: str) -> FilterRef | None:
        self._check()
        if uuid in self.stops_when_read:  # destroyed between the listing and this read
            self.states[uuid] = DomainState.shutoff
        return self.filters.get(uuid) if self.states.get(uuid) == DomainState.running else None

    def set_link_live(self, uuid: str, interface: InterfaceConfig) -> None:
        self._check()
        self.filters[uuid] = interface.filter

    def interface_addresses(self, uuid: str) -> list[str]:
        self._check()
        return []

    def require_filter(self, name: str) -> None:
        self._check()

    def ensure_filter(self, config: Any) -> None:
        self._check()

    def close(self) -> None:
        pass


@pytest.fixture(params=databases())
def world(request: Any, tmp_path: Path) -> Iterator[tuple[Any, Any, ScriptedHost, Drivers, list[str]]]:
    with empty_database(request.param, tmp_path) as settings:
        yield from _world(settings)


def _world(settings: Settings) -> Iterator[Any]:
    from orchestrator.core.db import make_engine

    engine = make_engine(settings)
    host = ScriptedHost()
    with Session(engine) as session:
        customer = Customer(name="c", email="c@example.test")
        record = Host(name="h", uri=host.uri, site="Marseille")
        session.add(customer)
        session.add(record)
        session.flush()
        ids = []
        for name, status in (("a", VpsStatus.running), ("b", VpsStatus.running), ("off", VpsStatus.stopped)):
            vps = Vps(name=name, customer_id=customer.id, host_id=record.id, image="tiny", vcpus=1, memory_mib=128,
                      disk_gib=1, status=status, mac="52:54:00:00:00:0" + str(len(ids) + 1))
            session.add(vps)
            session.flush()
            ids.append(vps.id)
            host.states[vps.id] = DomainState.running if status == VpsStatus.running else DomainState.shutoff
            host.filters[vps.id] = interface_config(vps, record, settings).filter  # defined by this version
        session.commit()
    yield engine, settings, host, Drivers(lambda _uri: host), ids  # type: ignore[arg-type, return-value]
    engine.dispose()


# A pass's facts (reconciler.PASS_FACTS) when it found nothing: each test names what it expects more.
NOTHING = dict.fromkeys(reconciler.PASS_FACTS, 0)


def incidents_of(engine: Any, vps_id: str | None = None) -> list[Incident]:
    with Session(engine) as session:
        query = select(Incident)
        if vps_id:
            query = query.where(Incident.vps_id == vps_id)
        return list(session.exec(query).all())


def jobs_of(engine: Any, kind: str) -> list[Job]:
    with Session(engine) as session:
        return list(session.exec(select(Job).where(Job.kind == kind)).all())


def test_a_drift_opens_one_incident_and_one_restart_however_many_passes(world: Any) -> None:
    """R5.2-keep-running: recorded running, domain shut off behind the orchestrator's back."""
    engine, settings, host, drivers, (a, b, off) = world
    looked = reconciler.reconcile(engine, settings, drivers)
    # a and b compared and running as recorded (the stopped VPS is not compared): nothing to do
    assert looked == {**NOTHING, "hosts": 1, "vps": 2, "as_recorded": 2}
    assert incidents_of(engine) == []

    host.states[a] = DomainState.shutoff
    host.states.pop(b)  # undefined
    passes = [threading.Thread(target=reconciler.reconcile, args=(engine, settings, drivers)) for _ in range(4)]
    for thread in passes:
        thread.start()
    for thread in passes:
        thread.join(timeout=60)
    # a later pass sees both down, each with its restart queued: left alone
    assert reconciler.reconcile(engine, settings, drivers) == {**NOTHING, "hosts": 1, "vps": 2, "busy": 2}
    for vps_id, found in ((a, "shutoff"), (b, "missing")):
        opened = incidents_of(engine, vps_id)
        assert len(opened) == 1, opened
        assert opened[0].malfunction == "vps_down" and opened[0].opened_by == "reconciler"
        assert found in opened[0].description and opened[0].fix_deadline is not None
    assert incidents_of(engine, off) == []
    recover = jobs_of(engine, "recover")
    assert sorted(j.vps_id or "" for j in recover) == sorted([a, b])
    assert len(jobs_of(engine, "incident_deadline")) == 2
    with Session(engine) as session:
        drift = session.exec(select(Audit).where(Audit.action == "drift")).all()
        notices = session.exec(select(Incident)).all()
    assert len(drift) == 2 and len(notices) == 2


def test_the_restart_job_starts_the_domain_and_resolves_the_incident(world: Any) -> None:
    """R5.2-keep-running: the recover job redefines and starts the domain; R5.4-fix-delay: its
    incident is resolved and the deadline job called off."""
    engine, settings, host, drivers, (a, _b, _off) = world
    host.states[a] = DomainState.crashed
    reconciler.reconcile(engine, settings, drivers)
    worker = Worker(engine, settings, drivers)
    while worker.run_once():
        pass
    assert host.states[a] == DomainState.running and host.started == [a]
    [job] = jobs_of(engine, "recover")
    assert job.status == JobStatus.succeeded, job.error
    [incident] = incidents_of(engine, a)
    assert incident.resolved_at is not None and "reconciler" in incident.resolution
    [deadline] = jobs_of(engine, "incident_deadline")
    assert deadline.status == JobStatus.cancelled
    reconciler.reconcile(engine, settings, drivers)
    assert len(incidents_of(engine, a)) == 1 and len(jobs_of(engine, "recover")) == 1
    # Down again later: a new incident, a new restart.
    host.states[a] = DomainState.shutoff
    reconciler.reconcile(engine, settings, drivers)
    assert len(incidents_of(engine, a)) == 2 and len(jobs_of(engine, "recover")) == 2


def test_without_restart_the_incident_waits_and_is_resolved_when_the_domain_runs(world: Any) -> None:
    engine, settings, host, drivers, (a, _b, _off) = world
    settings.periodic.reconcile_restart = False
    host.states[a] = DomainState.shutoff
    first, second = (reconciler.reconcile(engine, settings, drivers) for _ in range(2))
    assert first == {**NOTHING, "hosts": 1, "vps": 2, "as_recorded": 1, "drifts": 1, "incidents_opened": 1}
    assert second == {**NOTHING, "hosts": 1, "vps": 2, "as_recorded": 1, "drifts": 1}  # seen again, not reopened
    assert len(incidents_of(engine, a)) == 1 and jobs_of(engine, "recover") == []
    host.states[a] = DomainState.running  # started by hand
    reconciler.reconcile(engine, settings, drivers)
    [incident] = incidents_of(engine, a)
    assert incident.resolved_at is not None and "running" in incident.resolution


def test_a_vps_with_a_job_at_work_is_left_alone(world: Any) -> None:
    engine, settings, host, drivers, (a, _b, _off) = world
    with Session(engine) as session:
        jobs.enqueue(session, "stop", session.get(Vps, a), {}, "test", 1, 3)
        session.commit()
    host.states[a] = DomainState.shutoff  # the stop job is on its way
    looked = reconciler.reconcile(engine, settings, drivers)
    assert looked == {**NOTHING, "hosts": 1, "vps": 2, "as_recorded": 1, "busy": 1}  # seen down, left alone
    assert incidents_of(engine) == []


def test_a_host_that_does_not_answer_opens_host_down_once_per_vps(world: Any) -> None:
    engine, settings, host, drivers, (a, b, _off) = world
    host.down = True
    passes = [reconciler.reconcile(engine, settings, drivers) for _ in range(3)]
    assert passes[0] == {**NOTHING, "hosts": 1, "hosts_down": 1, "vps": 2, "incidents_opened": 2}
    assert passes[1:] == [{**NOTHING, "hosts": 1, "hosts_down": 1, "vps": 2}] * 2  # opened once
    opened = incidents_of(engine)
    assert sorted(i.vps_id for i in opened) == sorted([a, b])  # not the stopped one
    assert {i.malfunction for i in opened} == {"host_down"}
    assert jobs_of(engine, "recover") == []
    host.down = False
    reconciler.reconcile(engine, settings, drivers)
    assert all(i.resolved_at is not None for i in incidents_of(engine))


def test_a_domain_without_the_records_filter_gets_one_network_sync(world: Any) -> None:
    """A domain defined before every interface went through clean-traffic: the drift is recorded
    once and one network-sync job applies the record's filter; nothing more once it is there."""
    engine, settings, host, drivers, (a, _b, _off) = world
    host.filters[a] = None
    for _ in range(3):
        reconciler.check_filters(engine, settings, drivers)
    [job] = jobs_of(engine, "network-sync")
    assert job.vps_id == a
    with Session(engine) as session:
        [drift] = session.exec(select(Audit).where(Audit.action == "drift")).all()
        expected = interface_config(session.get(Vps, a), session.get(Host, 1), settings).filter
    assert drift.vps_id == a and drift.detail.startswith("interface filter none, the record says clean-traffic")
    worker = Worker(engine, settings, drivers)
    while worker.run_once():
        pass
    [job] = jobs_of(engine, "network-sync")
    assert job.status == JobStatus.succeeded, job.error
    assert host.filters[a] == expected and expected is not None and expected.filter == "clean-traffic"
    reconciler.check_filters(engine, settings, drivers)
    assert len(jobs_of(engine, "network-sync")) == 1
    assert incidents_of(engine) == []


def test_a_domain_stopping_while_its_filter_is_read_is_not_a_filter_drift(world: Any) -> None:
    """Listed running, off when its interface is read: the power drift is for the next pass, and
    no network-sync is asked (its next start defines the filter from the record)."""
    engine, settings, host, drivers, (a, _b, _off) = world
    host.stops_when_read.add(a)
    reconciler.check_filters(engine, settings, drivers)
    assert jobs_of(engine, "network-sync") == []
    with Session(engine) as session:
        assert session.exec(select(Audit).where(Audit.action == "drift")).all() == []
    host.stops_when_read.clear()
    reconciler.reconcile(engine, settings, drivers)
    assert [i.vps_id for i in incidents_of(engine)] == [a]  # the power drift, seen by the next pass


def test_traffic_intervals_are_counted_once_and_a_reset_counts_from_zero(world: Any) -> None:
    """R5.4-hours: hourly deltas of the interface counters."""
    engine, _settings, _host, _drivers, (a, _b, _off) = world
    t0 = datetime(2026, 6, 1, 10, 0, 5, tzinfo=UTC)
    assert traffic.record_reading(engine, a, None, (1_000, 2_000), t0) is None  # first reading: remembered only

    def previous() -> TrafficCounter:
        with Session(engine, expire_on_commit=False) as session:
            row = session.get(TrafficCounter, a)
            assert row is not None
            session.expunge(row)
            return row

    before = previous()
    t1 = t0 + timedelta(hours=1)
    assert traffic.record_reading(engine, a, before, (51_000, 2_500), t1) == (50_000, 500)
    assert traffic.record_reading(engine, a, before, (52_000, 2_600), t1) is None  # another process's stale view
    t2 = t1 + timedelta(hours=1)
    assert traffic.record_reading(engine, a, previous(), (700, 300), t2) == (700, 300)  # rebooted: from zero
    with Session(engine) as session:
        samples = {s.hour: (s.rx_bytes, s.tx_bytes) for s in session.exec(select(TrafficSample)).all()}
    assert samples == {datetime(2026, 6, 1, 10, tzinfo=UTC): (50_000, 500),
                       datetime(2026, 6, 1, 11, tzinfo=UTC): (700, 300)}
