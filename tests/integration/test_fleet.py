"""Two real hypervisor hosts: the test's main libvirtd (qemu:///system, in its network namespace)
and a second one started here with its own network and mount namespaces (its own /etc/libvirt,
/run/libvirt, /var/lib/libvirt: its own storage and guests), reached through its unix socket
(scripts/extra-host.sh).  Each host's guests are reached through that host's namespace: the
proxy command is the host's, given when it is registered over HTTP.

A VPS ordered in the second host's site lands there; a cold migration moves it to the main host
with its data (a file written on its disk before is read after, over SSH, the guest presenting the same host
key), and the second host then holds nothing of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import libvirt
import pytest

from tests.conftest import URI, Api, client_key
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
            pool.refresh(0)
            volumes += [v.name() for v in pool.listAllVolumes(0) if vps_id in v.name()]
        return {"domain": state, "volumes": sorted(v.rsplit("-", 1)[-1] for v in volumes)}
    finally:
        conn.close()


def order(api: Api, tmp_path: Path, name: str, site: str) -> Guest:
    key, public = client_key(tmp_path)
    ordered = api.call("POST", "/v1/vps", api.alice, json={
        "name": name, "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "site": site,
        "ssh_keys": [public]})
    assert ordered.status_code == 202, ordered.text
    created = api.wait_job(ordered.json()["job"]["id"], api.support)
    assert created["status"] == "succeeded", (created["error"], created["events"][-4:])
    return Guest(api, api.alice, ordered.json()["vps"], key)


def test_vps_land_in_their_site_and_move_cold_between_hosts_with_their_data(
        live_api: Api, second_host: dict[str, str], tmp_path: Path) -> None:
    api = live_api
    added = api.call("POST", "/v1/hosts", api.support, json={
        "name": "h2", "uri": second_host["uri"], "site": "Paris", "guest_proxy_command": second_host["proxy"]})
    assert added.status_code == 201, added.text
    assert added.json()["state"] == "enabled" and added.json()["capacity"]["vcpus"] >= 1
    listed = {h["name"]: h["site"] for h in api.call("GET", "/v1/hosts", api.support).json()}
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
    guest.proxy = second_host["proxy"]  # now a guest of h2, reached through its namespace
    # The same guest (ssh_run checks the host key recorded at its creation), with its data.
    assert guest.ssh("cat /data/proof").strip() == "written-before-the-move"

    # Ordered in Paris: on h2, the only host there.
    parisian = order(api, tmp_path, "parisian", "Paris")
    parisian.proxy = second_host["proxy"]
    assert on(second_host["uri"], parisian.id)["domain"] == "running"
    assert parisian.ssh("hostname").strip() == "parisian"


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
    assert [h["name"] for h in api.call("GET", "/v1/hosts", api.support).json()] == ["local"]
