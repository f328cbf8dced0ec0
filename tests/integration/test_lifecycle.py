"""Power, suspend, resize and network cut-off on a real libvirtd + QEMU, each checked from
inside the tiny guest where there is something to see."""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from orchestrator.hypervisor.libvirt_driver import refresh_pool
from tests.conftest import Api
from tests.integration.lifecycle import Guest, mem_total_mib, order
from tests.integration.lifecycle import eventually as wait_until

pytestmark = pytest.mark.libvirt


def test_stop_start_reboot(live_api: Api, tmp_path: Path) -> None:
    guest = order(live_api, tmp_path)
    boot_id = guest.ssh("cat /proc/sys/kernel/random/boot_id").strip()

    job = guest.do("stop")  # graceful: tiny powers off on the ACPI button
    assert job["status"] == "succeeded", job
    assert "shut down by the guest" in " ".join(e["message"] for e in job["events"])
    assert guest.record["status"] == "stopped"
    assert guest.domain().state()[0] == libvirt.VIR_DOMAIN_SHUTOFF

    assert guest.do("start")["status"] == "succeeded"
    assert guest.record["status"] == "running"
    second_boot = guest.ssh_eventually("cat /proc/sys/kernel/random/boot_id").strip()
    assert second_boot != boot_id

    assert guest.do("reboot", {"hard": True})["status"] == "succeeded"
    third_boot = guest.ssh_eventually("cat /proc/sys/kernel/random/boot_id").strip()
    assert third_boot != second_boot

    # soft: the guest hears the ACPI button, shuts down cleanly, and comes back
    assert guest.do("reboot")["status"] == "succeeded"
    wait_until(lambda: guest_boot_id(guest) not in ("", third_boot), within=90)
    assert guest.record["status"] == "running"

    forced = guest.do("stop", {"force": True})
    assert forced["status"] == "succeeded" and "forced off" in forced["events"][-2]["message"]


def guest_boot_id(guest: Guest) -> str:
    try:
        return guest.ssh("cat /proc/sys/kernel/random/boot_id", timeout=10).strip()
    except Exception:
        return ""


def test_suspend_resume_and_who_may_resume(live_api: Api, tmp_path: Path) -> None:
    guest = order(live_api, tmp_path)
    assert guest.do("suspend")["status"] == "succeeded"
    record = guest.record
    assert record["status"] == "suspended" and record["suspend_reason"] == "customer"
    assert guest.domain().state()[0] == libvirt.VIR_DOMAIN_PAUSED
    with pytest.raises(Exception):  # noqa: B017  (a paused guest answers nothing)
        guest.ssh("true", timeout=5)
    assert guest.do("resume")["status"] == "succeeded"
    assert guest.ssh_eventually("echo back").strip() == "back"

    # staff suspend for billing: the customer may not resume, staff may
    assert guest.do("suspend", {"reason": "billing"}, token=live_api.support)["status"] == "succeeded"
    refused = live_api.call("POST", f"/v1/vps/{guest.id}/resume", live_api.alice)
    assert refused.status_code == 403 and "staff" in refused.json()["detail"]
    # a customer cannot claim a staff reason either
    assert guest.do("resume", token=live_api.support)["status"] == "succeeded"
    denied = live_api.call("POST", f"/v1/vps/{guest.id}/suspend", live_api.alice, json={"reason": "abuse"})
    assert denied.status_code == 403


