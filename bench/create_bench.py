"""From ``POST /v1/vps`` to the domain running, beside two peers measured in the same run:

- floor: overlay volume + define + start, straight through libvirt-python (same domain XML);
- virt-install --import of the same guest (overlay created by virt-install from the same base).

Each sample's domain is destroyed and its volumes deleted before the next.  Run by
``scripts/bench.sh``; writes docs/benchmarks.md (section "create").
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
from collections.abc import Callable
from pathlib import Path

import libvirt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.designer import domain_config
from orchestrator.hypervisor.config import VolumeConfig
from orchestrator.models import Host, Vps
from tests.conftest import base_settings

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


def vpsctl_samples(tmp: Path) -> list[float]:
    """A real `vpsctl serve` (API + in-process worker) on loopback, driven over HTTP."""
    settings = base_settings(tmp, verify_guest_ssh=False)
    env = dict(os.environ)
    env.update({f"VPSCTL_{k.upper()}": str(v) for k, v in settings.model_dump().items() if v is not None})
    port = 18080
    token = subprocess.run([sys.executable, "-m", "orchestrator.cli", "token", "create", "--role", "customer",
                            "--customer", "bench"], env=env, check=True, capture_output=True,
                           text=True).stdout.strip().splitlines()[-1]
    subprocess.run([sys.executable, "-m", "orchestrator.cli", "image", "build", "tiny"], env=env, check=True,
                   capture_output=True)
    server = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=(tmp / "serve.log").open("wb"))
    conn = libvirt.open(URI)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(method: str, path: str, body: object = None) -> dict[str, object]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers,
                                         method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return dict(json.loads(response.read() or b"{}"))

    try:
        for _ in range(200):
            try:
                call("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        pub = (tmp / "k.pub")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / "k")], check=True)
        body = {"name": "bench", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2,
                "ssh_keys": [pub.read_text().strip()]}
        # warm-up: the first create uploads the image to the pool
        samples = []
        for i in range(SAMPLES + 1):
            started = time.perf_counter()
            created = call("POST", "/v1/vps", body)
            vps_id = str(created["vps"]["id"])  # type: ignore[index]
            wait_running(conn, vps_id)
            elapsed = time.perf_counter() - started
            if i > 0:
                samples.append(elapsed)
            job = call("DELETE", f"/v1/vps/{vps_id}?confirm_data_loss=true")["job"]
            while call("GET", f"/v1/jobs/{job['id']}")["status"] not in ("succeeded", "failed"):  # type: ignore[index]
                time.sleep(0.05)
            # let the create job finish its remaining steps before the next sample
            time.sleep(0.2)
        return samples
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        conn.close()


def summary(name: str, values: list[float]) -> dict[str, float | str]:
    ordered = sorted(values)
    return {"name": name, "median": statistics.median(ordered), "p90": ordered[int(0.9 * (len(ordered) - 1))],
            "min": ordered[0], "n": len(ordered)}


def run(measure: Callable[[], float]) -> list[float]:
    return [measure() for _ in range(SAMPLES)]


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="vpsctl-bench-"))
    try:
        from orchestrator.keys import generate_host_key
        from orchestrator.seed import Seed

        vps_results = vpsctl_samples(tmp)
        conn = libvirt.open(URI)
        pool = conn.storagePoolLookupByName("vpsctl-test")
        pool.refresh(0)
        base = next(v.path() for v in pool.listAllVolumes(0) if v.name().startswith("image-tiny-"))
        seed = Seed(str(uuid.uuid4()), "bench", (), generate_host_key()).to_iso()
        floor = run(lambda: floor_sample(conn, pool, base, seed))
        peer = run(lambda: virt_install_sample(conn, pool, base)) if shutil.which("virt-install") else []
        conn.close()
        rows = [summary("floor: overlay + define + start (libvirt-python)", floor),
                summary("vpsctl: POST /v1/vps -> domain running", vps_results)]
        if peer:
            rows.append(summary("virt-install --import (same guest)", peer))
        write_report(rows)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_report(rows: list[dict[str, float | str]]) -> None:
    floor = float(rows[0]["median"])
    lines = [
        "## create: from `POST /v1/vps` to the domain running",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `scripts/bench.sh` on this project's "
        f"CI machine kind (2 cores, TCG emulation, libvirt {libvirt.getVersion() // 1000000}."
        f"{libvirt.getVersion() // 1000 % 1000}); {rows[0]['n']} samples each, same run, same base image.",
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
