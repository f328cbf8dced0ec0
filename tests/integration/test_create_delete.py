"""A tiny VPS, ordered through the API, built on the real libvirtd, logged into over SSH with
the customer's key while verifying the host key the orchestrator generated, its address pinned in
the network's DHCP server, then deleted with nothing of it left on the host: no domain, no disk,
no backup, no export, no pinned address, but the one backup the client named to keep, until they
discard it."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import libvirt
import paramiko
import pytest

from orchestrator.hypervisor.libvirt_driver import LibvirtDriver, refresh_pool
from tests.conftest import TEST_POOL, URI, Api, client_key, ssh_run

pytestmark = pytest.mark.libvirt


def pinned(mac: str) -> list[str]:
    """The addresses the test network's DHCP server keeps for that MAC (its DHCP host entries)."""
    conn = libvirt.open(URI)
    try:
        network = ET.fromstring(conn.networkLookupByName("vpsctl-test").XMLDesc(0))
    finally:
        conn.close()
    return [h.get("ip", "") for h in network.iterfind("ip/dhcp/host") if h.get("mac", "").lower() == mac.lower()]


def host_holds(vps_id: str, mac: str) -> list[str]:
    """Everything of this VPS the host still has: domain, volumes and files in the disk pool and in
    the backup pool, a pinned address."""
    found = [f"address {ip}" for ip in pinned(mac)]
    conn = libvirt.open(URI)
    try:
        try:
            conn.lookupByUUIDString(vps_id)
            found.append("domain")
        except libvirt.libvirtError:
            pass
        for name in (TEST_POOL, TEST_POOL + "-backup"):
            pool = conn.storagePoolLookupByName(name)
            refresh_pool(pool)
            found += [v for v in pool.listVolumes() if vps_id in v]
            pool_dir = Path(pool.XMLDesc(0).split("<path>")[1].split("</path>")[0])
            found += [p.name for p in pool_dir.glob(f"*{vps_id}*") if p.name not in found]
    finally:
        conn.close()
    return found


