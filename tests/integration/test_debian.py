"""A real Debian 12 VPS (cloud-init reads the orchestrator's seed).  Slow to build and boot:
run with ``VPSCTL_TEST_DEBIAN=1 scripts/test.sh`` (marker ``slow``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Api, register_image
from tests.integration.lifecycle import order

pytestmark = [pytest.mark.libvirt, pytest.mark.slow]


def test_debian_vps_boots_with_our_host_key_and_grown_disk(live_api: Api, tmp_path: Path) -> None:
    register_image(live_api.engine, live_api.settings, "debian-12")
    guest = order(live_api, tmp_path, vcpus=2, memory_mib=768, disk_gib=4, image="debian-12")
    assert guest.record["status"] == "running"
    # wait for cloud-init to finish (it restarts sshd on the way), then look around
    os_release = guest.ssh_eventually("cloud-init status --wait >/dev/null; cat /etc/os-release", within=180)
    assert 'VERSION_CODENAME=bookworm' in os_release
    assert guest.ssh("hostname").strip() == "life"
    # cloud-init grew the root filesystem to the 4 GiB disk
    root_kib = int(guest.ssh("df -k --output=size / | tail -n 1"))
    assert root_kib > 3 * 1024 * 1024
    # the only host key is the one the orchestrator generated (verified by ssh_run already)
    assert guest.ssh("ls /etc/ssh/ | grep -c '_key$'").strip() == "1"
    job = live_api.call("DELETE", f"/v1/vps/{guest.id}?confirm_data_loss=true", guest.token).json()["job"]
    assert live_api.wait_job(job["id"], guest.token)["status"] == "succeeded"
