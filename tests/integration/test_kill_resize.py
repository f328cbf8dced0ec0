"""A resize killed at each of its points (tests/integration/killpoints): cold (stopped, changed,
started again) and live (balloon); once resumed, the VPS holds the new sizes in the records and
in libvirt, and runs."""

from __future__ import annotations

from collections.abc import Iterator

import libvirt
import pytest

from orchestrator.operations import resize
from tests.conftest import URI, cleanup_host
from tests.integration.killpoints import Drill, kill_points, need_libvirt, thinned
from tests.integration.killpoints import drill as drill

pytestmark = pytest.mark.libvirt

GIB = 1 << 30
# The steps a cold resize goes through (orchestrator/operations/resize.py), and those a live one
# does work in; written out here.
COLD = kill_points("resize", ["stop_if_cold", "grow_disk", "record_size", "redefine", "start_if_cold"])
LIVE = kill_points("resize", ["apply_live", "memory_settled"])
shared: dict[str, str] = {}


@pytest.fixture(scope="module")
def cold(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drill]:
    """No live headroom: every memory increase stops and starts the guest."""
    need_libvirt()
    cold = Drill(tmp_path_factory.mktemp("cold"), live_resize_headroom=1.0)
    try:
        yield cold
    finally:
        cold.stop()
        cleanup_host(cold.settings, cold.engine)


def defined(vps_id: str) -> tuple[int, int, int]:
    """What libvirt holds: the current memory in the persistent definition (KiB), the live memory
    (KiB), and the size of the guest's disk (bytes)."""
    conn = libvirt.open(URI)
    try:
        dom = conn.lookupByUUIDString(vps_id)
        inactive = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        current = int(inactive.split("<currentMemory unit='KiB'>")[1].split("<")[0])
        return current, int(dom.info()[2]), int(dom.blockInfo("vda")[0])
    finally:
        conn.close()


@pytest.mark.parametrize("point", thinned(COLD, {"resize:before:grow_disk", "resize:before:record_size",
                                                "resize:before:redefine", "resize:after:redefine"}))
def test_a_cold_resize_killed_at_a_point_ends_with_the_new_size(cold: Drill, point: str) -> None:
    vps_id = shared.get("cold") or shared.setdefault("cold", cold.create_vps())
    before = cold.vps(vps_id)
    memory, disk = before.memory_mib + 64, before.disk_gib + 1
    job_id = cold.killed_at(point, lambda: cold.ask(vps_id, resize.ResizeVps, resize.ResizeBody(
        memory_mib=memory, disk_gib=disk, reason="kill-point drill")))
    assert cold.job(job_id).params["plan"]["reboot"] is True
    vps = cold.vps(vps_id)
    assert (vps.status, vps.memory_mib, vps.disk_gib, vps.task) == ("running", memory, disk, None)
    assert cold.on_host(vps_id) == {"domain": "running", "volumes": ["root.qcow2", "seed.iso"], "domains": 1}
    definition, live, size = defined(vps_id)
    assert (definition, live, size) == (memory * 1024, memory * 1024, disk * GIB)


@pytest.mark.parametrize("point", LIVE)
def test_a_live_resize_killed_at_a_point_ends_with_the_new_size(drill: Drill, point: str) -> None:
    vps_id = shared.get("live") or shared.setdefault("live", drill.create_vps())
    before = drill.vps(vps_id)
    memory = before.memory_mib + 32  # 192 MiB defined with room up to 384 MiB: four times live
    job_id = drill.killed_at(point, lambda: drill.ask(vps_id, resize.ResizeVps, resize.ResizeBody(
        memory_mib=memory, reason="kill-point drill")))
    assert drill.job(job_id).params["plan"]["reboot"] is False
    vps = drill.vps(vps_id)
    assert (vps.status, vps.memory_mib, vps.task) == ("running", memory, None)
    assert drill.on_host(vps_id) == {"domain": "running", "volumes": ["root.qcow2", "seed.iso"], "domains": 1}
    definition, _live, _size = defined(vps_id)
    assert definition == memory * 1024
