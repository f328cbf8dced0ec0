"""Two real hypervisor hosts: the test's main libvirtd (qemu:///system, in its network namespace,
reached through its unix socket) and a second one started here with its own network and mount
namespaces (its own /etc/libvirt, /run/libvirt, /var/lib/libvirt: its own storage and guests),
reached over SSH (qemu+ssh://, an sshd inside its namespaces, its host key given when it is
registered and checked at every connection; scripts/extra-host.sh).  Each host's guests are
reached its own way: the main host's through its namespace, the second's by a jump through its
sshd (``ssh -W``) — the proxy command is the host's, given when it is registered over HTTP.

A VPS ordered in the second host's site lands there; a cold migration moves it to the main host
with its data (a file written on its disk before is read after, over SSH, the guest presenting the
same host key), and the second host then holds nothing of it.  A host whose SSH key changed is
refused; a failed host's VPS is rebuilt elsewhere from its backup and never runs twice when the
host comes back; a running VPS moves live between two hosts joined by a wire of their own; a
drain moves a VPS at its maintenance window; a host's capacity is read again."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import libvirt
import pytest
from sqlmodel import Session, select

from orchestrator.compute.hostaccess import HostKeyMismatch, SshFiles
from orchestrator.compute.hosts import Drivers, HostAt
from orchestrator.core.clock import utcnow
from orchestrator.core.models import Audit, Host, Outbox
from orchestrator.hypervisor.libvirt_driver import refresh_pool
from orchestrator.workflows.reconciler import HostRef, reconcile_host, refresh_capacity
from tests.conftest import URI, Api, client_key
from tests.integration.conftest import host_key, run_host
from tests.integration.lifecycle import Guest

pytestmark = pytest.mark.libvirt
def on(uri: str, vps_id: str) -> dict[str, Any]:
    """What a host holds of the VPS: its domain's state and its volumes."""
    conn = libvirt.open(uri)
    try:
        try:
            dom = conn.lookupByUUIDString(vps_id)
            state = "running" if dom.isActive() else "defined"
        except libvirt.libvirtError:
            state = None
        volumes = []
        for pool in conn.listAllStoragePools(0):
            refresh_pool(pool)
            volumes += [v.name() for v in pool.listAllVolumes(0) if vps_id in v.name()]
        return {"domain": state, "volumes": sorted(v.rsplit("-", 1)[-1] for v in volumes)}
    finally:
        conn.close()


def order(api: Api, tmp_path: Path, name: str, site: str) -> Guest:
    key, public = client_key(tmp_path)
    ordered = api.order(api.alice, json={
        "name": name, "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "site": site,
        "ssh_keys": [public]})
    assert ordered.status_code == 202, ordered.text
    created = api.wait_job(ordered.json()["job"]["id"], api.support)
    assert created["status"] == "succeeded", (created["error"], created["events"][-4:])
    return Guest(api, api.alice, ordered.json()["vps"], key)


def keygen_fingerprint(public_key_file: str) -> str:
    """The fingerprint as OpenSSH's ssh-keygen prints it ("256 SHA256:... comment (ED25519)")."""
    return subprocess.run(["ssh-keygen", "-lf", public_key_file], capture_output=True, text=True,
                          check=True).stdout.split()[1]


def register_over_ssh(api: Api, second_host: dict[str, str]) -> dict[str, Any]:
    """h2 registered over SSH: refused without its host key (the answer shows the fingerprint it
    presents, nothing recorded), refused with another key, registered with its fingerprint."""
    fingerprint = keygen_fingerprint(f"{second_host['dir']}/ssh_host_ed25519_key.pub")
    body = {"name": "h2", "uri": second_host["ssh_uri"], "site": "Paris", "guest_proxy_command": second_host["jump"]}
    unconfirmed = api.call("POST", "/v1/hosts", api.support, json=body)
    assert unconfirmed.status_code == 422, unconfirmed.text
    assert fingerprint in unconfirmed.json()["detail"] and "ssh_host_key" in unconfirmed.json()["detail"]
    other = keygen_fingerprint(f"{second_host['dir']}/client_key.pub")  # a real key, not the host's
    wrong = api.call("POST", "/v1/hosts", api.support, json={**body, "ssh_host_key": other})
    assert wrong.status_code == 422 and other in wrong.json()["detail"], wrong.text
    assert [h["name"] for h in api.call("GET", "/v1/hosts", api.support).json()["items"]] == ["local"]
    added = api.call("POST", "/v1/hosts", api.support, json={**body, "ssh_host_key": fingerprint})
    assert added.status_code == 201, added.text
    assert added.json()["ssh_host_key_fingerprint"] == fingerprint
    return dict(added.json())