def test_live_resize_seen_by_the_guest(live_api: Api, tmp_path: Path) -> None:
    guest = order(live_api, tmp_path, vcpus=1, memory_mib=256, disk_gib=2)
    before = mem_total_mib(guest)
    assert before <= 256
    # R5.1-change-order: staff resize under another rule, with its reason (tests/api/test_change_orders.py)
    response = live_api.call("POST", f"/v1/vps/{guest.id}/resize", live_api.support,
                             json={"vcpus": 2, "memory_mib": 448, "disk_gib": 3, "reason": "lifecycle test"})
    assert response.status_code == 202, response.text
    assert response.json()["plan"] == {"mode": "live", "reboot": False, "vcpus": 2, "memory_mib": 448,
                                       "disk_gib": 3}
    boot_id = guest.ssh("cat /proc/sys/kernel/random/boot_id")
    job = live_api.wait_job(response.json()["job"]["id"], live_api.alice)
    assert job["status"] == "succeeded", job
    assert guest.ssh("cat /proc/sys/kernel/random/boot_id") == boot_id  # no reboot
    wait_until(lambda: guest.ssh("grep -c ^processor /proc/cpuinfo").strip() == "2")
    # The job ended once the guest held the memory (its balloon settled): no waiting for it here.
    assert before + 150 < mem_total_mib(guest) <= 448
    log = live_api.call("GET", f"/v1/vps/{guest.id}/events?order=asc&limit=500", live_api.support).json()["items"]
    settled = [e for e in log
               if e["step"] == "memory_settled" and e["status"] == "done"]
    assert [e["message"] for e in settled] == ["the guest holds 448 MiB"]
    assert int(guest.ssh("cat /sys/block/vda/size")) * 512 == 3 << 30
    record = guest.record
    assert (record["vcpus"], record["memory_mib"], record["disk_gib"]) == (2, 448, 3)
    # the persistent definition follows, so the next cold start keeps the sizes
    inactive = ET.fromstring(guest.domain().XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    assert inactive.findtext("currentMemory") == str(448 * 1024)
    vcpu = inactive.find("vcpu")
    assert vcpu is not None and int(vcpu.get("current", vcpu.text or "0")) == 2


def test_cold_resize_and_refusals(live_api: Api, tmp_path: Path) -> None:
    guest = order(live_api, tmp_path, vcpus=1, memory_mib=256, disk_gib=2)
    staff, why = live_api.support, {"reason": "lifecycle test"}
    shrink = live_api.call("POST", f"/v1/vps/{guest.id}/resize", staff, json={"disk_gib": 1, **why})
    assert shrink.status_code == 422 and "never shrink" in shrink.json()["detail"]
    huge = live_api.call("POST", f"/v1/vps/{guest.id}/resize", staff, json={"memory_mib": 200_000, **why})
    assert huge.status_code == 422 and "cannot hold" in huge.json()["detail"]
    nothing = live_api.call("POST", f"/v1/vps/{guest.id}/resize", staff, json=why)
    assert nothing.status_code == 422

    response = live_api.call("POST", f"/v1/vps/{guest.id}/resize", staff, json={"memory_mib": 768, **why})
    assert response.status_code == 202 and response.json()["plan"]["reboot"] is True
    job = live_api.wait_job(response.json()["job"]["id"], staff)
    assert job["status"] == "succeeded", job
    assert guest.record["status"] == "running"
    wait_until(lambda: 600 < mem_total_mib_eventually(guest) <= 768, within=90)


def mem_total_mib_eventually(guest: Guest) -> int:
    guest.ssh_eventually("true")
    return mem_total_mib(guest)


def test_cutoff_survives_stop_start_reboot_until_reconnect(live_api: Api, tmp_path: Path) -> None:
    """R5.5-cutoff and R5.5-reconnect, seen from inside the guest (carrier) and from outside (SSH)."""
    guest = order(live_api, tmp_path)
    assert guest.ssh("cat /sys/class/net/eth0/carrier").strip() == "1"
    denied = live_api.call("POST", f"/v1/vps/{guest.id}/cutoff", live_api.alice, json={"reason": "hacked"})
    assert denied.status_code == 403
    assert guest.do("cutoff", {"reason": "hacked", "details": "phishing pages under /var/www"},
                    token=live_api.support)["status"] == "succeeded"
    record = guest.record
    assert record["status"] == "cut_off" and record["cut_off"] and record["cut_off_reason"] == "hacked"
    # R5.5-cutoff: without notice, but the client is told at once, with the reason.
    notice = live_api.wait_mail("Coupure de la connexion réseau").message.get_payload(decode=True).decode()
    assert "piraté" in notice and "phishing pages under /var/www" in notice
    wait_until(lambda: "tiny: carrier eth0=0" in guest.serial_log())
    with pytest.raises(Exception):  # noqa: B017
        guest.ssh("true", timeout=8)
    assert "<link state='down'/>" in guest.domain().XMLDesc(0)
    assert "<link state='down'/>" in guest.domain().XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)

    for operation, body in (("reboot", {"hard": True}), ("stop", {"force": True}), ("start", {})):
        marker = len(guest.serial_log())
        assert guest.do(operation, body, token=live_api.support)["status"] == "succeeded"
        if operation != "stop":
            wait_until(lambda m=marker: "tiny: carrier eth0=0" in guest.serial_log()[m:], within=90)
            assert "tiny: carrier eth0=1" not in guest.serial_log()[marker:]
            assert "<link state='down'/>" in guest.domain().XMLDesc(0)
    assert guest.record["status"] == "cut_off"

    # a reinstall keeps it cut off too (the new system boots with its link down)
    from tests.conftest import client_key

    new_key, new_public = client_key(tmp_path)
    marker = len(guest.serial_log())
    job = guest.do("reinstall", {"ssh_keys": [new_public], "confirm_data_loss": True}, token=live_api.support)
    assert job["status"] == "succeeded", job
    guest.key = new_key
    wait_until(lambda: "tiny: carrier eth0=0" in guest.serial_log()[marker:], within=90)
    assert "<link state='down'/>" in guest.domain().XMLDesc(0)
    assert guest.record["status"] == "cut_off"

    refused = live_api.call("POST", f"/v1/vps/{guest.id}/reconnect", live_api.support, json={})
    assert refused.status_code == 422
    job = guest.do("reconnect", {"corrective_measures": "CMS patched, passwords changed"}, token=live_api.support)
    assert job["status"] == "succeeded"
    assert guest.record["status"] == "running" and not guest.record["cut_off"]
    restored = live_api.wait_mail("Connexion réseau rétablie").message.get_payload(decode=True).decode()
    assert "CMS patched, passwords changed" in restored
    assert guest.ssh_eventually("cat /sys/class/net/eth0/carrier").strip() == "1"
    assert "carrier=0" in guest.ssh("cat /run/carrier.log")


