"""Many customers ordering at the same moment, on one host: the wall time from the first
``POST /v1/vps`` until every VPS is running and answers SSH with the host key made for it (its
create job succeeded, with ``VPSCTL_VERIFY_GUEST_SSH`` on), beside the same number of creates one
after the other, and beside the bound the machine's CPUs set, all measured in the same run.

The CPU bound: the busy CPU time the whole machine spent during the serial creates (guests
booting under emulation, QEMU, libvirtd, the orchestrator), divided by its number of cores; no
schedule of the same work can finish sooner.  Target: concurrent at most 0.35 x serial.

The host's overcommit ratios and the customer's quota are raised so that one host and one
customer take all of them.  Run by ``scripts/bench.sh`` (``python -m bench.concurrent_bench``);
writes docs/benchmarks.md (section "concurrent creates").
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import VpsctlServer, cpu_seconds, provenance, write_section

COUNT = int(os.environ.get("BENCH_CONCURRENT", "20"))
TARGET = 0.35


def settle(server: VpsctlServer, job_ids: list[str], timeout: float = 900) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = [server.call("GET", f"/v1/jobs/{job_id}") for job_id in job_ids]
        if all(job["status"] in ("succeeded", "failed", "cancelled") for job in found):
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"jobs still running after {timeout} s")
        time.sleep(0.1)


def delete(server: VpsctlServer, vps_ids: list[str]) -> None:
    asked = [server.call("DELETE", f"/v1/vps/{vps_id}?confirm_data_loss=true")["job"]["id"] for vps_id in vps_ids]
    settle(server, asked)


def order(server: VpsctlServer, n: int) -> dict[str, Any]:
    return server.call("POST", "/v1/vps", {**server.body, "name": f"bench{n}"})


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="vpsctl-bench-"))
    server = VpsctlServer(tmp, verify_guest_ssh=True, cpu_allocation_ratio=16.0, disk_allocation_ratio=8.0,
                          quota_vps=COUNT, quota_vcpus=COUNT)
    try:
        delete(server, [str(order(server, 0)["vps"]["id"])])  # warm-up: uploads the image to the pool
        serial, busy, errors_serial = 0.0, 0.0, 0
        for n in range(COUNT):
            cpu, started = cpu_seconds(), time.perf_counter()
            created = order(server, n)
            [job] = settle(server, [created["job"]["id"]])
            serial += time.perf_counter() - started
            busy += cpu_seconds() - cpu
            errors_serial += job["status"] != "succeeded"
            delete(server, [str(created["vps"]["id"])])  # untimed

        cpu, started = cpu_seconds(), time.perf_counter()
        asked = [order(server, n) for n in range(COUNT)]
        jobs = settle(server, [a["job"]["id"] for a in asked])
        together = time.perf_counter() - started
        busy_together = cpu_seconds() - cpu
        errors = sum(job["status"] != "succeeded" for job in jobs)
        delete(server, [str(a["vps"]["id"]) for a in asked])
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    cores = os.cpu_count() or 1
    bound = busy / cores
    ratio = together / serial
    lines = [
        "## concurrent creates: many orders at once on one host",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `scripts/bench.sh` "
        f"(`python -m bench.concurrent_bench`) on {provenance()}. {COUNT} tiny VPS (1 vCPU, 256 MiB), "
        f"`VPSCTL_WORKER_SLOTS` at its default; wall time from the first `POST /v1/vps` until every create "
        "job succeeded, i.e. every guest runs and answers SSH with the host key generated for it. The CPU "
        f"bound is the busy CPU time of the whole machine during the serial creates over its {cores} cores. "
        "Guests boot under TCG emulation here, which is CPU work: in the serial case each guest is deleted "
        "before the next is ordered, while ordered at once all of them are up together (the busy CPU "
        "column shows what that costs).",
        "",
        "| case | wall time (s) | / serial | busy CPU (CPU-s) | errors |",
        "|---|---|---|---|---|",
        f"| {COUNT} x one create, one after the other | {serial:.1f} | 1.00x | {busy:.1f} | {errors_serial} |",
        f"| {COUNT} ordered at once | {together:.1f} | {ratio:.2f}x | {busy_together:.1f} | {errors} |",
        f"| CPU bound (serial's {busy:.1f} CPU-s / {cores} cores) | {bound:.1f} | {bound / serial:.2f}x | | |",
        "",
        f"Target: at most {TARGET} x serial: {'met' if ratio <= TARGET and errors == 0 else 'NOT met'}.",
        "",
    ]
    write_section("concurrent creates", lines)


if __name__ == "__main__":
    main()