def test_vps_land_in_their_site_and_move_cold_between_hosts_with_their_data(
        live_api: Api, second_host: dict[str, str], tmp_path: Path) -> None:
    api = live_api
    added = register_over_ssh(api, second_host)
    assert added["state"] == "enabled" and added["capacity"]["vcpus"] >= 1
    listed = {h["name"]: h["site"] for h in api.call("GET", "/v1/hosts", api.support).json()["items"]}
    assert listed == {"local": "Marseille", "h2": "Paris"}
    assert api.call("GET", "/v1/hosts", api.alice).status_code == 403  # a customer sees sites, not hosts

    # Ordered in Marseille: on the main host.  Data on its disk, then moved to h2 by staff.
    guest = order(api, tmp_path, "mover", "Marseille")
    assert on(URI, guest.id) == {"domain": "running", "volumes": ["root.qcow2", "seed.iso"]}
    assert on(second_host["uri"], guest.id)["domain"] is None
    guest.ssh("echo written-before-the-move > /data/proof && sync")
    address = guest.record["addresses"][0]

    moved = api.call("POST", f"/v1/vps/{guest.id}/migrate", api.support, json={"to_host": "h2"})
    assert moved.status_code == 202, moved.text
    assert moved.json()["plan"] == {"mode": "cold", "to_host": "h2"}
    job = api.wait_job(moved.json()["job"]["id"], api.support)
    assert job["status"] == "succeeded", (job["error"], job["events"][-5:])
    steps = {e["step"]: e["message"] for e in job["events"] if e["status"] == "done"}
    assert "root.qcow2" in steps["copy_volumes"] and "Marseille -> Paris" in steps["switch_host"]

    assert on(second_host["uri"], guest.id) == {"domain": "running", "volumes": ["root.qcow2", "seed.iso"]}
    assert on(URI, guest.id) == {"domain": None, "volumes": []}
    assert guest.record["addresses"] == [address] and guest.record["status"] == "running"
    guest.proxy = second_host["jump"]  # now a guest of h2, reached by a jump through h2's sshd
    # The same guest (ssh_run checks the host key recorded at its creation), with its data.
    assert guest.ssh("cat /data/proof").strip() == "written-before-the-move"

    # Ordered in Paris: on h2, the only host there.
    parisian = order(api, tmp_path, "parisian", "Paris")
    parisian.proxy = second_host["jump"]
    assert on(second_host["uri"], parisian.id)["domain"] == "running"
    assert parisian.ssh("hostname").strip() == "parisian"


def test_a_host_whose_ssh_key_changed_is_refused_before_anything_is_sent(
        live_api: Api, second_host: dict[str, str]) -> None:
    api = live_api
    added = register_over_ssh(api, second_host)
    recorded = host_key(second_host)
    run_host("rekey", second_host)
    try:
        new = keygen_fingerprint(f"{second_host['dir']}/ssh_host_ed25519_key.pub")
        # Registered again (a refresh): the host must present the key recorded.
        again = api.call("POST", "/v1/hosts", api.support, json={
            "name": "h2", "uri": second_host["ssh_uri"], "site": "Paris"})
        assert again.status_code == 409, again.text
        assert new in again.json()["detail"] and added["ssh_host_key_fingerprint"] in again.json()["detail"]
        assert api.call("GET", "/v1/hosts/h2", api.support).json()["ssh_host_key_fingerprint"] == \
            added["ssh_host_key_fingerprint"]
        # A worker's connection: paramiko refuses before libvirt is asked to connect ...
        drivers = Drivers()
        try:
            with pytest.raises(HostKeyMismatch, match="changed"):
                drivers.for_host(HostAt(second_host["ssh_uri"], recorded))
        finally:
            drivers.close()
        # ... and libvirt's own ssh, run with the recorded key only, refuses as well.
        files = SshFiles()
        try:
            with pytest.raises(libvirt.libvirtError, match="Host key verification failed"):
                libvirt.open(files.connection_uri(second_host["ssh_uri"], recorded))
        finally:
            files.close()
    finally:
        # The jump to h2's guests, for the tests after this one, knows the new key.
        known_hosts = Path(second_host["known_hosts"])
        known_hosts.write_text(known_hosts.read_text().split()[0] + f" {host_key(second_host)}\n")