def test_refused_from_wrong_status_changes_nothing(live_api: Api, tmp_path: Path) -> None:
    guest = order(live_api, tmp_path)
    cases = [("start", {}, "running"), ("resume", {}, "running")]
    for operation, body, status in cases:
        response = live_api.call("POST", f"/v1/vps/{guest.id}/{operation}", live_api.alice, json=body)
        assert response.status_code == 409, response.text
        assert response.json()["current_status"] == status and f"'{status}'" in response.json()["detail"]
    assert guest.do("stop", {"force": True})["status"] == "succeeded"
    for operation, body in (("stop", {}), ("reboot", {}), ("suspend", {}), ("resume", {})):
        response = live_api.call("POST", f"/v1/vps/{guest.id}/{operation}", live_api.alice, json=body)
        assert response.status_code == 409, (operation, response.text)
        assert response.json()["current_status"] == "stopped"
    events = live_api.call("GET", f"/v1/vps/{guest.id}/events?order=asc&limit=500", live_api.alice).json()["items"]
    assert [e["operation"] for e in events if e["step"] == "queued"] == ["create", "stop"]
    assert all(e["requested_by"] for e in events)
    assert guest.domain().state()[0] == libvirt.VIR_DOMAIN_SHUTOFF


def test_two_operations_at_once_run_one_after_the_other(live_api: Api, tmp_path: Path) -> None:
    guest = order(live_api, tmp_path)
    first = live_api.call("POST", f"/v1/vps/{guest.id}/stop", live_api.alice, json={"force": True}).json()["job"]
    second = live_api.call("POST", f"/v1/vps/{guest.id}/reboot", live_api.alice, json={}).json()["job"]
    first = live_api.wait_job(first["id"], live_api.alice)
    second = live_api.wait_job(second["id"], live_api.alice)
    assert first["status"] == "succeeded"
    # the reboot waited its turn, then found the VPS stopped and refused, changing nothing
    assert second["status"] == "failed" and "stopped" in second["error"]
    assert second["started_at"] >= first["finished_at"]
    assert guest.record["status"] == "stopped"


