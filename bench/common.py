"""What the benchmarks share: a real ``vpsctl serve`` on loopback driven over HTTP, and summaries."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import libvirt
from sqlmodel import Session

from orchestrator.compute.designer import mac_for
from orchestrator.core.models import Role
from tests.conftest import base_settings
from tests.smtp import free_port

URI = os.environ.get("VPSCTL_TEST_LIBVIRT_URI", "qemu:///system")
POOL = "vpsctl-test"
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


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


def scrub(conn: libvirt.virConnect, *name_parts: str, pool_name: str = POOL) -> None:
    """Remove every domain and volume whose name or UUID holds one of ``name_parts`` (VPS ids),
    and their addresses pinned in the test network, whatever state a run left them in.  The
    domains are destroyed side by side (libvirtd takes seconds for each under load)."""

    def mine(name: str) -> bool:
        return any(part in name for part in name_parts)

    def remove(dom: libvirt.virDomain) -> None:
        with contextlib.suppress(libvirt.libvirtError):
            if dom.isActive():
                dom.destroy()
        with contextlib.suppress(libvirt.libvirtError):
            dom.undefine()

    doomed = [dom for dom in conn.listAllDomains(0) if mine(dom.name()) or mine(dom.UUIDString())]
    with ThreadPoolExecutor(max_workers=8) as pool_of_threads:
        list(pool_of_threads.map(remove, doomed))
    pool = conn.storagePoolLookupByName(pool_name)
    pool.refresh(0)
    for vol in pool.listAllVolumes(0):
        if mine(vol.name()):
            with contextlib.suppress(libvirt.libvirtError):
                vol.delete(0)
    with contextlib.suppress(libvirt.libvirtError):
        net = conn.networkLookupByName("vpsctl-test")
        macs = {mac_for(part).lower() for part in name_parts}
        for host in ET.fromstring(net.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE)).findall("./ip/dhcp/host"):
            if (host.get("mac") or "").lower() in macs:
                net.update(libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE, libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST,
                           -1, ET.tostring(host, encoding="unicode"),
                           libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE | libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG)


class VpsctlServer:
    """A real `vpsctl serve` (API + in-process worker) on loopback, driven over HTTP.  Its state
    (the SQLite database) lives in ``tmp``; a customer ``bench`` with a plan to order from."""

    def __init__(self, tmp: Path, **overrides: Any) -> None:
        from orchestrator.compute import images
        from orchestrator.core.accounts import create_customer
        from orchestrator.core.auth import create_token
        from orchestrator.core.db import make_engine

        settings = base_settings(tmp, **{"verify_guest_ssh": False, **overrides})
        self.settings = settings
        self.env = dict(os.environ)
        self.env.update(settings.as_environment())
        self.port = free_port()
        self.parked: list[str] = []
        # The server's log outlives the run's folder: where to look when a call fails.
        self.log = Path(tempfile.mkdtemp(prefix="vpsctl-bench-log-")) / "serve.log"
        # What `vpsctl customer create`, `token create` and `image build` do, in this process.
        engine = make_engine(settings)
        with Session(engine, expire_on_commit=False) as session:
            create_customer(session, "bench", "bench@example.test", "en", actor="bench")
            session.commit()
            token = create_token(session, Role.customer, "bench", actor="bench")
            staff = create_token(session, Role.support, actor="bench")
            images.build(settings, session, "tiny")
        engine.dispose()
        self.staff_headers = {"Authorization": f"Bearer {staff}", "Content-Type": "application/json"}
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.server = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "serve", "--port", str(self.port)],
                                       env=self.env, stdout=subprocess.DEVNULL,
                                       stderr=self.log.open("wb"))
        for _ in range(600):
            try:
                self.call("GET", "/healthz")
                break
            except OSError:
                if self.server.poll() is not None:
                    raise RuntimeError(f"vpsctl serve exited: {self.log.read_text()[-2000:]}") from None
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
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')} "
                               f"(server log: {self.log})") from exc

    def sample(self, conn: libvirt.virConnect) -> float:
        """Seconds from the order to its domain running.  The guest is then paused (untimed) and
        left to :meth:`stop`: its create job waits for a DHCP lease that will not come, costing
        nothing, where a booting guest under emulation would take a core from the next samples
        and a delete would have to wait for its boot."""
        started = time.perf_counter()
        vps_id = str(self.call("POST", "/v1/orders", self.body)["vps"]["id"])
        wait_running(conn, vps_id)
        elapsed = time.perf_counter() - started
        self.parked.append(vps_id)
        conn.lookupByUUIDString(vps_id).suspend()
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

    def stop(self, conn: libvirt.virConnect | None = None) -> None:
        """Stop the server, then remove the guests :meth:`sample` left (with ``conn``)."""
        self.server.send_signal(signal.SIGTERM)
        try:
            self.server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait(timeout=30)
        if conn is not None and self.parked:
            scrub(conn, *self.parked)


def cpu_seconds() -> float:
    """CPU time the whole machine has spent busy so far (all processes, all cores): /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def summary(name: str, values: list[float]) -> dict[str, float | str]:
    ordered = sorted(values)
    return {"name": name, "median": statistics.median(ordered), "p90": ordered[int(0.9 * (len(ordered) - 1))],
            "min": ordered[0], "n": len(ordered)}

