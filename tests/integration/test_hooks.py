"""Ansible hooks at lifecycle events on the real libvirtd, with the real ansible-runner and the
hooks shipped in playbooks/hooks/: the company's inventory follows a VPS through create,
reinstall and delete, and the audit log records its cut-off and reconnection; a failing hook
leaves its operation succeeded and shows its output in the VPS's events.
R2-no-guest-management: the playbooks run on the control plane (connection local)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters import ansible
from orchestrator.compute.keys import fingerprint
from orchestrator.core.settings import REPO_ROOT
from tests.conftest import Api, client_key
from tests.integration.lifecycle import Guest, eventually, order

pytestmark = pytest.mark.libvirt


@pytest.fixture(autouse=True)
def requires_ansible() -> None:
    if not ansible.ansible_available():
        pytest.fail("ansible-playbook is not installed (scripts/install.sh installs ansible-core)")


def hook_job(api: Api, guest: Guest, nth: int) -> dict[str, Any]:
    """The VPS's ``nth`` hook job (1 = the first queued), once finished."""
    def listed() -> list[str]:
        events = api.call("GET", f"/v1/vps/{guest.id}/events?order=asc&limit=500", guest.token).json()["items"]
        return list(dict.fromkeys(e["job_id"] for e in events if e["operation"] == "hook"))

    ids = eventually(lambda: (found := listed()) and len(found) >= nth and found, within=60,
                     what=f"hook job #{nth}")
    return api.wait_job(ids[nth - 1], guest.token, timeout=240)


def inventory_line(inventory: Path, guest: Guest) -> str | None:
    lines = [x for x in inventory.read_text().splitlines() if x.startswith(f"vps-{guest.id} ")]
    assert len(lines) <= 1, lines
    return lines[0] if lines else None


def ansible_host(inventory: Path, guest: Guest) -> str:
    """The address Ansible itself reads for the VPS from the inventory."""
    out = subprocess.run(["ansible-inventory", "-i", str(inventory), "--host", f"vps-{guest.id}"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return str(json.loads(out)["ansible_host"])


def test_inventory_and_audit_follow_create_cutoff_reinstall_and_delete(live_api: Api, tmp_path: Path) -> None:
    live_api.settings.hooks.directory = str(REPO_ROOT / "playbooks" / "hooks")
    live_api.settings.hooks.data_dir = tmp_path / "hooks-data"
    inventory = tmp_path / "hooks-data" / "inventory.ini"

    guest = order(live_api, tmp_path, name="hooked")
    created = hook_job(live_api, guest, 1)
    assert created["status"] == "succeeded", created
    record = guest.record
    first_fp = fingerprint(record["ssh_host_keys"][0]["public_key"])
    line = inventory_line(inventory, guest)
    assert line is not None and line.endswith(f"# {first_fp}"), line
    assert ansible_host(inventory, guest) == record["addresses"][0]
    # the host key the inventory names is the one the guest presents (ssh verifies it, no TOFU)
    assert guest.ssh("echo ok").strip() == "ok"

    # R5.5-cutoff: the cut-off and the reconnection leave one audit line each
    assert guest.do("cutoff", {"reason": "abuse"}, token=live_api.support)["status"] == "succeeded"
    assert hook_job(live_api, guest, 2)["status"] == "succeeded"
    assert guest.do("reconnect", {"corrective_measures": "relay closed"}, token=live_api.support)["status"] \
        == "succeeded"
    assert hook_job(live_api, guest, 3)["status"] == "succeeded"
    audit = (tmp_path / "hooks-data" / "audit.log").read_text().splitlines()
    assert [line.split()[1:3] for line in audit] == [["cut_off", f"vps-{guest.id}"],
                                                     ["reconnected", f"vps-{guest.id}"]], audit
    assert "reason=abuse" in audit[0] and 'customer="alice"' in audit[0]

    key, public = client_key(tmp_path)
    job = guest.do("reinstall", {"ssh_keys": [public], "confirm_data_loss": True})
    assert job["status"] == "succeeded", job
    guest.key = key
    assert hook_job(live_api, guest, 4)["status"] == "succeeded"
    new_fp = fingerprint(guest.record["ssh_host_keys"][0]["public_key"])
    assert new_fp != first_fp
    line = inventory_line(inventory, guest)
    assert line is not None and line.endswith(f"# {new_fp}") and first_fp not in inventory.read_text(), line
    assert guest.ssh_eventually("echo ok").strip() == "ok"

    response = live_api.call("DELETE", f"/v1/vps/{guest.id}?confirm_data_loss=true", guest.token)
    assert response.status_code == 202, response.text
    assert live_api.wait_job(response.json()["job"]["id"], guest.token)["status"] == "succeeded"
    assert hook_job(live_api, guest, 5)["status"] == "succeeded"
    assert inventory_line(inventory, guest) is None
    assert inventory.read_text().splitlines() == ["[vps]"]


def test_a_failing_hook_leaves_the_operation_succeeded_and_its_output_in_the_events(
    live_api: Api, tmp_path: Path
) -> None:
    failing = tmp_path / "failing-hooks"
    failing.mkdir()
    (failing / "vps_created.yml").write_text("""\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Tell the CMDB
      ansible.builtin.fail:
        msg: "CMDB refused {{ vps.inventory_name }}"
""")
    live_api.settings.hooks.directory = str(failing)
    live_api.settings.hooks.max_attempts = 2

    guest = order(live_api, tmp_path, name="hook-fails")  # asserts the create job succeeded
    hook = hook_job(live_api, guest, 1)
    assert hook["status"] == "failed", hook
    assert guest.record["status"] == "running"
    events = live_api.call("GET", f"/v1/vps/{guest.id}/events?order=asc&limit=500", live_api.support).json()["items"]
    hook_events = [e for e in events if e["job_id"] == hook["id"]]
    failures = [e for e in hook_events if e["status"] in ("retry", "failed") and e["step"] == "run_playbook"]
    assert [e["status"] for e in failures] == ["retry", "failed"], hook_events
    assert all(f"CMDB refused vps-{guest.id}" in e["message"] for e in failures), failures
    assert "vps_created.yml failed" in failures[-1]["message"]
    # the client sees that the hook ran and failed, not what the playbook printed
    seen = live_api.call("GET", f"/v1/vps/{guest.id}/events?order=asc&limit=500", guest.token).json()["items"]
    assert [e["status"] for e in seen if e["job_id"] == hook["id"] and e["step"] == "run_playbook"
            and e["status"] in ("retry", "failed")] == ["retry", "failed"]
    assert "CMDB" not in str([e for e in seen if e["job_id"] == hook["id"]])
    # the VPS still takes operations: the failed hook holds nothing up
    assert guest.do("stop")["status"] == "succeeded"