def test_reinstall_new_keys_old_key_refused(live_api: Api, tmp_path: Path) -> None:
    """R6.2-reinstall: new disk from the ordered OS, new host key, new root key; the old key is refused."""
    from tests.conftest import client_key

    guest = order(live_api, tmp_path)
    guest.ssh("echo precious > /data/file; sync")
    old_fingerprint = guest.record["ssh_host_keys"][0]["fingerprint"]
    new_key, new_public = client_key(tmp_path)
    unconfirmed = live_api.call("POST", f"/v1/vps/{guest.id}/reinstall", live_api.alice,
                                json={"ssh_keys": [new_public], "confirm_data_loss": False})
    assert unconfirmed.status_code == 422 and "confirm_data_loss" in unconfirmed.json()["detail"]

    job = guest.do("reinstall", {"ssh_keys": [new_public], "confirm_data_loss": True})
    assert job["status"] == "succeeded", job
    record = guest.record
    assert record["status"] == "running" and record["image"] == "tiny"
    assert record["ssh_host_keys"][0]["fingerprint"] != old_fingerprint
    old_key = guest.key
    guest.key = new_key
    assert guest.ssh("ls /data").split() == ["lost+found"]  # a fresh disk
    guest.key = old_key
    with pytest.raises(Exception):  # noqa: B017  (the old root key no longer opens the door)
        guest.ssh("true")
    # only the new generation's volumes remain
    conn = libvirt.open("qemu:///system")
    pool = conn.storagePoolLookupByName("vpsctl-test")
    refresh_pool(pool)
    volumes = sorted(v for v in pool.listVolumes() if guest.id in v)
    assert volumes == [f"vps-{guest.id}-root-1.qcow2", f"vps-{guest.id}-seed-1.iso"]


def test_backup_restore_export(live_api: Api, tmp_path: Path) -> None:
    """Backup of a running guest, files back after a restore, and a downloadable qcow2 export
    (R13-reversibility)."""
    import subprocess

    guest = order(live_api, tmp_path)
    guest.ssh("echo before-backup > /data/file; sync")
    job = guest.do("backup", {"note": "before the upgrade"})
    assert job["status"] == "succeeded", job
    assert "guest kept running" in " ".join(e["message"] for e in job["events"])
    # the tiny image has no guest agent (its channel is there, nothing answers on it): the backup
    # is crash-consistent, says so, and succeeds (the Debian image's is quiesced: test_debian.py)
    channels = ET.fromstring(guest.domain().XMLDesc(0)).findall("./devices/channel/target")
    assert [c.get("name") for c in channels] == ["org.qemu.guest_agent.0"]
    copied = next(e["message"] for e in job["events"] if e["step"] == "copy_root_disk" and e["status"] == "done")
    assert "crash-consistent: the guest agent did not freeze the filesystems" in copied, copied
    backups = live_api.call("GET", f"/v1/vps/{guest.id}/backups", live_api.alice).json()["items"]
    assert len(backups) == 1 and backups[0]["status"] == "available" and backups[0]["size_bytes"] > 0
    assert backups[0]["quiesced"] is False and backups[0]["consistency"] == "crash-consistent"
    assert backups[0]["created_at"] and backups[0]["note"] == "before the upgrade"

    guest.ssh("echo after-backup > /data/file; rm -f /data/other; sync")
    unconfirmed = live_api.call("POST", f"/v1/vps/{guest.id}/restore", live_api.alice,
                                json={"backup_id": backups[0]["id"], "confirm_data_loss": False})
    assert unconfirmed.status_code == 422
    foreign = live_api.call("POST", f"/v1/vps/{guest.id}/restore", live_api.bob,
                            json={"backup_id": backups[0]["id"], "confirm_data_loss": True})
    assert foreign.status_code == 404
    job = guest.do("restore", {"backup_id": backups[0]["id"], "confirm_data_loss": True})
    assert job["status"] == "succeeded", job
    assert guest.ssh_eventually("cat /data/file").strip() == "before-backup"

    job = guest.do("export")
    assert job["status"] == "succeeded", job
    export = next(b for b in live_api.call("GET", f"/v1/vps/{guest.id}/backups", live_api.alice).json()["items"]
              if b["kind"] == "export")
    assert export["download"]
    assert live_api.call("GET", export["download"], live_api.bob).status_code == 404
    response = live_api.call("GET", export["download"], live_api.alice)
    assert response.status_code == 200
    image = tmp_path / "export.qcow2"
    image.write_bytes(response.content)
    info = subprocess.run(["qemu-img", "info", "--output=json", str(image)], capture_output=True, text=True,
                          check=True).stdout
    assert '"format": "qcow2"' in info and "backing-filename" not in info  # standalone
    assert '"virtual-size": 2147483648' in info


