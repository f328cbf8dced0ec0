"""On the real libvirtd: the reconciler finds a VPS whose domain was destroyed behind the
orchestrator's back, opens one ``vps_down`` incident, starts the domain again (a new boot, reachable
by SSH) and resolves the incident (R5.2-keep-running, R5.4-fix-delay); the traffic task turns the
domain's interface counters into hourly samples that match libvirt's (R5.4-hours)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import libvirt
from sqlmodel import Session, select

from orchestrator.compute.hosts import Drivers
from orchestrator.core.models import Audit, TrafficCounter, TrafficSample
from orchestrator.workflows import traffic
from tests.conftest import URI, Api
from tests.integration import lifecycle
from tests.integration.lifecycle import Guest, order


def eventually(what: str, probe: Callable[[], Any], within: float = 180) -> Any:
    return lifecycle.eventually(probe, within, what)


def incidents(api: Api, vps_id: str) -> list[dict[str, Any]]:
    response = api.call("GET", f"/v1/incidents?vps_id={vps_id}", api.support)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def libvirt_counters(guest: Guest) -> tuple[int, int]:
    conn = libvirt.open(URI)
    try:
        dom = conn.lookupByUUIDString(guest.id)
        devices = [t.get("dev") for t in ET.fromstring(dom.XMLDesc(0)).findall("./devices/interface/target")]
        stats = [dom.interfaceStats(dev) for dev in devices if dev]
        return sum(s[0] for s in stats), sum(s[4] for s in stats)
    finally:
        conn.close()


def test_domain_destroyed_behind_the_orchestrators_back_is_started_again(live_api: Api, tmp_path: Path) -> None:
    """R5.2-keep-running: one incident however many passes, a restart, a new boot, resolved."""
    api = live_api
    guest = order(api, tmp_path)
    boot = guest.ssh_eventually("cat /proc/sys/kernel/random/boot_id").strip()
    assert len(guest.ssh("dd if=/dev/zero bs=1000 count=1000 2>/dev/null")) == 1_000_000
    drivers = Drivers()
    traffic.collect(api.engine, api.settings, drivers)  # R5.4-hours: the reading before the crash
    api.settings.periodic.reconcile_seconds = 1.0  # the ticker reads the interval on every tick
    # Passes that looked at the VPS and found it running as recorded (their record, GET /metrics):
    # nothing to do.
    looked = lifecycle.runs_after(api, "reconcile", 2)
    assert (looked["vps"], looked["as_recorded"], looked["drifts"], looked["incidents_opened"]) == (1, 1, 0, 0)
    assert incidents(api, guest.id) == []

    conn = libvirt.open(URI)
    try:
        conn.lookupByUUIDString(guest.id).destroy()  # pulled out from under the orchestrator
    finally:
        conn.close()

    opened = eventually("an incident", lambda: incidents(api, guest.id))
    assert len(opened) == 1
    assert opened[0]["malfunction"] == "vps_down" and opened[0]["opened_by"] == "reconciler"
    assert "shutoff" in opened[0]["description"]
    resolved = eventually("the incident resolved",
                          lambda: [i for i in incidents(api, guest.id) if i["resolved_at"] is not None])
    assert "started again" in resolved[0]["resolution"]
    assert resolved[0]["deadline_job_id"] is None  # its fix-delay job was called off

    assert guest.domain().isActive()
    new_boot = guest.ssh_eventually("cat /proc/sys/kernel/random/boot_id").strip()
    assert new_boot and new_boot != boot
    assert guest.record["status"] == "running"

    # Three more passes, each finding the VPS running as recorded: still one incident, one restart.
    looked = lifecycle.runs_after(api, "reconcile", 3)
    assert (looked["vps"], looked["as_recorded"], looked["drifts"], looked["incidents_opened"]) == (1, 1, 0, 0)
    assert len(incidents(api, guest.id)) == 1
    events = api.call("GET", f"/v1/vps/{guest.id}/events?order=asc&limit=500", api.support).json()["items"]
    assert [e["operation"] for e in events].count("recover") >= 1
    assert len({e["job_id"] for e in events if e["operation"] == "recover"}) == 1
    with Session(api.engine) as session:
        drift = session.exec(select(Audit).where(Audit.vps_id == guest.id, Audit.action == "drift")).all()
    assert len(drift) == 1 and "shutoff" in drift[0].detail
    mail = api.wait_mail("Incident sur votre VPS")  # alice reads French
    assert guest.id in mail.message.get_content()

    # R5.4-hours: the new domain's counters started again from zero; the next reading counts from zero.
    with Session(api.engine) as session:
        before = session.get(TrafficCounter, guest.id)
        assert before is not None
        session.expunge(before)
    try:
        traffic.collect(api.engine, api.settings, drivers)
    finally:
        drivers.close()
    with Session(api.engine) as session:
        after = session.get(TrafficCounter, guest.id)
        samples = session.exec(select(TrafficSample).where(TrafficSample.vps_id == guest.id)).all()
    assert after is not None and after.tx_bytes < before.tx_bytes and before.tx_bytes >= 1_000_000
    assert sum(s.rx_bytes for s in samples) == after.rx_bytes and sum(s.tx_bytes for s in samples) == after.tx_bytes


def test_traffic_samples_follow_libvirt_counters(live_api: Api, tmp_path: Path) -> None:
    """R5.4-hours: two readings of the counters give an hourly delta equal to libvirt's."""
    api = live_api
    guest = order(api, tmp_path)
    guest.ssh_eventually("true")
    drivers = Drivers()
    try:
        traffic.collect(api.engine, api.settings, drivers)
        with Session(api.engine) as session:
            first = session.get(TrafficCounter, guest.id)
            assert first is not None
            session.expunge(first)
        blob = guest.ssh("dd if=/dev/zero bs=1000 count=2000 2>/dev/null")  # 2 MB sent by the guest
        assert len(blob) == 2_000_000
        traffic.collect(api.engine, api.settings, drivers)
        after = libvirt_counters(guest)
    finally:
        drivers.close()
    with Session(api.engine) as session:
        second = session.get(TrafficCounter, guest.id)
        samples = session.exec(select(TrafficSample).where(TrafficSample.vps_id == guest.id)).all()
    assert second is not None and first.read_at is not None and second.read_at is not None
    assert len(samples) == 1
    [sample] = samples
    assert sample.hour == traffic.hour_of(first.read_at, second.read_at)
    assert sample.rx_bytes == second.rx_bytes - first.rx_bytes > 0
    assert sample.tx_bytes == second.tx_bytes - first.tx_bytes >= 2_000_000
    # libvirt's own counters, read just after: the stored reading is theirs (a little traffic may
    # have flowed since: DHCP, ARP).
    assert 0 <= after[0] - second.rx_bytes < 100_000 and 0 <= after[1] - second.tx_bytes < 100_000
