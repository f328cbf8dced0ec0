"""Job time of live operations beside the bare libvirt call that has the same effect, measured
in the same run on two identical tiny VPS (one driven through vpsctl, one by hand):

- live memory resize   vs  setMemoryFlags(LIVE | CONFIG)
- live vCPU resize     vs  setVcpusFlags(LIVE | CONFIG)
- suspend / resume     vs  suspend() / resume()
- cut-off / reconnect  vs  updateDeviceFlags(<link state=down|up>, LIVE | CONFIG)

Job time is the job's own record: from the request being recorded to the job finished (queue,
claim, every step, the database writes).  Target: at most 1.5 x the bare call + 50 ms.
Run by ``scripts/bench.sh``; writes docs/benchmarks.md (section "operations").
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import libvirt

from bench.common import URI, VpsctlServer, provenance, summary, write_section
from orchestrator.compute.designer import mac_for

SAMPLES = int(os.environ.get("BENCH_SAMPLES", "10"))
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


def job_seconds(server: VpsctlServer, job: dict[str, Any]) -> float:
    while job["status"] not in ("succeeded", "failed"):
        time.sleep(0.02)
        job = server.call("GET", f"/v1/jobs/{job['id']}")
    assert job["status"] == "succeeded", job
    return (datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["created_at"])).total_seconds()


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def link_xml(dom: libvirt.virDomain, up: bool) -> str:
    mac = mac_for(dom.UUIDString())
    state = "up" if up else "down"
    return (f"<interface type='network'><mac address='{mac}'/><source network='vpsctl-test'/>"
            f"<model type='virtio'/><link state='{state}'/></interface>")


def scrub(conn: libvirt.virConnect, vps_id: str) -> None:
    """Remove a benchmark VPS's domain and volumes, whatever state the run left it in."""
    try:
        dom = conn.lookupByUUIDString(vps_id)
        if dom.isActive():
            dom.destroy()
        dom.undefine()
    except libvirt.libvirtError:
        pass
    pool = conn.storagePoolLookupByName("vpsctl-test")
    pool.refresh(0)
    for vol in pool.listAllVolumes(0):
        if vps_id in vol.name():
            vol.delete(0)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="vpsctl-ops-bench-"))
    # Room to grow live: the definitions allow many vCPUs and much memory above the order.
    server = VpsctlServer(tmp, live_resize_headroom=16.0, cpu_allocation_ratio=16.0)
    conn = libvirt.open(URI)
    both = libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG
    created: list[str] = []
    try:
        ours_id = server.create_running(conn)
        created.append(ours_id)
        bare_id = server.create_running(conn)
        created.append(bare_id)
        bare = conn.lookupByUUIDString(bare_id)
        # Let both guests finish booting: under emulation a booting guest takes a whole core,
        # and the first samples would measure that instead.
        time.sleep(float(os.environ.get("BENCH_SETTLE_SECONDS", "25")))
        results: dict[str, tuple[list[float], list[float]]] = {}

        def op(name: str, body: dict[str, Any] | None = None) -> float:
            # R5.1-change-order: a resize without an order form is staff's, with a reason
            staff = name == "resize"
            body = {**(body or {}), "reason": "benchmark"} if staff else body
            return job_seconds(server, server.call("POST", f"/v1/vps/{ours_id}/{name}", body or {}, staff=staff)["job"])

        rows: list[tuple[str, list[float], list[float]]] = []
        memory = ([], [])  # type: tuple[list[float], list[float]]
        for i in range(SAMPLES):
            mib = 384 if i % 2 == 0 else 256
            memory[0].append(op("resize", {"memory_mib": mib}))
            memory[1].append(timed(lambda mib=mib: bare.setMemoryFlags(mib * 1024, both)))
        rows.append(("live memory resize", *memory))
        vcpus = ([], [])  # type: tuple[list[float], list[float]]
        for count in range(2, min(2 + SAMPLES, 17)):  # up to the defined maximum (16)
            vcpus[0].append(op("resize", {"vcpus": count}))
            vcpus[1].append(timed(lambda count=count: bare.setVcpusFlags(count, both)))
        rows.append(("live vCPU resize", *vcpus))
        suspend, resume, cut, reconnect = ([], []), ([], []), ([], []), ([], [])  # type: ignore[var-annotated]
        for _ in range(SAMPLES):
            suspend[0].append(op("suspend"))
            suspend[1].append(timed(bare.suspend))
            resume[0].append(op("resume"))
            resume[1].append(timed(bare.resume))
        for _ in range(SAMPLES):
            cut[0].append(job_seconds(server, server.call("POST", f"/v1/vps/{ours_id}/cutoff",
                                                          {"reason": "abuse"}, staff=True)["job"]))
            cut[1].append(timed(lambda: bare.updateDeviceFlags(link_xml(bare, False), both)))
            reconnect[0].append(job_seconds(server, server.call("POST", f"/v1/vps/{ours_id}/reconnect",
                                                                {"corrective_measures": "bench"}, staff=True)["job"]))
            reconnect[1].append(timed(lambda: bare.updateDeviceFlags(link_xml(bare, True), both)))
        rows += [("suspend", *suspend), ("resume", *resume), ("cut-off", *cut), ("reconnect", *reconnect)]
        results = {name: (ours, floor) for name, ours, floor in rows}
        write_report(results)
    finally:
        for vps_id in created:
            scrub(conn, vps_id)
        server.stop()
        conn.close()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)


def write_report(results: dict[str, tuple[list[float], list[float]]]) -> None:
    lines = [
        "## operations: job time beside the bare libvirt call",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `scripts/bench.sh` on {provenance()}; "
        "same run, two "
        f"identical tiny VPS (one through vpsctl, one by hand), {SAMPLES} samples each. Job time = the job's "
        "`finished_at - created_at` (queue, claim, every step and database write). "
        "Target: at most 1.5 x bare + 50 ms. A live memory resize's job ends only once the guest holds the new "
        "size (its balloon settled, looked at again every `VPSCTL_JOB_WAIT_POLL_SECONDS` once the job gave its "
        "slot back), where the bare call returns as soon as libvirt has asked the balloon: that row compares two "
        "different things.",
        "",
        "| operation | vpsctl job median (ms) | bare call median (ms) | budget 1.5 x bare + 50 (ms) | within |",
        "|---|---|---|---|---|",
    ]
    for name, (ours, floor) in results.items():
        ours_ms = float(summary(name, ours)["median"]) * 1000
        floor_ms = float(summary(name, floor)["median"]) * 1000
        budget = 1.5 * floor_ms + 50
        lines.append(f"| {name} | {ours_ms:.1f} | {floor_ms:.1f} | {budget:.1f} | "
                     f"{'yes' if ours_ms <= budget else 'no'} |")
    lines.append("")
    write_section("operations:", lines)

if __name__ == "__main__":
    main()