def test_export_takes_every_disk(live_api: Api, tmp_path: Path) -> None:
    """R13-reversibility: the export of a VPS is its whole data: the root disk and each data disk,
    each a standalone qcow2 to download, with the bytes the guest wrote."""
    import subprocess

    guest = order(live_api, tmp_path)
    response = live_api.call("POST", f"/v1/vps/{guest.id}/disks", live_api.support,
                             json={"size_gib": 1, "reason": "test of the export"})
    assert live_api.wait_job(response.json()["job"]["id"], live_api.alice)["status"] == "succeeded"
    target = guest.record["data_disks"][0]["target"]
    wait_until(lambda: guest.ssh(f"cat /sys/block/{target}/size 2>/dev/null || echo 0").strip() != "0")
    marker = "reversibility-marker-7f3a"
    guest.ssh(f"printf {marker} | dd of=/dev/{target} bs=1M seek=5 conv=fsync 2>/dev/null; sync")

    job = guest.do("export")
    assert job["status"] == "succeeded", job
    exports = [b for b in live_api.call("GET", f"/v1/vps/{guest.id}/backups", live_api.alice).json()["items"]
               if b["kind"] == "export"]
    assert len(exports) == 2 and all(b["download"] and b["status"] == "available" for b in exports)
    data = next(b for b in exports if target in b["note"])
    image, raw = tmp_path / "data.qcow2", tmp_path / "data.raw"
    image.write_bytes(live_api.call("GET", data["download"], live_api.alice).content)
    info = subprocess.run(["qemu-img", "info", "--output=json", str(image)], capture_output=True, text=True,
                          check=True).stdout
    assert '"format": "qcow2"' in info and '"virtual-size": 1073741824' in info
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(image), str(raw)], check=True)
    with raw.open("rb") as handle:
        handle.seek(5 << 20)
        assert handle.read(len(marker)).decode() == marker


