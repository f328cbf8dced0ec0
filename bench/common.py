"""What the benchmarks share: a real ``vpsctl serve`` on loopback driven over HTTP, and summaries."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import libvirt

from tests.conftest import base_settings

URI = os.environ.get("VPSCTL_TEST_LIBVIRT_URI", "qemu:///system")


def wait_running(conn: libvirt.virConnect, vps_id: str, timeout: float = 120) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            dom = conn.lookupByUUIDString(vps_id)
            if dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING:
                return
        except libvirt.libvirtError:
            pass
        time.sleep(0.005)
    raise TimeoutError(vps_id)


class VpsctlServer:
    """A real `vpsctl serve` (API + in-process worker) on loopback, driven over HTTP."""

    def __init__(self, tmp: Path, **overrides: Any) -> None:
        settings = base_settings(tmp, **{"verify_guest_ssh": False, **overrides})
        self.env = dict(os.environ)
        self.env.update(settings.as_environment())
        self.port = 18080
        cli = [sys.executable, "-m", "orchestrator.cli"]
        subprocess.run([*cli, "customer", "create", "bench", "--email", "bench@example.test", "--language", "en"],
                       env=self.env, check=True, capture_output=True)
        token = subprocess.run([*cli, "token", "create", "--role", "customer", "--customer", "bench"],
                               env=self.env, check=True, capture_output=True, text=True).stdout.strip()
        staff = subprocess.run([*cli, "token", "create", "--role", "support"],
                               env=self.env, check=True, capture_output=True, text=True).stdout.strip()
        self.staff_headers = {"Authorization": f"Bearer {staff.splitlines()[-1]}",
                              "Content-Type": "application/json"}
        subprocess.run([*cli, "image", "build", "tiny"], env=self.env, check=True, capture_output=True)
        self.server = subprocess.Popen([*cli, "serve", "--port", str(self.port)], env=self.env,
                                       stdout=subprocess.DEVNULL, stderr=(tmp / "serve.log").open("wb"))
        self.headers = {"Authorization": f"Bearer {token.splitlines()[-1]}", "Content-Type": "application/json"}
        for _ in range(300):
            try:
                self.call("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / "k")], check=True)
        # A customer's VPS is ordered from a plan (R8.1-setup-fee): one published for the benchmarks.
        self.call("POST", "/v1/plans", {"code": "bench", "name": "bench", "vcpus": 1, "memory_mib": 256,
                                        "disk_gib": 2, "terms": [1], "monthly_price_ht": "10.00"}, staff=True)
        self.body = {"plan": "bench", "term_months": 1, "name": "bench", "image": "tiny",
                     "ssh_keys": [(tmp / "k.pub").read_text().strip()]}

    def call(self, method: str, path: str, body: object = None, staff: bool = False) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                         headers=self.staff_headers if staff else self.headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # loopback only
                return dict(json.loads(response.read() or b"{}"))
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')}") from exc

    def sample(self, conn: libvirt.virConnect) -> float:
        started = time.perf_counter()
        vps_id = str(self.call("POST", "/v1/orders", self.body)["vps"]["id"])
        wait_running(conn, vps_id)
        elapsed = time.perf_counter() - started
        # clean up (the create job finishes its remaining steps first) before the next sample
        job = self.call("DELETE", f"/v1/vps/{vps_id}?confirm_data_loss=true")["job"]
        while self.call("GET", f"/v1/jobs/{job['id']}")["status"] not in ("succeeded", "failed"):
            time.sleep(0.05)
        return elapsed

    def create_running(self, conn: libvirt.virConnect) -> str:
        """Order a VPS and wait until its create job finished; returns its id."""
        created = self.call("POST", "/v1/orders", self.body)
        job = created["job"]
        while job["status"] not in ("succeeded", "failed"):
            time.sleep(0.1)
            job = self.call("GET", f"/v1/jobs/{job['id']}")
        assert job["status"] == "succeeded", job
        vps_id = str(created["vps"]["id"])
        wait_running(conn, vps_id)
        return vps_id

    def stop(self) -> None:
        self.server.send_signal(signal.SIGTERM)
        self.server.wait(timeout=30)


def provenance() -> str:
    """Where a figure comes from, read from the system: the commit measured (and whether the tree
    had changes), the machine's CPU, cores, memory and kernel, the libvirt and QEMU versions."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    # The report itself is rewritten by each benchmark of a run: not a change of the code measured.
    if git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)docs/benchmarks.md"):
        commit += " (with uncommitted changes)"
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    mem_gib = int(Path("/proc/meminfo").read_text().split()[1]) / (1 << 20)
    conn = libvirt.open(URI)
    try:
        lib, hyp = conn.getLibVersion(), conn.getVersion()
    finally:
        conn.close()
    return (f"commit {commit}; {os.cpu_count()} CPUs ({cpu}), {mem_gib:.0f} GiB, Linux {os.uname().release}; "
            f"libvirt {lib // 1000000}.{lib // 1000 % 1000}.{lib % 1000}, "
            f"QEMU {hyp // 1000000}.{hyp // 1000 % 1000}.{hyp % 1000}")


def cpu_seconds() -> float:
    """CPU time the whole machine has spent busy so far (all processes, all cores): /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def summary(name: str, values: list[float]) -> dict[str, float | str]:
    ordered = sorted(values)
    return {"name": name, "median": statistics.median(ordered), "p90": ordered[int(0.9 * (len(ordered) - 1))],
            "min": ordered[0], "n": len(ordered)}




def write_section(heading: str, lines: list[str]) -> None:
    """Replace (or add) the section of docs/benchmarks.md that starts with ``## heading``."""
    out = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
    text = out.read_text() if out.exists() else "# Benchmarks\n\n"
    start = text.find(f"## {heading}")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + text[end + 1:] if end >= 0 else text[:start]
    out.write_text(text.rstrip() + "\n\n" + "\n".join(lines))
    print("\n".join(lines))
