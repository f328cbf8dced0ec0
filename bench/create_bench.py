"""From ``POST /v1/vps`` to the domain running, beside two peers measured in the same run:

- floor: overlay volume + define + start, straight through libvirt-python (same domain XML);
- virt-install --import of the same guest (overlay created by virt-install from the same base).

Each sample's domain is destroyed and its volumes deleted before the next.  Run by
``scripts/bench.sh`` (``python -m bench.create_bench`` from the repository root); writes
docs/benchmarks.md (section "create").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import libvirt

from bench.common import URI, VpsctlServer, provenance, summary, wait_running, write_section
from orchestrator.compute.designer import domain_config
from orchestrator.core.models import Host, Vps
from orchestrator.core.settings import Settings
from orchestrator.hypervisor.config import VolumeConfig

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


SAMPLES = int(os.environ.get("BENCH_SAMPLES", "20"))


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
    # The test network's subnet: the interface's filter learns the guest's address from its DHCP server.
    config = domain_config(vps, host, "bench", Settings(guest_network="vpsctl-test", guest_subnet="192.168.151.0/24"))
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


def main() -> None:
    from orchestrator.compute.keys import generate_host_key
    from orchestrator.compute.seed import Seed

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
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `scripts/bench.sh` on {provenance()} "
        f"(TCG emulation); {rows[0]['n']} samples each, interleaved in one run, "
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
    write_section("create:", lines)

if __name__ == "__main__":
    main()