def test_create_login_delete(live_api: Api, tmp_path: Path) -> None:
    """R6.1-root (root login with the customer's key only), R9-delivery (host key fingerprint known
    before the first login), R10-after (volumes discarded, recorded, nothing left)."""
    key, public = client_key(tmp_path)
    started = time.monotonic()
    response = live_api.order(live_api.alice, json={
        "name": "web1", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [public]})
    assert response.status_code == 202, response.text
    vps_id, job_id = response.json()["vps"]["id"], response.json()["job"]["id"]

    job = live_api.wait_job(job_id, live_api.alice)
    assert job["status"] == "succeeded", job
    assert job["progress"]["done"] == job["progress"]["total"] == 8
    steps = [e["step"] for e in job["events"] if e["status"] == "done"]
    assert steps == ["upload_image", "create_root_disk", "create_seed", "define_domain", "start_domain",
                     "wait_for_address", "filter_address", "verify_ssh"]
    assert all(e["at"] for e in job["events"])
    print(f"create job took {time.monotonic() - started:.1f} s")

    vps = live_api.call("GET", f"/v1/vps/{vps_id}", live_api.alice).json()
    assert vps["status"] == "running" and vps["task"] is None
    assert vps["addresses"] and vps["addresses"][0].startswith("192.168.151.")
    host_key = vps["ssh_host_keys"][0]
    assert host_key["type"] == "ssh-ed25519" and host_key["fingerprint"].startswith("SHA256:")

    # libvirt agrees: the domain's UUID is the VPS id, it runs, its disk is the ordered size
    conn = libvirt.open(URI)
    try:
        dom = conn.lookupByUUIDString(vps_id)
        assert dom.isActive() and dom.name() == f"vps-{vps_id}"
        assert dom.blockInfo("vda")[0] == 2 << 30
        mac = ET.fromstring(dom.XMLDesc(0)).find("devices/interface/mac").get("address", "")  # type: ignore[union-attr]
    finally:
        conn.close()
    # the DHCP server keeps the address for this VPS: its interface's filter allows no other
    assert pinned(mac) == [vps["addresses"][0]]
    # and leases it to this MAC, as the driver reads it (what a move to another host checks there)
    driver = LibvirtDriver(URI)
    try:
        lease = driver.lease_of("vpsctl-test", vps["addresses"][0])
        assert lease is not None and lease.mac == mac.lower() and lease.address == vps["addresses"][0]
        assert timedelta(minutes=1) < lease.expires_at - datetime.now(UTC) < timedelta(days=1), lease
        assert driver.lease_of("vpsctl-test", "192.168.151.1") is None  # the gateway leases nothing
    finally:
        driver.close()

    # log in with the customer's key, the host key checked against what the API reported
    out = ssh_run(vps["addresses"][0], host_key["public_key"], key,
                  "hostname; cat /sys/block/vda/size; grep -c ^processor /proc/cpuinfo")
    hostname, sectors, cpus = out.split()
    assert hostname == "web1" and int(sectors) * 512 == 2 << 30 and cpus == "1"

    # R9-delivery: the procès-verbal reached alice's mailbox through the SMTP server, in French,
    # with the address and the fingerprint to check on first login
    mail = live_api.wait_mail("web1")
    body = mail.message.get_content()
    assert mail.rcpt_tos == ["alice@example.test"]
    assert "mise à disposition" in str(mail.message["Subject"]).lower() + body.lower()
    assert host_key["fingerprint"] in body and vps["addresses"][0] in body

    # a host key other than the generated one is refused before any login
    wrong = paramiko.Ed25519Key.generate() if hasattr(paramiko.Ed25519Key, "generate") else None
    if wrong is None:
        other, _ = client_key(tmp_path)
        wrong_public = f"{other.get_name()} {other.get_base64()}"
    else:
        wrong_public = f"{wrong.get_name()} {wrong.get_base64()}"
    with pytest.raises(paramiko.SSHException):
        ssh_run(vps["addresses"][0], wrong_public, key, "true")

    # a backup and an export of the running guest, in the backup pool and the exports directory
    kept = live_api.call("POST", f"/v1/vps/{vps_id}/backup", live_api.alice, json={}).json()["job"]["id"]
    export = live_api.call("POST", f"/v1/vps/{vps_id}/export", live_api.alice).json()["job"]["id"]
    for backup_job in (kept, export):
        assert live_api.wait_job(backup_job, live_api.alice)["status"] == "succeeded"
    exports = live_api.settings.state_dir / "exports"
    assert {p.name for p in exports.iterdir()} == {f"{export}.qcow2"}
    in_backup_pool = {f"vps-{vps_id}-backup-{kept}.qcow2", f"vps-{vps_id}-backup-{export}.qcow2"}
    assert in_backup_pool <= set(host_holds(vps_id, mac))

    # delete: explicit confirmation; nothing left on the host but the backup the client kept
    deleted = live_api.call("DELETE", f"/v1/vps/{vps_id}?confirm_data_loss=true&keep_backups={kept}",
                            live_api.alice)
    assert deleted.status_code == 202
    job = live_api.wait_job(deleted.json()["job"]["id"], live_api.alice)
    assert job["status"] == "succeeded", job
    assert any("discarded" in e["message"] for e in job["events"])
    assert live_api.call("GET", f"/v1/vps/{vps_id}", live_api.alice).json()["status"] == "deleted"
    assert host_holds(vps_id, mac) == [f"vps-{vps_id}-backup-{kept}.qcow2"]
    assert list(exports.iterdir()) == []
    assert [b["id"] for b in live_api.call("GET", "/v1/backups", live_api.alice).json()["items"]] == [kept]

    # the client discards it: nothing at all is left
    discarded = live_api.call("DELETE", f"/v1/vps/{vps_id}/backups/{kept}?confirm_data_loss=true", live_api.alice)
    assert discarded.status_code == 202, discarded.text
    assert live_api.wait_job(discarded.json()["job"]["id"], live_api.alice)["status"] == "succeeded"
    assert host_holds(vps_id, mac) == []
