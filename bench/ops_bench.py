"""Job time of live operations beside the bare libvirt call that has the same effect, measured
in the same run on two identical tiny VPS (one driven through vpsctl, one by hand):

- live memory grow     vs  setMemoryFlags(LIVE | CONFIG), then until the guest holds it
- live vCPU resize     vs  setVcpusFlags(LIVE | CONFIG)
- suspend / resume     vs  suspend() / resume()
- cut-off / reconnect  vs  updateDeviceFlags(<link state=down|up>, LIVE | CONFIG)

Job time is the job's own record: from the request being recorded to the job finished (queue,
claim, every step, the database writes).  Target: at most 1.5 x the bare call + 50 ms (a live
memory grow: plus one re-check interval, ``VPSCTL_JOB_WAIT_POLL_SECONDS``).  Run by
``scripts/bench.sh``; ``python -m bench.ops_bench`` writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import libvirt

from bench.common import URI, VpsctlServer, scrub, summary
from bench.report import Result, Target, count
from orchestrator.compute.designer import mac_for
from orchestrator.operations.resize import BALLOON_SLACK_KIB

KEY = "operations"
HEADING = "Operations: job time beside the bare libvirt call"


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


def balloon_settled(dom: libvirt.virDomain, mib: int, timeout: float) -> None:
    """Until the guest holds ``mib`` (libvirt's ``actual``, within the slack vpsctl allows)."""
    deadline = time.perf_counter() + timeout
    while abs(dom.memoryStats().get("actual", 0) - mib * 1024) > BALLOON_SLACK_KIB:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"the balloon did not reach {mib} MiB in {timeout:.0f} s")
        time.sleep(0.02)


def measure(samples: int | None = None) -> Result:
    samples = samples or count(20, 2)
    tmp = Path(tempfile.mkdtemp(prefix="vpsctl-ops-bench-"))
    # Room to grow live: the definitions allow many vCPUs and much memory above the order.
    server = VpsctlServer(tmp, live_resize_headroom=16.0, cpu_allocation_ratio=16.0)
    poll = server.settings.jobs.wait_poll_seconds
    balloon_timeout = server.settings.lifecycle.balloon_timeout_seconds
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
        time.sleep(count(25, 5))

        def op(name: str, body: dict[str, Any] | None = None) -> float:
            # R5.1-change-order: a resize without an order form is staff's, with a reason
            staff = name == "resize"
            body = {**(body or {}), "reason": "benchmark"} if staff else body
            return job_seconds(server, server.call("POST", f"/v1/vps/{ours_id}/{name}", body or {}, staff=staff)["job"])

        def resize_memory(mib: int) -> None:
            bare.setMemoryFlags(mib * 1024, both)
            balloon_settled(bare, mib, balloon_timeout)

        rows: list[tuple[str, list[float], list[float]]] = []
        memory: tuple[list[float], list[float]] = ([], [])
        # Grown, 32 MiB at a time from 384 MiB: the balloon gives memory back to the guest at once,
        # where taking it from a guest waits on the guest and stops at what it uses (the tiny
        # guest, booted with its ceiling of memory, holds a little more than the 256 MiB ordered).
        for i in range(samples):
            mib = 384 + 32 * i
            memory[0].append(op("resize", {"memory_mib": mib}))
            memory[1].append(timed(lambda mib=mib: resize_memory(mib)))  # type: ignore[misc]
        rows.append(("live memory grow (until the guest holds it)", *memory))
        vcpus: tuple[list[float], list[float]] = ([], [])
        for n in range(2, min(2 + samples, 17)):  # up to the defined maximum (16)
            vcpus[0].append(op("resize", {"vcpus": n}))
            vcpus[1].append(timed(lambda n=n: bare.setVcpusFlags(n, both)))  # type: ignore[misc]
        rows.append(("live vCPU resize", *vcpus))
        suspend, resume, cut, reconnect = ([], []), ([], []), ([], []), ([], [])  # type: ignore[var-annotated]
        for _ in range(samples):
            suspend[0].append(op("suspend"))
            suspend[1].append(timed(bare.suspend))
            resume[0].append(op("resume"))
            resume[1].append(timed(bare.resume))
        for _ in range(samples):
            cut[0].append(job_seconds(server, server.call("POST", f"/v1/vps/{ours_id}/cutoff",
                                                          {"reason": "abuse"}, staff=True)["job"]))
            cut[1].append(timed(lambda: bare.updateDeviceFlags(link_xml(bare, False), both)))
            reconnect[0].append(job_seconds(server, server.call("POST", f"/v1/vps/{ours_id}/reconnect",
                                                                {"corrective_measures": "bench"}, staff=True)["job"]))
            reconnect[1].append(timed(lambda: bare.updateDeviceFlags(link_xml(bare, True), both)))
        rows += [("suspend", *suspend), ("resume", *resume), ("cut-off", *cut), ("reconnect", *reconnect)]
    finally:
        server.stop()
        scrub(conn, *created)
        conn.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return report(rows, samples, poll)


def budget(name: str, bare_ms: float, poll: float) -> float:
    """1.5 x the bare call + 50 ms; a wait for the guest may add one re-check interval."""
    return 1.5 * bare_ms + 50 + (poll * 1000 if name.startswith("live memory") else 0)


def report(rows: list[tuple[str, list[float], list[float]]], samples: int, poll: float) -> Result:
    lines = [
        "`python -m bench.ops_bench`: two identical tiny VPS made through vpsctl, one then driven through "
        "vpsctl's API, the other by hand through libvirt-python, in turn, "
        f"{samples} samples of each operation (the vCPU resize: one per count, up to 16). Job time = the job's "
        "`finished_at - created_at` (queue, claim, every step and database write). A live memory grow "
        "(from 384 MiB, 32 MiB more each time) ends, on both sides, once the guest holds the new size "
        "(its balloon's `actual` within 1 MiB): "
        "vpsctl looks again every 0.25 s, then, once the job gave its slot back, every "
        f"`VPSCTL_JOB_WAIT_POLL_SECONDS` ({poll:g} s here), which its budget allows for.",
        "",
        "| operation | vpsctl job median (ms) | bare call median (ms) | budget (ms) | job / bare | samples |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    targets = []
    for name, ours, bare in rows:
        ours_ms = float(summary(name, ours)["median"]) * 1000
        bare_ms = float(summary(name, bare)["median"]) * 1000
        allowed = budget(name, bare_ms, poll)
        lines.append(f"| {name} | {ours_ms:.1f} | {bare_ms:.1f} | {allowed:.1f} | {ours_ms / bare_ms:.1f}x | "
                     f"{len(ours)} |")
        # The budget as a ratio: job time / budget at most 1.
        targets.append(Target(f"operations, {name}: job median / its budget (1.5 x bare + 50 ms"
                              + (f" + {poll:g} s" if name.startswith("live memory") else "") + ")",
                              ours_ms / allowed, 1.0, note=f"{ours_ms:.1f} ms against {allowed:.1f} ms"))
    lines.append("")
    return Result(KEY, HEADING, lines, targets)


if __name__ == "__main__":
    from bench.run import main

    raise SystemExit(main([KEY]))
