"""From ``POST /v1/vps`` to the domain running, beside two peers measured in the same run:

- floor: overlay volume + define + start, straight through libvirt-python (same domain XML);
- virt-install --import of the same guest (overlay created by virt-install from the same base).

Each sample's domain is destroyed and its volumes deleted before the next.  Run by
``scripts/bench.sh`` (``python -m bench.create_bench`` from the repository root); writes
docs/benchmarks.md (section "create").
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import libvirt

from orchestrator.designer import domain_config
from orchestrator.hypervisor.config import VolumeConfig
from orchestrator.models import Host, Vps
from tests.conftest import base_settings

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


URI = os.environ.get("VPSCTL_TEST_LIBVIRT_URI", "qemu:///system")
SAMPLES = int(os.environ.get("BENCH_SAMPLES", "20"))


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


def scrub(conn: libvirt.virConnect, pool: libvirt.virStoragePool, name_part: str) -> None:
    for dom in conn.listAllDomains(0):
        if name_part in dom.name() or name_part in dom.UUIDString():
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    pool.refresh(0)
    for vol in pool.listAllVolumes(0):
        if name_part in vol.name():
            vol.delete(0)


def floor_sample(conn: libvirt.virConnect, pool: libvirt.virStoragePool, base: str, seed: str) -> float:
    vps = Vps(id=str(uuid.uuid4()), name="bench", customer_id=1, image="tiny", vcpus=1, memory_mib=256, disk_gib=2)
    host = Host(name="h", uri=URI, domain_type="qemu", pool_name=pool.name(), network_name="vpsctl-test")
    config = domain_config(vps, host, "bench")
    # the floor boots the same guest, with a seed made beforehand (untimed)
    seed_vol = pool.createXML(VolumeConfig(vps.seed_volume, len(seed), format="raw").to_xml(), 0)
    stream = conn.newStream(0)
    seed_vol.upload(stream, 0, len(seed), 0)
    stream.send(seed)
    stream.finish()
    started = time.perf_counter()
    pool.createXML(VolumeConfig(vps.root_volume, 2 << 30, backing_path=base).to_xml(), 0)
    dom = conn.defineXML(config.to_xml())
    dom.create()
    elapsed = time.perf_counter() - started
    scrub(conn, pool, vps.id)
    return elapsed


def virt_install_sample(conn: libvirt.virConnect, pool: libvirt.virStoragePool, base: str) -> float:
    name = f"vi-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    subprocess.run(
        ["virt-install", "--connect", URI, "--name", name, "--memory", "256", "--vcpus", "1", "--import",
         "--disk", f"pool={pool.name()},size=2,backing_store={base},backing_format=qcow2,format=qcow2,bus=virtio",
         "--network", "network=vpsctl-test,model=virtio", "--osinfo", "generic", "--virt-type", "qemu",
         "--graphics", "none", "--noautoconsole"],
        check=True, capture_output=True)
    wait_running(conn, conn.lookupByName(name).UUIDString())
    elapsed = time.perf_counter() - started
    scrub(conn, pool, name)
    return elapsed


class VpsctlServer:
    """A real `vpsctl serve` (API + in-process worker) on loopback, driven over HTTP."""

    def __init__(self, tmp: Path) -> None:
        settings = base_settings(tmp, verify_guest_ssh=False)
        self.env = dict(os.environ)
        self.env.update({f"VPSCTL_{k.upper()}": str(v) for k, v in settings.model_dump().items() if v is not None})
        self.port = 18080
        cli = [sys.executable, "-m", "orchestrator.cli"]
        token = subprocess.run([*cli, "token", "create", "--role", "customer", "--customer", "bench"],
                               env=self.env, check=True, capture_output=True, text=True).stdout.strip()
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
        self.body = {"name": "bench", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2,
                     "ssh_keys": [(tmp / "k.pub").read_text().strip()]}

    def call(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, headers=self.headers,
                                         method=method)
        with urllib.request.urlopen(request, timeout=30) as response:  # loopback only
            return dict(json.loads(response.read() or b"{}"))

    def sample(self, conn: libvirt.virConnect) -> float:
        started = time.perf_counter()
        vps_id = str(self.call("POST", "/v1/vps", self.body)["vps"]["id"])
        wait_running(conn, vps_id)
        elapsed = time.perf_counter() - started
        # clean up (the create job finishes its remaining steps first) before the next sample
        job = self.call("DELETE", f"/v1/vps/{vps_id}?confirm_data_loss=true")["job"]
        while self.call("GET", f"/v1/jobs/{job['id']}")["status"] not in ("succeeded", "failed"):
            time.sleep(0.05)
        return elapsed

    def stop(self) -> None:
        self.server.send_signal(signal.SIGTERM)
        self.server.wait(timeout=30)


def summary(name: str, values: list[float]) -> dict[str, float | str]:
    ordered = sorted(values)
    return {"name": name, "median": statistics.median(ordered), "p90": ordered[int(0.9 * (len(ordered) - 1))],
            "min": ordered[0], "n": len(ordered)}


def main() -> None:
    from orchestrator.keys import generate_host_key
    from orchestrator.seed import Seed

    tmp = Path(tempfile.mkdtemp(prefix="vpsctl-bench-"))
    server = VpsctlServer(tmp)
    conn = libvirt.open(URI)
    try:
        server.sample(conn)  # warm-up: the first create uploads the image into the pool
        pool = conn.storagePoolLookupByName("vpsctl-test")
        pool.refresh(0)
        base = next(v.path() for v in pool.listAllVolumes(0) if v.name().startswith("image-tiny-"))
        seed = Seed(str(uuid.uuid4()), "bench", (), generate_host_key()).to_iso()
        with_peer = shutil.which("virt-install") is not None
        floor, ours, peer = [], [], []
        # Interleaved rounds, so that the machine's noise falls on all three alike.
        for _ in range(SAMPLES):
            ours.append(server.sample(conn))
            floor.append(floor_sample(conn, pool, base, seed))
            if with_peer:
                peer.append(virt_install_sample(conn, pool, base))
        rows = [summary("floor: overlay + define + start (libvirt-python)", floor),
                summary("vpsctl: POST /v1/vps -> domain running", ours)]
        if peer:
            rows.append(summary("virt-install --import (same guest)", peer))
        write_report(rows)
    finally:
        server.stop()
        conn.close()
        shutil.rmtree(tmp, ignore_errors=True)


def write_report(rows: list[dict[str, float | str]]) -> None:
    floor = float(rows[0]["median"])
    lines = [
        "## create: from `POST /v1/vps` to the domain running",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `scripts/bench.sh` on this project's "
        f"CI machine kind (2 cores, TCG emulation, libvirt {libvirt.getVersion() // 1000000}."
        f"{libvirt.getVersion() // 1000 % 1000}); {rows[0]['n']} samples each, interleaved in one run, "
        "same base image. vpsctl's time includes the HTTP call, validation, placement, the job queue, "
        "the NoCloud seed (key generation, ISO, upload) and the worker's database writes.",
        "",
        "| path | median (s) | p90 (s) | min (s) | median / floor |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(f"| {row['name']} | {float(row['median']):.3f} | {float(row['p90']):.3f} | "
                     f"{float(row['min']):.3f} | {float(row['median']) / floor:.2f}x |")
    lines.append("")
    out = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
    text = out.read_text() if out.exists() else "# Benchmarks\n\n"
    start = text.find("## create:")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + text[end + 1:] if end >= 0 else text[:start]
    out.write_text(text.rstrip() + "\n\n" + "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
