"""From a customer's order (``POST /v1/orders``) to the domain running, beside two peers
measured in the same run, in rounds (one sample of each path a round):

- floor: overlay volume + define + start of vpsctl's own definition of the order, straight
  through libvirt-python;
- virt-install --import from the same base image (overlay made by virt-install): shown, with no
  target, since its guest is a simpler one (no address filter, no seed disk).

Each sample's domain is paused once running and removed at the end.  Target: vpsctl at most
1.5 x the floor (the median of the rounds' ratios).  Run by
``scripts/bench.sh``; ``python -m bench.create_bench`` writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import libvirt

from bench.common import URI, VpsctlServer, scrub, summary, wait_running
from bench.report import Result, Target, count, libvirt_facts
from orchestrator.compute.designer import domain_config, live_ceilings
from orchestrator.core.models import Host, Vps
from orchestrator.core.settings import Settings
from orchestrator.hypervisor.config import VolumeConfig

KEY = "create"
HEADING = "Create: from `POST /v1/orders` to the domain running"
TARGET_FLOOR = 1.5  # vpsctl's median at most 1.5 x the floor's


def floor_sample(conn: libvirt.virConnect, pool: libvirt.virStoragePool, base: str, seed: bytes,
                 domain_type: str, settings: Settings, parked: list[str]) -> float:
    """Overlay + define + start of the same guest; the domain is then paused (untimed) and
    added to ``parked``, for :func:`bench.common.scrub` at the end, as vpsctl's are."""
    # The very definition vpsctl makes of the order (its live ceilings, filter, serial log), with
    # the server's settings.
    max_vcpus, max_memory_mib = live_ceilings(1, 256, settings)
    vps = Vps(id=str(uuid.uuid4()), name="bench", customer_id=1, image="tiny", vcpus=1, memory_mib=256, disk_gib=2,
              max_vcpus=max_vcpus, max_memory_mib=max_memory_mib)
    host = Host(name="h", uri=URI, domain_type=domain_type, pool_name=pool.name(), network_name="vpsctl-test")
    config = domain_config(vps, host, "bench", settings)
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
    parked.append(vps.id)
    dom.suspend()
    return elapsed


def virt_install_sample(conn: libvirt.virConnect, pool: libvirt.virStoragePool, base: str,
                        domain_type: str, parked: list[str]) -> float:
    name = f"vi-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    subprocess.run(
        ["virt-install", "--connect", URI, "--name", name, "--memory", "256", "--vcpus", "1", "--import",
         "--disk", f"pool={pool.name()},size=2,backing_store={base},backing_format=qcow2,format=qcow2,bus=virtio",
         "--network", "network=vpsctl-test,model=virtio", "--osinfo", "generic", "--virt-type", domain_type,
         "--graphics", "none", "--noautoconsole"],
        check=True, capture_output=True)
    dom = conn.lookupByName(name)
    wait_running(conn, dom.UUIDString())
    elapsed = time.perf_counter() - started
    parked.append(name)
    dom.suspend()
    return elapsed


def paired(ours: list[float], theirs: list[float]) -> float:
    """The median of the ratios of samples taken in the same round."""
    return statistics.median(a / b for a, b in zip(ours, theirs, strict=True))


