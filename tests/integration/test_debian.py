"""A real Debian 12 VPS (cloud-init reads the orchestrator's seed).  Slow to build and boot:
run with ``VPSCTL_TEST_DEBIAN=1 scripts/test.sh`` (marker ``slow``)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import libvirt
import libvirt_qemu
import pytest

from orchestrator.core.errors import HypervisorError
from orchestrator.hypervisor.libvirt_driver import LibvirtDriver
from tests.conftest import URI, Api, register_image
from tests.integration.lifecycle import Guest, eventually, order

pytestmark = [pytest.mark.libvirt, pytest.mark.slow]
GIB_KIB = 1 << 20


def settled(guest: Guest, within: float = 600) -> None:
    """Wait for cloud-init to finish: minutes on a busy machine without KVM.  A short SSH session
    at a time: cloud-init restarts sshd on the way, and a connection it drops may hang until its
    own timeout."""
    deadline = time.monotonic() + within
    while True:
        try:
            status = guest.ssh("cloud-init status", timeout=30)
        except Exception:
            status = ""
        if "status: done" in status:
            return
        assert "status: error" not in status, guest.ssh("cloud-init status --long")
        if time.monotonic() > deadline:
            raise AssertionError(f"cloud-init not done within {within} s: {status!r}")
        time.sleep(3)


def test_debian_vps_boots_with_our_host_key_and_grown_disk(live_api: Api, tmp_path: Path) -> None:
    register_image(live_api.engine, live_api.settings, "debian-12")
    guest = order(live_api, tmp_path, vcpus=2, memory_mib=768, disk_gib=4, image="debian-12")
    assert guest.record["status"] == "running"
    settled(guest)
    os_release = guest.ssh("cat /etc/os-release")
    assert 'VERSION_CODENAME=bookworm' in os_release
    assert guest.ssh("hostname").strip() == "life"
    # cloud-init grew the root filesystem to the 4 GiB disk
    root_kib = int(guest.ssh("df -k --output=size / | tail -n 1"))
    assert root_kib > 3 * 1024 * 1024
    # the only host key is the one the orchestrator generated (verified by ssh_run already)
    assert guest.ssh("ls /etc/ssh/ | grep -c '_key$'").strip() == "1"
    job = live_api.call("DELETE", f"/v1/vps/{guest.id}?confirm_data_loss=true", guest.token).json()["job"]
    assert live_api.wait_job(job["id"], guest.token)["status"] == "succeeded"


def agent(guest: Guest, command: str) -> Any:
    """Ask the guest agent directly, as a person at the host would (virsh qemu-agent-command)."""
    answer = libvirt_qemu.qemuAgentCommand(guest.domain(), json.dumps({"execute": command}), 30, 0)
    return json.loads(answer)["return"]


def root_kib(guest: Guest) -> int:
    return int(guest.ssh("df -k --output=size / | tail -n 1"))


def test_debian_disk_grown_live_is_usable_at_once_and_its_backup_is_quiesced(live_api: Api, tmp_path: Path) -> None:
    """A live disk grow reaches the root filesystem without a reboot (the image's udev rule on the
    capacity change runs growpart and resize2fs); a backup of the running guest freezes its
    filesystems through the guest agent and thaws them, also when the backup fails."""
    register_image(live_api.engine, live_api.settings, "debian-12")
    guest = order(live_api, tmp_path, vcpus=2, memory_mib=768, disk_gib=4, image="debian-12")
    settled(guest)
    # the guest agent answers on its channel (virtio-serial, org.qemu.guest_agent.0)
    eventually(lambda: _answers(guest), within=60, what="the guest agent answering")
    before = guest.ssh("df -h /")
    print(f"before the grow:\n{before}")
    assert 3 * GIB_KIB < root_kib(guest) < 4 * GIB_KIB
    boot_id = guest.ssh("cat /proc/sys/kernel/random/boot_id")
    uptime = float(guest.ssh("cut -d' ' -f1 /proc/uptime"))

    response = live_api.call("POST", f"/v1/vps/{guest.id}/resize", live_api.support,
                             json={"disk_gib": 6, "reason": "live disk grow test"})
    assert response.status_code == 202, response.text
    assert response.json()["plan"]["mode"] == "live" and response.json()["plan"]["reboot"] is False
    job = live_api.wait_job(response.json()["job"]["id"], live_api.support)
    assert job["status"] == "succeeded", job
    assert int(guest.ssh("cat /sys/block/vda/size")) * 512 == 6 << 30
    grown = eventually(lambda: root_kib(guest) > 5.5 * GIB_KIB, within=60, what="/ grown to the disk")
    assert grown
    after = guest.ssh("df -h /")
    print(f"after the live grow to 6 GiB:\n{after}")
    # 6 GiB less the 128 MiB boot partition and ext4's own blocks ("3.8G" before)
    assert after.split("\n")[1].split()[1] in ("5.8G", "5.9G"), after
    assert guest.ssh("cat /proc/sys/kernel/random/boot_id") == boot_id  # no reboot
    assert float(guest.ssh("cut -d' ' -f1 /proc/uptime")) > uptime
    assert guest.ssh("systemctl show -p Result --value vps-growroot.service").strip() == "success"
    # the new room is usable: 4.5 GiB on /, more than it had free before (3.3G)
    guest.ssh("fallocate -l 4608M /big && rm /big")

    # backup of the running guest: quiesced through the agent
    guest.ssh("echo quiesced > /root/marker")
    job = guest.do("backup", {"note": "quiesced"})
    assert job["status"] == "succeeded", job
    copied = next(e["message"] for e in job["events"] if e["step"] == "copy_root_disk" and e["status"] == "done")
    assert "quiesced: the guest agent froze" in copied, copied
    print(f"backup step: {copied}")
    [backup] = live_api.call("GET", f"/v1/vps/{guest.id}/backups", live_api.alice).json()["items"]
    assert backup["status"] == "available" and backup["quiesced"] is True and backup["consistency"] == "quiesced"
    # the guest's agent logged the freeze (its journal, read inside the guest); the filesystems
    # are thawed again and writable
    journal = guest.ssh("journalctl -t qemu-ga --no-pager -o cat")
    assert journal.count("guest-fsfreeze called") == 1, journal
    assert agent(guest, "guest-fsfreeze-status") == "thawed"
    guest.ssh("echo after > /root/after; sync", timeout=20)

    # a backup that fails once the filesystems are frozen still thaws them
    driver = LibvirtDriver(URI)
    try:
        with pytest.raises(HypervisorError):
            driver.backup_disk_live(guest.id, "vdz", live_api.settings.hosts.backup_pool, "failing.qcow2", 60)
    finally:
        driver.close()
    assert guest.ssh("journalctl -t qemu-ga --no-pager -o cat | grep -c 'guest-fsfreeze called'").strip() == "2"
    assert agent(guest, "guest-fsfreeze-status") == "thawed"
    guest.ssh("echo still-writable > /root/after; sync", timeout=20)

    job = live_api.call("DELETE", f"/v1/vps/{guest.id}?confirm_data_loss=true", guest.token).json()["job"]
    assert live_api.wait_job(job["id"], guest.token)["status"] == "succeeded"


def _answers(guest: Guest) -> bool:
    try:
        agent(guest, "guest-ping")
    except libvirt.libvirtError:
        return False
    return True
