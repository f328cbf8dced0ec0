"""Many customers ordering at the same moment, on one host: the wall time from the first
``POST /v1/vps`` until every VPS is running and answers SSH with the host key made for it (its
create job succeeded, with ``VPSCTL_VERIFY_GUEST_SSH`` on), beside the same number of creates one
after the other, and beside the bound the machine's CPUs set, all measured in the same run.

The CPU bound: the busy CPU time the whole machine spent during the serial creates (guests
booting under emulation, QEMU, libvirtd, the orchestrator), divided by its number of cores; no
schedule of the same work can finish sooner.  Target: concurrent at most 0.35 x serial.

Then the same number ordered at once with a second host registered (scripts/extra-host.sh: a
libvirtd in network and mount namespaces of its own, reached through its unix socket, its guests
through its namespace), placement sharing them out; both hosts run on the same two cores, so this
shows that spreading costs nothing more, not that it is faster.

The host's overcommit ratios and the customer's quota are raised so that one host and one
customer take all of them.  Run by ``scripts/bench.sh`` (``python -m bench.concurrent_bench``);
writes docs/benchmarks.md (section "concurrent creates").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import libvirt

from bench.common import URI, VpsctlServer, cpu_seconds, provenance, write_section

REPO = Path(__file__).resolve().parents[1]

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


def order(server: VpsctlServer, n: int, **extra: str) -> dict[str, Any]:
    return server.call("POST", "/v1/orders", {**server.body, "name": f"bench{n}", **extra})


def at_once(server: VpsctlServer) -> tuple[float, float, int, list[str]]:
    """Wall time, busy CPU and errors of COUNT orders at once; the VPS are left running."""
    cpu, started = cpu_seconds(), time.perf_counter()
    asked = [order(server, n) for n in range(COUNT)]
    jobs = settle(server, [a["job"]["id"] for a in asked])
    together = time.perf_counter() - started
    errors = sum(job["status"] != "succeeded" for job in jobs)
    return together, cpu_seconds() - cpu, errors, [str(a["vps"]["id"]) for a in asked]


def domains(uri: str, vps_ids: list[str]) -> int:
    """How many of these VPS run on the host at ``uri`` (asked of its libvirtd)."""
    conn = libvirt.open(uri)
    try:
        return sum(dom.UUIDString() in vps_ids and dom.isActive() == 1 for dom in conn.listAllDomains(0))
    finally:
        conn.close()


def second_host(server: VpsctlServer, tmp: Path) -> tuple[str, str, Path]:
    """A second host on this machine, registered (site Paris) with its image uploaded; its name,
    unix socket URI and folder."""
    netns, folder = "vpsctl-bench2", Path("/var/tmp/vpsctl-fleet/vpsctl-bench2")
    folder.mkdir(parents=True, exist_ok=True)
    for path in (folder.parent, folder):
        path.chmod(0o755)  # QEMU (libvirt-qemu) traverses it
    started = subprocess.run([str(REPO / "scripts/extra-host.sh"), "start", netns, str(folder)],
                             capture_output=True, text=True, check=True, timeout=180)
    uri = started.stdout.strip().splitlines()[-1]
    server.call("POST", "/v1/hosts", {"name": "bench2", "uri": uri, "site": "Paris",
                                      "guest_proxy_command": f"ip netns exec {netns} nc -w 10 %h %p"}, staff=True)
    delete(server, [str(order(server, 0, site="Paris")["vps"]["id"])])  # warm-up: the image reaches its pool
    return netns, uri, folder


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

        together, busy_together, errors, made = at_once(server)
        delete(server, made)

        netns, uri, folder = second_host(server, tmp)
        try:
            two, busy_two, errors_two, made = at_once(server)
            spread = Counter({"main host": domains(URI, made), "second host": domains(uri, made)})
            delete(server, made)
        finally:
            subprocess.run([str(REPO / "scripts/extra-host.sh"), "stop", netns, str(folder)],
                           capture_output=True, timeout=180)
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
        f"| {COUNT} ordered at once, two hosts ({spread['main host']} + {spread['second host']} placed) | "
        f"{two:.1f} | {two / serial:.2f}x | {busy_two:.1f} | {errors_two} |",
        f"| CPU bound (serial's {busy:.1f} CPU-s / {cores} cores) | {bound:.1f} | {bound / serial:.2f}x | | |",
        "",
        f"Target: at most {TARGET} x serial: {'met' if ratio <= TARGET and errors == 0 else 'NOT met'}.",
        "",
    ]
    write_section("concurrent creates", lines)


if __name__ == "__main__":
    main()