def test_bad_hosts_and_moves_are_refused_with_nothing_changed(live_api: Api, tmp_path: Path) -> None:
    api = live_api
    for body, field in (({"name": "x", "uri": "http://example.test/", "site": "Paris"}, "uri"),
                        ({"name": "Bad Name", "uri": "qemu:///system", "site": "Paris"}, "name")):
        refused = api.call("POST", "/v1/hosts", api.support, json=body)
        assert refused.status_code == 422 and field in refused.text, refused.text
    unknown_site = api.call("POST", "/v1/hosts", api.support, json={"name": "h3", "uri": URI, "site": "Atlantis"})
    assert unknown_site.status_code == 422 and unknown_site.json()["rule"] == "R2-locations"
    silent = api.call("POST", "/v1/hosts", api.support, json={
        "name": "h3", "uri": "qemu+unix:///system?socket=/nonexistent/sock", "site": "Paris"})
    assert silent.status_code == 422 and "does not answer" in silent.json()["detail"]
    assert [h["name"] for h in api.call("GET", "/v1/hosts", api.support).json()["items"]] == ["local"]


def test_a_failed_host_has_its_vps_rebuilt_elsewhere_from_backup_and_never_run_twice(
        live_api: Api, second_host: dict[str, str], third_host: dict[str, str], tmp_path: Path) -> None:
    """R5.2-keep-running.  A VPS on h2 (over SSH), backed up: the backup is copied to another host.
    h2 fails (every process of it killed); evacuating it rebuilds the VPS on h3 from that copy: the
    data of the backup is there, what was written after is not, the customer is told.  h2 comes
    back: it is disabled, its copy of the VPS stays off, and a copy started there by hand is
    powered off by the reconciler."""
    api = live_api
    register_over_ssh(api, second_host)
    added = api.call("POST", "/v1/hosts", api.support, json={
        "name": "h3", "uri": third_host["uri"], "site": "Paris", "guest_proxy_command": third_host["proxy"]})
    assert added.status_code == 201, added.text
    assert api.call("POST", "/v1/hosts/h3/disable", api.support).json()["state"] == "disabled"
    guest = order(api, tmp_path, "phoenix", "Paris")  # h3 is disabled: on h2
    guest.proxy = second_host["jump"]
    assert on(second_host["uri"], guest.id)["domain"] == "running"
    guest.ssh("echo in-the-backup > /data/proof && sync")
    backup = guest.do("backup", {"note": "nightly"})
    assert backup["status"] == "succeeded", (backup["error"], backup["events"][-3:])
    replicated = next(e["message"] for e in api.call("GET", f"/v1/jobs/{backup['id']}", api.support).json()["events"]
                      if e["step"] == "replicate" and e["status"] == "done")
    assert "copied to another host in Marseille" in replicated, replicated  # h3 is disabled: local takes it
    replica = f"vps-{guest.id}-backup-{backup['id']}.replica.qcow2"
    conn = libvirt.open(URI)
    try:
        pool = conn.storagePoolLookupByName(api.settings.hosts.backup_pool)
        refresh_pool(pool)
        assert replica in [v.name() for v in pool.listAllVolumes(0)]
    finally:
        conn.close()
    guest.ssh("echo after-the-backup > /data/late && sync")

    answering = api.call("POST", "/v1/hosts/h2/evacuate", api.support, json={})
    assert answering.status_code == 409 and "answers" in answering.json()["detail"], answering.text
    assert api.call("POST", "/v1/hosts/h3/enable", api.support).json()["state"] == "enabled"

    run_host("down", second_host)
    try:
        with Session(api.engine) as session:
            h2 = session.exec(select(Host).where(Host.name == "h2")).one()
            ref = HostRef(h2.id or 0, h2.name, h2.uri, h2.ssh_host_key)
        drivers = Drivers()
        try:
            reconcile_host(api.engine, api.settings, drivers, ref)  # the reconciler finds h2 down
        finally:
            drivers.close()
        seen = api.call("GET", f"/v1/vps/{guest.id}", api.alice).json()
        assert (seen["status"], seen["last_known_status"]) == ("unknown", "running")
        assert api.call("POST", f"/v1/vps/{guest.id}/reboot", api.alice, json={}).status_code == 409
        evacuated = api.call("POST", "/v1/hosts/h2/evacuate", api.support, json={"reason": "power supply failed"})
        assert evacuated.status_code == 202, evacuated.text
        assert evacuated.json()["state"] == "unreachable" and evacuated.json()["left"] == []
        [job_id] = evacuated.json()["jobs"]
        job = api.wait_job(job_id, api.support)
        assert job["status"] == "succeeded", (job["error"], job["events"][-5:])
        steps = {e["step"]: e["message"] for e in job["events"] if e["status"] == "done"}
        assert "does not answer" in steps["check_source_down"]
        assert f"from backup {backup['id']}" in steps["restore_root"] and "streamed" in steps["restore_root"]
        assert on(third_host["uri"], guest.id)["domain"] == "running"
        assert guest.record["status"] == "running"
        guest.proxy = third_host["proxy"]
        assert guest.ssh("cat /data/proof").strip() == "in-the-backup"
        assert guest.ssh("cat /data/late 2>/dev/null || echo not-there").strip() == "not-there"
        told = [r.message for r in api.smtp.collector.received if "phoenix" in str(r.message["Subject"])
                and ("rétabli" in str(r.message["Subject"]) or "restored" in str(r.message["Subject"]))]
        assert told, [str(r.message["Subject"]) for r in api.smtp.collector.received]
    finally:
        run_host("up", second_host)

    # h2 is back: one pass of the reconciler over it.
    drivers = Drivers()
    try:
        reconcile_host(api.engine, api.settings, drivers, ref)
        assert api.call("GET", "/v1/hosts/h2", api.support).json()["state"] == "disabled"
        assert on(second_host["uri"], guest.id)["domain"] == "defined"  # its old copy, off, disks kept
        # Started there by hand: the next pass powers it off, the VPS runs on h3 only.
        conn = libvirt.open(second_host["uri"])
        try:
            conn.lookupByUUIDString(guest.id).create()
        finally:
            conn.close()
        assert on(second_host["uri"], guest.id)["domain"] == "running"
        reconcile_host(api.engine, api.settings, drivers, ref)
    finally:
        drivers.close()
    assert on(second_host["uri"], guest.id)["domain"] == "defined"
    assert on(third_host["uri"], guest.id)["domain"] == "running"
    with Session(api.engine) as session:
        fenced = session.exec(select(Audit).where(Audit.vps_id == guest.id, Audit.action == "fenced")).all()
    assert len(fenced) == 1 and "h2" in fenced[0].detail