def measure(samples: int | None = None, peer: bool = True) -> Result:
    """``samples`` rounds of one create each way, interleaved; ``peer``: virt-install too, when
    it is installed."""
    from orchestrator.compute.keys import generate_host_key
    from orchestrator.compute.seed import Seed

    samples = samples or count(20, 3)
    domain_type = "kvm" if libvirt_facts()[2] == "KVM" else "qemu"  # as vpsctl's driver chooses
    tmp = Path(tempfile.mkdtemp(prefix="vpsctl-bench-"))
    # Room for every sample's VPS: they stay (paused) until the end.  Their create jobs then wait
    # for a DHCP lease that will not come: they give their worker slot back at once and look
    # again only in an hour, so that they do not take the slots the next orders need.  Neither
    # setting touches the path measured (order -> domain running).
    server = VpsctlServer(tmp, cpu_allocation_ratio=16.0, quota_vps=samples + 1, quota_vcpus=samples + 1,
                          job_wait_hold_seconds=0, job_wait_poll_seconds=3600)
    conn = libvirt.open(URI)
    floor: list[float] = []
    ours: list[float] = []
    peers: list[float] = []
    parked: list[str] = []
    try:
        server.sample(conn)  # warm-up: the first create uploads the image into the pool
        pool = conn.storagePoolLookupByName("vpsctl-test")
        pool.refresh(0)
        base = next(v.path() for v in pool.listAllVolumes(0) if v.name().startswith("image-tiny-"))
        seed = Seed(str(uuid.uuid4()), "bench", (), generate_host_key()).to_iso()
        with_peer = peer and shutil.which("virt-install") is not None
        # Interleaved rounds, so that the machine's noise falls on all three alike.
        for _ in range(samples):
            ours.append(server.sample(conn))
            floor.append(floor_sample(conn, pool, base, seed, domain_type, server.settings, parked))
            if with_peer:
                peers.append(virt_install_sample(conn, pool, base, domain_type, parked))
            if len(parked) >= 10:  # untimed, between rounds: not too many paused guests at once
                scrub(conn, *parked, pool_name=pool.name())
                parked.clear()
    finally:
        server.stop()
        scrub(conn, *server.parked, *parked)  # all at once: each takes libvirtd a second or more
        conn.close()
        shutil.rmtree(tmp, ignore_errors=True)
    rows = [summary("floor: overlay + define + start (libvirt-python)", floor),
            summary("vpsctl: POST /v1/orders -> domain running", ours)]
    if peers:
        rows.append(summary("peer: virt-install --import (no address filter, no seed disk)", peers))
    floor_median, ours_median = float(rows[0]["median"]), float(rows[1]["median"])
    lines = [
        f"`python -m bench.create_bench`: {samples} samples of each path, interleaved in one run, the same "
        f"base image and guest (1 vCPU, 256 MiB, domain type `{domain_type}`); each sample's domain is "
        "paused once running (untimed) and removed at the end, on both paths. vpsctl's time runs "
        "from the customer's order over HTTP to "
        "the domain running, through validation, placement, the job queue, the NoCloud seed (key "
        "generation, ISO, upload) and the worker's database writes; the floor defines and starts the "
        "same domain (vpsctl's definition of the order) straight through libvirt-python, with a seed "
        "made beforehand. The paused VPS's create jobs wait for a lease that will not come: the server "
        "runs with `VPSCTL_JOB_WAIT_HOLD_SECONDS=0` and `VPSCTL_JOB_WAIT_POLL_SECONDS=3600` so that "
        "they leave the worker's slots to the next orders (nothing on the path measured waits)."
        + ("" if peers else " virt-install is not installed: no peer row."),
        "",
        "| path | median (s) | p90 (s) | min (s) | median / floor | per round / floor's (median) |",
        "|---|---|---|---|---|---|",
        *[f"| {row['name']} | {float(row['median']):.3f} | {float(row['p90']):.3f} | {float(row['min']):.3f} | "
          f"{float(row['median']) / floor_median:.2f}x | {paired(times, floor):.2f}x |"
          for row, times in zip(rows, (floor, ours, peers), strict=False)],
        "",
        "The target compares each round's samples (taken one after the other, under the same load) "
        "and keeps the median of those ratios.",
        "",
    ]
    targets = [Target("create: vpsctl / floor, median of the rounds' ratios", paired(ours, floor), TARGET_FLOOR,
                      note=f"medians {ours_median:.3f} s / {floor_median:.3f} s")]
    return Result(KEY, HEADING, lines, targets)


if __name__ == "__main__":
    from bench.run import main

    raise SystemExit(main([KEY]))
