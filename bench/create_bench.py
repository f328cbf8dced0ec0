"""From a customer's order (``POST /v1/orders``) to the domain running, beside two peers measured in the same run:

- floor: overlay volume + define + start, straight through libvirt-python (same domain XML);
- virt-install --import of the same guest (overlay created by virt-install from the same base).

Each sample's domain is destroyed and its volumes deleted before the next.  Targets: vpsctl's
median at most 1.5 x the floor's, and no more than virt-install's.  Run by ``scripts/bench.sh``
(``python -m bench.create_bench`` from the repository root writes its section of
docs/benchmarks.md).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import libvirt

from bench.common import URI, VpsctlServer, scrub, summary, wait_running
from bench.report import Result, Target, count, libvirt_facts
from orchestrator.compute.designer import domain_config
from orchestrator.core.models import Host, Vps
from orchestrator.core.settings import Settings
from orchestrator.hypervisor.config import VolumeConfig

KEY = "create"
HEADING = "Create: from `POST /v1/orders` to the domain running"
TARGET_FLOOR = 1.5  # vpsctl's median at most 1.5 x the floor's
TARGET_PEER = 1.0  # and no slower than virt-install's


def floor_sample(conn: libvirt.virConnect, pool: libvirt.virStoragePool, base: str, seed: bytes,
                 domain_type: str) -> float:
    vps = Vps(id=str(uuid.uuid4()), name="bench", customer_id=1, image="tiny", vcpus=1, memory_mib=256, disk_gib=2)
    host = Host(name="h", uri=URI, domain_type=domain_type, pool_name=pool.name(), network_name="vpsctl-test")
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
    scrub(conn, vps.id, pool.name())
    return elapsed


def virt_install_sample(conn: libvirt.virConnect, pool: libvirt.virStoragePool, base: str,
                        domain_type: str) -> float:
    name = f"vi-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    subprocess.run(
        ["virt-install", "--connect", URI, "--name", name, "--memory", "256", "--vcpus", "1", "--import",
         "--disk", f"pool={pool.name()},size=2,backing_store={base},backing_format=qcow2,format=qcow2,bus=virtio",
         "--network", "network=vpsctl-test,model=virtio", "--osinfo", "generic", "--virt-type", domain_type,
         "--graphics", "none", "--noautoconsole"],
        check=True, capture_output=True)
    wait_running(conn, conn.lookupByName(name).UUIDString())
    elapsed = time.perf_counter() - started
    scrub(conn, name, pool.name())
    return elapsed


def measure(samples: int | None = None, peer: bool = True) -> Result:
    """``samples`` rounds of one create each way, interleaved; ``peer``: virt-install too, when
    it is installed."""
    from orchestrator.compute.keys import generate_host_key
    from orchestrator.compute.seed import Seed

    samples = samples or count(20, 3)
    domain_type = "kvm" if libvirt_facts()[2] == "KVM" else "qemu"  # as vpsctl's driver chooses
    tmp = Path(tempfile.mkdtemp(prefix="vpsctl-bench-"))
    server = VpsctlServer(tmp)
    conn = libvirt.open(URI)
    try:
        server.sample(conn)  # warm-up: the first create uploads the image into the pool
        pool = conn.storagePoolLookupByName("vpsctl-test")
        pool.refresh(0)
        base = next(v.path() for v in pool.listAllVolumes(0) if v.name().startswith("image-tiny-"))
        seed = Seed(str(uuid.uuid4()), "bench", (), generate_host_key()).to_iso()
        with_peer = peer and shutil.which("virt-install") is not None
        floor, ours, peers = [], [], []
        # Interleaved rounds, so that the machine's noise falls on all three alike.
        for _ in range(samples):
            ours.append(server.sample(conn))
            floor.append(floor_sample(conn, pool, base, seed, domain_type))
            if with_peer:
                peers.append(virt_install_sample(conn, pool, base, domain_type))
    finally:
        server.stop(conn)
        conn.close()
        shutil.rmtree(tmp, ignore_errors=True)
    rows = [summary("floor: overlay + define + start (libvirt-python)", floor),
            summary("vpsctl: POST /v1/orders -> domain running", ours)]
    if peers:
        rows.append(summary("peer: virt-install --import (same guest)", peers))
    floor_median, ours_median = float(rows[0]["median"]), float(rows[1]["median"])
    lines = [
        f"`python -m bench.create_bench`: {samples} samples of each path, interleaved in one run, the same "
        f"base image and guest (1 vCPU, 256 MiB, domain type `{domain_type}`); each sample's domain and "
        "volumes are removed before the next (vpsctl's paused, removed at the end). vpsctl's time runs "
        "from the customer's order over HTTP to "
        "the domain running, through validation, placement, the job queue, the NoCloud seed (key "
        "generation, ISO, upload) and the worker's database writes; the floor defines and starts the "
        "same domain straight through libvirt-python, with a seed made beforehand."
        + ("" if peers else " virt-install is not installed: no peer row."),
        "",
        "| path | median (s) | p90 (s) | min (s) | median / floor |",
        "|---|---|---|---|---|",
        *[f"| {row['name']} | {float(row['median']):.3f} | {float(row['p90']):.3f} | {float(row['min']):.3f} | "
          f"{float(row['median']) / floor_median:.2f}x |" for row in rows],
        "",
    ]
    targets = [Target("create: vpsctl median / floor median", ours_median / floor_median, TARGET_FLOOR)]
    if peers:
        targets.append(Target("create: vpsctl median / virt-install median", ours_median / float(rows[2]["median"]),
                              TARGET_PEER))
    return Result(KEY, HEADING, lines, targets)


if __name__ == "__main__":
    from bench.run import main

    raise SystemExit(main([KEY]))