def test_a_running_vps_moves_live_between_two_hosts_that_reach_each_other(
        live_api: Api, second_host: dict[str, str], third_host: dict[str, str], linked_hosts: dict[str, str],
        tmp_path: Path) -> None:
    """Live: the guest is never stopped (the same boot, a process started before still running
    after) and comes up on the other host with its data; the source keeps nothing."""
    api = live_api
    for name, host in (("h2", second_host), ("h3", third_host)):
        added = api.call("POST", "/v1/hosts", api.support, json={
            "name": name, "uri": host["uri"], "site": "Paris", "guest_proxy_command": host["proxy"],
            "migration_address": linked_hosts[name]})
        assert added.status_code == 201, added.text
    api.call("POST", "/v1/hosts/h3/disable", api.support)
    guest = order(api, tmp_path, "runner", "Paris")  # on h2, h3 being disabled
    api.call("POST", "/v1/hosts/h3/enable", api.support)
    guest.proxy = second_host["proxy"]
    assert on(second_host["uri"], guest.id)["domain"] == "running"
    boot = guest.ssh("cat /proc/sys/kernel/random/boot_id").strip()
    guest.ssh("echo written-before > /data/proof && sync")
    guest.ssh("setsid sh -c 'echo $$ > /data/ticker.pid; while true; do date +%s >> /data/ticks; sleep 1; done' "
              "</dev/null >/dev/null 2>&1 &")
    pid = guest.ssh_eventually("cat /data/ticker.pid").strip()
    assert pid.isdigit()

    moved = api.call("POST", f"/v1/vps/{guest.id}/migrate", api.support, json={"to_host": "h3", "live": True})
    assert moved.status_code == 202, moved.text
    assert moved.json()["plan"] == {"mode": "live", "to_host": "h3"}
    job = api.wait_job(moved.json()["job"]["id"], api.support)
    assert job["status"] == "succeeded", (job["error"], job["events"][-5:])
    done = {e["step"]: e["message"] for e in job["events"] if e["status"] == "done"}
    assert "keeps running" in done["stop_source"] and "made for the mirror" in done["copy_volumes"]

    assert on(third_host["uri"], guest.id)["domain"] == "running"
    assert on(second_host["uri"], guest.id) == {"domain": None, "volumes": []}
    guest.proxy = third_host["proxy"]
    assert guest.ssh("cat /proc/sys/kernel/random/boot_id").strip() == boot  # never rebooted
    assert guest.ssh("cat /data/proof").strip() == "written-before"
    assert guest.ssh(f"kill -0 {pid} && echo alive").strip() == "alive"  # the process started before runs on
    ticks = int(guest.ssh("wc -l < /data/ticks").strip())
    assert int(guest.ssh_eventually("sleep 3; wc -l < /data/ticks").strip()) > ticks  # and still writes