def test_mail_block_drops_smtp_but_not_the_rest(live_api: Api, tmp_path: Path) -> None:
    """R6.4-spam: outgoing 25/465/587 dropped by the nwfilter; SSH and other ports still flow."""
    import subprocess

    from tests.conftest import NETNS, TEST_GATEWAY, netns_exists

    if not netns_exists():
        message = f"needs the test network namespace {NETNS} (libvirtd inside it) to host the listeners"
        if os.environ.get("VPSCTL_TEST_REQUIRE_LIBVIRT") == "1":
            pytest.fail(f"{message}: scripts/test.sh starts libvirtd there (scripts/libvirt-host.sh start {NETNS})")
        pytest.skip(message)
    gateway = TEST_GATEWAY
    listeners = [subprocess.Popen(["ip", "netns", "exec", NETNS, "nc", "-lk", gateway, str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for port in (25, 587, 8025)]
    try:
        guest = order(live_api, tmp_path)
        probe = (f"for p in 25 587 8025; do if echo hi | nc -w 3 {gateway} $p >/dev/null 2>&1; then echo $p:open; "
                 "else echo $p:closed; fi; done")
        assert guest.ssh(probe).split() == ["25:open", "587:open", "8025:open"]
        denied = live_api.call("POST", f"/v1/vps/{guest.id}/mail-block", live_api.alice, json={})
        assert denied.status_code == 403
        job = guest.do("mail-block", {"complaint": "spamcop #123"}, token=live_api.support)
        assert job["status"] == "succeeded", job
        assert guest.record["mail_blocked"] is True
        assert guest.ssh(probe).split() == ["25:closed", "587:closed", "8025:open"]  # SSH works too
        # clean-traffic plus the mail rules, IPv4 and IPv6 (tests/integration/test_isolation.py)
        assert "vpsctl-clean-traffic-no-mail" in guest.domain().XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        assert guest.do("mail-unblock", token=live_api.support)["status"] == "succeeded"
        assert guest.ssh(probe).split() == ["25:open", "587:open", "8025:open"]
    finally:
        for listener in listeners:
            listener.terminate()
            listener.wait(timeout=10)


def test_console_websocket_for_owner_and_staff_only(live_api: Api, tmp_path: Path) -> None:
    """The serial console through a WebSocket: the login prompt comes back when we press Enter;
    another customer, or an automation token without ``vps:write``, cannot open it; opening it is
    recorded (R7-confidential)."""
    from sqlmodel import Session
    from starlette.websockets import WebSocketDisconnect

    from orchestrator.core.auth import create_token
    from orchestrator.core.models import Role

    with Session(live_api.engine) as session:
        reader = create_token(session, Role.automation, label="cmdb", scopes=["vps:read"])
    guest = order(live_api, tmp_path)
    path = f"/v1/vps/{guest.id}/console"
    for token in (None, live_api.bob, reader):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with pytest.raises(WebSocketDisconnect), live_api.client.websocket_connect(path, headers=headers) as ws:
            ws.receive_bytes()
    for token in (live_api.alice, live_api.support):
        with live_api.client.websocket_connect(path, headers={"Authorization": f"Bearer {token}"}) as ws:
            ws.send_text("\r")
            seen = b""
            deadline = time.monotonic() + 30
            while b"login:" not in seen and time.monotonic() < deadline:
                seen += ws.receive_bytes()
            assert b"login:" in seen, seen[-500:]
    events = live_api.call("GET", f"/v1/vps/{guest.id}/events?order=asc&limit=500", live_api.alice).json()["items"]
    opened = [e for e in events if e["operation"] == "console"]
    assert [e["requested_by"].split(":")[0] for e in opened] == ["customer", "staff"]  # alice's view


def test_attach_and_detach_a_data_disk(live_api: Api, tmp_path: Path) -> None:
    """R5.1-change-order: the client's extra disk comes through an accepted order form (asked
    directly, it is refused naming the rule); the guest sees it hot-plugged."""
    guest = order(live_api, tmp_path)
    direct = live_api.call("POST", f"/v1/vps/{guest.id}/disks", live_api.alice, json={"size_gib": 1})
    assert direct.status_code == 422 and direct.json()["rule"] == "R5.1-change-order"
    asked = live_api.call("POST", f"/v1/vps/{guest.id}/change-orders", live_api.alice, json={"add_disk_gib": 1})
    assert asked.status_code == 201, asked.text
    form = f"/v1/change-orders/{asked.json()['id']}"
    assert live_api.call("POST", f"{form}/approve", live_api.support, json={"rent_ht": "11.00"}).status_code == 200
    response = live_api.call("POST", f"{form}/accept", live_api.alice)
    assert response.status_code == 202, response.text
    assert live_api.wait_job(response.json()["job"]["id"], live_api.alice)["status"] == "succeeded"
    assert live_api.call("GET", form, live_api.alice).json()["status"] == "done"
    disk = guest.record["data_disks"][0]
    assert disk["target"] == "vdc" and disk["size_gib"] == 1
    wait_until(lambda: guest.ssh("cat /sys/block/vdc/size 2>/dev/null || echo 0").strip() == str((1 << 30) // 512))
    assert "vdc" in guest.domain().XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)

    path = f"/v1/vps/{guest.id}/disks/{disk['id']}"
    refused = live_api.call("DELETE", path, live_api.alice)
    assert refused.status_code == 422 and "confirm_data_loss" in refused.json()["detail"]
    assert live_api.call("DELETE", path + "?confirm_data_loss=true", live_api.bob).status_code == 404
    response = live_api.call("DELETE", path + "?confirm_data_loss=true", live_api.alice)
    assert live_api.wait_job(response.json()["job"]["id"], live_api.alice)["status"] == "succeeded"
    assert guest.record["data_disks"] == []
    assert guest.ssh("ls /sys/block").split().count("vdc") == 0
    assert "vdc" not in guest.domain().XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
