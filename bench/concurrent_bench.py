"""Many customers ordering at the same moment, on one host: the wall time from the first
order (``POST /v1/orders``) until every VPS is running and answers SSH with the host key made for it (its
create job succeeded, with ``VPSCTL_VERIFY_GUEST_SSH`` on), beside the same number of creates one
after the other, and beside the bound the machine's CPUs set, all measured in the same run.

The CPU bound: the busy CPU time the whole machine spent during a case (guests booting under
emulation, QEMU, libvirtd, the orchestrator), divided by its number of cores; no schedule of the
same work can finish sooner.  Targets: no create fails; ordered at once, the wall time at most
1.25 x that bound (the cores kept busy: creates are not serialised) and no longer than the same
creates one after the other.

Then the same number ordered at once with a second host registered (scripts/extra-host.sh: a
libvirtd in network and mount namespaces of its own, reached through its unix socket, its guests
through its namespace), placement sharing them out; both hosts run on the same two cores, so this
shows that spreading costs nothing more, not that it is faster.

The host's overcommit ratios and the customer's quota are raised so that one host and one
customer take all of them.  Run by ``scripts/bench.sh``; ``python -m bench.concurrent_bench``
writes its section of docs/benchmarks.md.
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

from bench.common import URI, VpsctlServer, cpu_seconds
from bench.report import Figure, Result, Target, quick

REPO = Path(__file__).resolve().parents[1]
KEY = "concurrent"
HEADING = "Concurrent creates: many orders at once"
BUSY = 1.25  # at once, wall time at most 1.25 x (busy CPU-s during it / cores)
SERIAL = 1.0  # and no slower than the same creates one after the other


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


def at_once(server: VpsctlServer, count: int) -> tuple[float, float, int, list[str]]:
    """Wall time, busy CPU and errors of ``count`` orders at once; the VPS are left running."""
    cpu, started = cpu_seconds(), time.perf_counter()
    asked = [order(server, n) for n in range(count)]
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


def measure(counts: tuple[int, ...] | None = None) -> Result:
    counts = counts or ((2, 4) if quick() else (5, 10, 20))
    most = counts[-1]
    tmp = Path(tempfile.mkdtemp(prefix="vpsctl-bench-"))
    server = VpsctlServer(tmp, verify_guest_ssh=True, cpu_allocation_ratio=16.0, disk_allocation_ratio=8.0,
                          quota_vps=most, quota_vcpus=most)
    serial: dict[int, tuple[float, float]] = {}  # the first n creates one after the other: wall, busy CPU
    together: dict[int, tuple[float, float, int]] = {}  # n at once: wall, busy CPU, errors
    try:
        delete(server, [str(order(server, 0)["vps"]["id"])])  # warm-up: uploads the image to the pool
        wall, busy, errors_serial = 0.0, 0.0, 0
        for n in range(most):
            cpu, started = cpu_seconds(), time.perf_counter()
            created = order(server, n)
            [job] = settle(server, [created["job"]["id"]])
            wall += time.perf_counter() - started
            busy += cpu_seconds() - cpu
            errors_serial += job["status"] != "succeeded"
            delete(server, [str(created["vps"]["id"])])  # untimed
            if n + 1 in counts:
                serial[n + 1] = (wall, busy)
        for n in counts:
            took, cpu_used, errors, made = at_once(server, n)
            together[n] = (took, cpu_used, errors)
            delete(server, made)

        netns, uri, folder = second_host(server, tmp)
        try:
            two, busy_two, errors_two, made = at_once(server, most)
            spread = Counter({"main host": domains(URI, made), "second host": domains(uri, made)})
            delete(server, made)
        finally:
            subprocess.run([str(REPO / "scripts/extra-host.sh"), "stop", netns, str(folder)],
                           capture_output=True, timeout=180)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    cores = os.cpu_count() or 1
    table = ["| VPS | case | wall time (s) | / serial | busy CPU (CPU-s) | CPU bound: busy / cores (s) | "
             "wall / CPU bound | errors |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for n in counts:
        s_wall, s_busy = serial[n]
        a_wall, a_busy, a_errors = together[n]
        table.append(f"| {n} | one after the other | {s_wall:.1f} | 1.00x | {s_busy:.1f} | {s_busy / cores:.1f} | "
                     f"{s_wall / (s_busy / cores):.2f}x | {errors_serial if n == most else ''} |")
        table.append(f"| {n} | ordered at once | {a_wall:.1f} | {a_wall / s_wall:.2f}x | {a_busy:.1f} | "
                     f"{a_busy / cores:.1f} | {a_wall / (a_busy / cores):.2f}x | {a_errors} |")
    s_wall = serial[most][0]
    table.append(f"| {most} | ordered at once, two hosts ({spread['main host']} + {spread['second host']} placed) | "
                 f"{two:.1f} | {two / s_wall:.2f}x | {busy_two:.1f} | {busy_two / cores:.1f} | "
                 f"{two / (busy_two / cores):.2f}x | {errors_two} |")
    a_wall, a_busy, _ = together[most]
    errors = errors_serial + sum(e for _, _, e in together.values()) + errors_two
    targets = [
        Target("concurrent: create jobs that did not succeed, every case", errors, 0, unit="jobs", relative=False),
        Target(f"concurrent: {most} ordered at once, wall time / CPU bound (busy CPU-s during it / {cores} cores)",
               a_wall / (a_busy / cores), BUSY),
        Target(f"concurrent: {most} ordered at once / one after the other (wall time)", a_wall / s_wall, SERIAL),
        Target(f"concurrent: {most} at once on two hosts, wall time / CPU bound", two / (busy_two / cores), BUSY),
        Target(f"concurrent: hosts given none of the {most} ordered at once on two hosts",
               sum(placed == 0 for placed in spread.values()), 0, unit="hosts", relative=False),
    ]
    lines = [
        f"`python -m bench.concurrent_bench`: tiny VPS (1 vCPU, 256 MiB) ordered by one customer, "
        "`VPSCTL_WORKER_SLOTS` at its default; wall time from the first order until every create job "
        "succeeded, i.e. every guest runs and answers SSH with the host key generated for it. First "
        f"{most} creates one after the other (each deleted, untimed, before the next order; the rows for "
        "fewer VPS are the first of them), then each number ordered at once, then the most at once "
        "with a second host registered (scripts/extra-host.sh: a libvirtd in namespaces of its own on the "
        "same cores, placement sharing the orders out: it shows that spreading costs nothing more, not "
        "that it is faster). The CPU bound is the busy CPU time of the whole machine during the case "
        "(guests booting, QEMU, libvirtd, the orchestrator) over its cores: no schedule of that work "
        "finishes sooner, so wall / CPU bound near 1 means the cores were kept busy. Under TCG emulation "
        "a booting guest is CPU work, and ordered at once all the guests are up together (the busy CPU "
        "column shows what that costs).",
        "",
        *table,
        "",
    ]
    figure = Figure("concurrent", "Creates until every guest answers SSH", "VPS ordered", "wall time (s)", {
        "one after the other": [(n, serial[n][0]) for n in counts],
        "ordered at once": [(n, together[n][0]) for n in counts],
        "CPU bound of ordered at once (busy CPU-s / cores)": [(n, together[n][1] / cores) for n in counts],
    })
    return Result(KEY, HEADING, lines, targets, [figure])


if __name__ == "__main__":
    from bench.run import main

    raise SystemExit(main([KEY]))