def test_a_hosts_capacity_is_read_again(live_api: Api) -> None:
    """Memory added to a host (its record says less than it has) is seen by the next read."""
    api = live_api
    conn = libvirt.open(URI)
    try:
        _model, memory_mib, cpus, *_ = conn.getInfo()
    finally:
        conn.close()
    with Session(api.engine) as session:
        local = session.exec(select(Host).where(Host.name == "local")).one()
        local.memory_mib, local.vcpus = 1024, 1
        session.add(local)
        session.commit()
    drivers = Drivers()
    try:
        refresh_capacity(api.engine, api.settings, drivers)
    finally:
        drivers.close()
    capacity = api.call("GET", "/v1/hosts/local", api.support).json()["capacity"]
    assert (capacity["memory_mib"], capacity["vcpus"]) == (memory_mib, cpus)
    with Session(api.engine) as session:
        [audit] = session.exec(select(Audit).where(Audit.action == "host.capacity")).all()
    assert audit.detail.startswith("local: 1 CPU 1024 MiB")


def test_a_drain_moves_a_running_vps_to_the_other_host_at_its_window_with_its_data(
        live_api: Api, second_host: dict[str, str], tmp_path: Path, clock: Any) -> None:
    """R5.4: the drain of the main host is a maintenance of its VPS (notice queued at once); at the
    window's start the VPS moves to h2 and comes back there with its data."""
    api = live_api
    added = api.call("POST", "/v1/hosts", api.support, json={
        "name": "h2", "uri": second_host["uri"], "site": "Marseille", "guest_proxy_command": second_host["proxy"]})
    assert added.status_code == 201, added.text
    api.call("POST", "/v1/hosts/h2/disable", api.support)
    guest = order(api, tmp_path, "drained", "Marseille")  # on the main host, h2 being disabled
    api.call("POST", "/v1/hosts/h2/enable", api.support)
    assert on(URI, guest.id)["domain"] == "running"
    guest.ssh("echo written-before-the-drain > /data/proof && sync")

    starts = utcnow() + timedelta(days=2)
    drained = api.call("POST", "/v1/hosts/local/drain", api.support, json={"starts_at": starts.isoformat()})
    assert drained.status_code == 202, drained.text
    assert drained.json()["state"] == "draining"
    [job_id] = drained.json()["jobs"]
    with Session(api.engine) as session:
        assert session.exec(select(Outbox).where(Outbox.vps_id == guest.id,
                                                 Outbox.template == "maintenance_notice")).first() is not None
    assert api.call("GET", f"/v1/jobs/{job_id}", api.support).json()["status"] == "queued"  # not before its window

    clock.travel_to(starts + timedelta(seconds=1))
    job = api.wait_job(job_id, api.support)
    assert job["status"] == "succeeded", (job["error"], job["events"][-5:])
    assert on(second_host["uri"], guest.id)["domain"] == "running"
    assert on(URI, guest.id) == {"domain": None, "volumes": []}
    guest.proxy = second_host["proxy"]
    assert guest.ssh("cat /data/proof").strip() == "written-before-the-drain"
