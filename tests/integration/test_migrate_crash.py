"""A migration whose worker is killed at points of its own (tests/integration/killpoints): a cold
one between the main host and a second one, back and forth, and a live one killed while libvirt
copies the running guest.  Once resumed, the VPS runs on exactly one host, the target, with its
volumes there and nothing left on the source."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import libvirt
import pytest
from sqlmodel import Session, select

from orchestrator.compute.hosts import Drivers, register_host
from orchestrator.core.models import Host
from orchestrator.operations import migrate
from tests.conftest import URI
from tests.integration.conftest import STARTED, wipe
from tests.integration.killpoints import Drill
from tests.integration.killpoints import drill as drill
from tests.integration.test_fleet import on

pytestmark = pytest.mark.libvirt

# Points of the steps a cold migration goes through (orchestrator/operations/migrate.py).
COLD = ["migrate:before:copy_volumes", "migrate:during:copy_volumes", "migrate:after:switch_host",
        "migrate:after:start_target", "migrate:before:remove_source"]
shared: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _extra_hosts_wiped() -> Iterator[None]:
    """The cold cases share one VPS moving back and forth: the extra hosts are not wiped after
    each case (tests/integration/conftest.py) but once the module is done (``wiped_at_the_end``)."""
    yield


@pytest.fixture(scope="module", autouse=True)
def wiped_at_the_end() -> Iterator[None]:
    yield
    for uri in STARTED.values():
        with contextlib.suppress(libvirt.libvirtError):
            wipe(uri)


def host_named(drill: Drill, name: str) -> int:
    with Session(drill.engine) as session:
        host = session.exec(select(Host).where(Host.name == name)).one()
        assert host.id is not None
        return host.id


@pytest.mark.parametrize("point", COLD)
def test_a_cold_migration_killed_at_a_point_ends_on_the_target_only(drill: Drill, second_host: dict[str, str],
                                                                   point: str) -> None:
    if "vps" not in shared:
        shared["vps"] = drill.create_vps()  # on the main host, the only one yet
        drivers = Drivers()
        with Session(drill.engine) as session:
            register_host(session, drill.settings, drivers, "h2", second_host["uri"], "Marseille",
                          second_host["proxy"])
        drivers.close()
    vps_id = shared["vps"]
    there = {host_named(drill, "local"): ("h2", second_host["uri"], URI),
             host_named(drill, "h2"): ("local", URI, second_host["uri"])}
    target, target_uri, source_uri = there[drill.vps(vps_id).host_id or 0]
    drill.killed_at(point, lambda: drill.ask(vps_id, migrate.MigrateVps, migrate.MigrateParams(to_host=target)))
    vps = drill.vps(vps_id)
    assert (vps.host_id, vps.status, vps.task) == (host_named(drill, target), "running", None)
    assert on(target_uri, vps_id) == {"domain": "running", "volumes": ["root.qcow2", "seed.iso"]}
    assert on(source_uri, vps_id) == {"domain": None, "volumes": []}


def test_a_live_migration_killed_while_libvirt_copies_ends_on_the_target_only(
        drill: Drill, second_host: dict[str, str], third_host: dict[str, str], linked_hosts: dict[str, str]) -> None:
    """Killed while libvirt copies the running guest: libvirt calls the migration off (the guest
    runs on where it was, the target holds no running copy), the next worker moves it again, and
    it ends running on the target only."""
    drivers = Drivers()
    with Session(drill.engine) as session:
        for name, host in (("h2", second_host), ("h3", third_host)):
            if session.exec(select(Host).where(Host.name == name)).first() is None:
                register_host(session, drill.settings, drivers, name, host["uri"], "Marseille", host["proxy"])
            record = session.exec(select(Host).where(Host.name == name)).one()
            record.migration_address = linked_hosts[name]
            session.add(record)
        for other in session.exec(select(Host).where(Host.name != "h2")).all():
            other.state = "disabled"  # the new VPS lands on h2
            session.add(other)
        session.commit()
    drivers.close()
    vps_id = drill.create_vps("live")
    with Session(drill.engine) as session:
        h3 = session.exec(select(Host).where(Host.name == "h3")).one()
        h3.state = "enabled"
        session.add(h3)
        session.commit()
    full_speed = drill.settings
    drill.stop()  # the next worker copies slowly enough for the kill to land in the copy
    drill.settings = full_speed.replace(migration_bandwidth_mib=2)
    seen: list[str] = []

    def look() -> None:
        """What libvirt does with the orphaned migration: never both hosts running the guest; it
        is called off (or, killed during its last phases, ended).  The next worker goes at full
        speed."""
        drill.settings = full_speed
        deadline, states = time.monotonic() + 120, ("", "")
        while not seen:
            assert time.monotonic() < deadline, f"the migration neither ended nor was called off: {states}"
            states = (running_state(second_host["uri"], vps_id) or "", running_state(third_host["uri"], vps_id) or "")
            assert states != ("running", "running")
            outcome = {("running", ""): "called off", ("running", "gone"): "called off",
                       ("paused", ""): "called off, paused", ("paused", "gone"): "called off, paused",
                       ("gone", "running"): "ended", ("", "running"): "ended"}.get(states)
            if outcome:
                seen.append(outcome)
            time.sleep(0.2)

    try:
        drill.killed_at("migrate:during:switch_host", lambda: drill.ask(
            vps_id, migrate.MigrateVps, migrate.MigrateParams(to_host="h3", live=True)), timeout=400, between=look)
    finally:
        drill.settings = full_speed
    assert seen
    vps = drill.vps(vps_id)
    assert (vps.host_id, vps.status) == (host_named(drill, "h3"), "running")
    assert on(third_host["uri"], vps_id)["domain"] == "running"
    assert on(second_host["uri"], vps_id) == {"domain": None, "volumes": []}


def running_state(uri: str, vps_id: str) -> str | None:
    """"running", "paused", "gone" (defined, not active), or None (no such domain) on that host."""
    conn = libvirt.open(uri)
    try:
        try:
            state = conn.lookupByUUIDString(vps_id).state()[0]
        except libvirt.libvirtError:
            return None
        return {libvirt.VIR_DOMAIN_RUNNING: "running", libvirt.VIR_DOMAIN_PAUSED: "paused",
                libvirt.VIR_DOMAIN_SHUTOFF: "gone"}.get(state, str(state))
    finally:
        conn.close()
