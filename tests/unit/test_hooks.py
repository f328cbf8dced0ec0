"""The Ansible hook adapter (orchestrator/adapters/ansible.py) with the real ansible-runner and
ansible-playbook, and the example hooks shipped in playbooks/hooks/.

R2-no-guest-management: every run is against ``localhost ansible_connection=local``."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters import ansible
from orchestrator.core.settings import REPO_ROOT, Settings

SHIPPED = REPO_ROOT / "playbooks" / "hooks"


@pytest.fixture(autouse=True)
def requires_ansible() -> None:
    if not ansible.ansible_available():
        if os.environ.get("VPSCTL_TEST_REQUIRE_ANSIBLE") == "1":
            pytest.fail("ansible-playbook is not installed (scripts/install.sh installs ansible-core)")
        pytest.skip("ansible-playbook is not installed (scripts/install.sh installs ansible-core)")


def facts(vps_id: str = "0b6c1f5e-1111-4222-8333-944445555666", **vps: Any) -> dict[str, Any]:
    record = {"id": vps_id, "name": "web 1", "inventory_name": f"vps-{vps_id}", "status": "running",
              "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "addresses": ["192.168.151.23"],
              "ssh_host_key_fingerprints": ["SHA256:AAAAfirstkey"], "cut_off": False, "cut_off_reason": None,
              "suspend_reason": None}
    record.update(vps)
    return {"event": "vps_created", "occurred_at": "2026-05-13T08:00:00+00:00", "vps": record,
            "customer_name": "alice", "hypervisor": {"name": "local", "site": "Marseille"}}


def settings_for(tmp_path: Path, hooks_dir: Path = SHIPPED, **values: Any) -> Settings:
    return Settings(state_dir=tmp_path / "state", hooks_dir=str(hooks_dir), **values)


def playbook(directory: Path, name: str, tasks: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yml"
    path.write_text(f"- hosts: localhost\n  gather_facts: false\n  tasks:\n{tasks}")
    return path


def test_a_playbook_runs_and_gets_the_extravars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VPSCTL_SMTP_PASSWORD", "hunter2-s3cret")
    out = tmp_path / "seen.json"
    path = playbook(tmp_path / "hooks", "vps_created", f"""\
    - ansible.builtin.copy:
        dest: {out}
        content: "{{{{ {{'event': event, 'vps': vps, 'customer_name': customer_name, 'hypervisor': hypervisor,
                      'inventory_path': inventory_path, 'occurred_at': occurred_at,
                      'smtp_password': lookup('env', 'VPSCTL_SMTP_PASSWORD'),
                      'connection': ansible_connection | default('')}} | to_json }}}}"
""")
    settings = settings_for(tmp_path, tmp_path / "hooks")
    assert ansible.playbook_for(settings, "vps_created") == path

    result = ansible.run_hook(settings, path, facts())

    assert (result.status, result.rc, result.ok) == ("successful", 0, True)
    seen = json.loads(out.read_text())
    assert seen["event"] == "vps_created"
    assert seen["vps"]["addresses"] == ["192.168.151.23"]
    assert seen["vps"]["ssh_host_key_fingerprints"] == ["SHA256:AAAAfirstkey"]
    assert seen["customer_name"] == "alice" and seen["hypervisor"] == {"name": "local", "site": "Marseille"}
    assert seen["inventory_path"] == str(tmp_path / "state" / "hooks" / "inventory.ini")
    assert seen["occurred_at"] == "2026-05-13T08:00:00+00:00"
    assert seen["connection"] == "local"  # R2-no-guest-management: the control plane, never a guest
    assert seen["smtp_password"] == ""  # the orchestrator's environment does not reach playbooks
    # the private data directory (extravars file, artifacts) is removed after the run
    assert list((tmp_path / "state" / "hook-runs").iterdir()) == []


def test_a_failing_playbook_reports_failed_with_its_output_tail(tmp_path: Path) -> None:
    path = playbook(tmp_path / "hooks", "vps_deleted", """\
    - ansible.builtin.fail:
        msg: "CMDB answered 503 for {{ vps.id }}"
""")
    result = ansible.run_hook(settings_for(tmp_path, tmp_path / "hooks"), path, facts("f00d"))
    assert result.status == "failed" and result.rc != 0 and not result.ok
    assert "CMDB answered 503 for f00d" in result.output_tail
    assert len(result.output_tail) <= ansible.OUTPUT_TAIL_CHARS + 3


def test_a_playbook_past_its_timeout_is_stopped(tmp_path: Path) -> None:
    path = playbook(tmp_path / "hooks", "vps_resized", """\
    - ansible.builtin.command: sleep 120
""")
    started = time.monotonic()
    result = ansible.run_hook(settings_for(tmp_path, tmp_path / "hooks", hook_timeout_seconds=3), path, facts())
    assert result.status == "timeout" and not result.ok
    assert time.monotonic() - started < 60


def test_no_playbook_no_hook(tmp_path: Path) -> None:
    assert ansible.playbook_for(settings_for(tmp_path, tmp_path / "empty"), "vps_created") is None
    assert ansible.playbook_for(Settings(state_dir=tmp_path, hooks_dir=""), "vps_created") is None
    assert ansible.playbook_for(settings_for(tmp_path), "vps_created") == SHIPPED / "vps_created.yml"
    assert Settings(state_dir=tmp_path).hooks.directory == str(SHIPPED)  # shipped hooks are on by default


def inventory_host(inventory: Path, name: str) -> dict[str, Any]:
    """What Ansible itself reads from the inventory file for that host."""
    out = subprocess.run(["ansible-inventory", "-i", str(inventory), "--list"], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    listed = json.loads(out)
    assert name in listed.get("vps", {}).get("hosts", []), listed
    return dict(listed["_meta"]["hostvars"][name])


def test_shipped_inventory_hooks_add_update_and_remove_a_vps(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    inventory = settings.hooks_data / "inventory.ini"
    first = facts()
    name = first["vps"]["inventory_name"]

    assert ansible.run_hook(settings, SHIPPED / "vps_created.yml", first).ok
    line = next(x for x in inventory.read_text().splitlines() if x.startswith(name))
    assert "ansible_host=192.168.151.23" in line and line.endswith("# SHA256:AAAAfirstkey")
    assert inventory_host(inventory, name)["ansible_host"] == "192.168.151.23"

    reinstalled = facts(ssh_host_key_fingerprints=["SHA256:BBBBnewkey"])
    assert ansible.run_hook(settings, SHIPPED / "vps_reinstalled.yml", {**reinstalled, "event": "vps_reinstalled"}).ok
    lines = [x for x in inventory.read_text().splitlines() if x.startswith(name)]
    assert len(lines) == 1 and lines[0].endswith("# SHA256:BBBBnewkey")

    assert ansible.run_hook(settings, SHIPPED / "vps_deleted.yml", {**reinstalled, "event": "vps_deleted"}).ok
    assert name not in inventory.read_text()
    assert inventory.read_text().splitlines() == ["[vps]"]


def test_shipped_inventory_hooks_lose_no_line_when_run_together(tmp_path: Path) -> None:
    """Hooks of different VPS run at once in several workers: the lock keeps every line."""
    settings = settings_for(tmp_path)
    ids = [f"0b6c1f5e-1111-4222-8333-94444555566{n}" for n in range(4)]
    results: list[ansible.HookResult] = []

    def run(vps_id: str) -> None:
        results.append(ansible.run_hook(settings, SHIPPED / "vps_created.yml", facts(vps_id)))

    threads = [threading.Thread(target=run, args=(vps_id,)) for vps_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert [r.status for r in results] == ["successful"] * 4
    text = (settings.hooks_data / "inventory.ini").read_text()
    assert all(f"vps-{vps_id} " in text for vps_id in ids), text
    assert not (settings.hooks_data / "inventory.ini.lock").exists()


def eventually_retrying(settings: Settings, task: str, count: int, running: threading.Thread,
                        within: float = 60) -> list[str]:
    """The ``FAILED - RETRYING`` lines of ``task`` in the output of the hook ``running`` runs
    (ansible-runner's artifacts under ``<state_dir>/hook-runs``), once there are ``count``."""
    deadline = time.monotonic() + within
    while True:
        assert running.is_alive(), "the hook ended instead of waiting"
        lines = [line for path in (settings.state_dir / "hook-runs").glob("run-*/artifacts/*/stdout")
                 for line in path.read_text(errors="replace").splitlines()
                 if "FAILED - RETRYING" in line and task in line]
        if len(lines) >= count:
            return lines
        assert time.monotonic() < deadline, f"no {count} retries of {task!r} within {within} s: {lines}"
        time.sleep(0.1)


def test_shipped_inventory_hooks_wait_for_the_lock_and_break_a_stale_one(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    lock = settings.hooks_data / "inventory.ini.lock"
    lock.mkdir(parents=True)  # another worker's hook is editing the inventory
    results: list[ansible.HookResult] = []
    thread = threading.Thread(target=lambda: results.append(
        ansible.run_hook(settings, SHIPPED / "vps_created.yml", facts())))
    thread.start()
    # It waits for the lock: the run's own output (written as it goes) shows it tried to take it,
    # found it taken and will try again, twice.
    retries = eventually_retrying(settings, "Take the lock of", 2, thread)
    assert all("retries left" in line for line in retries), retries
    inventory = settings.hooks_data / "inventory.ini"
    assert thread.is_alive() and not inventory.exists()
    lock.rmdir()
    thread.join(timeout=120)
    assert [r.status for r in results] == ["successful"]
    assert "vps-0b6c1f5e" in inventory.read_text() and not lock.exists()

    lock.mkdir()  # left by a run killed at its timeout, five minutes ago
    os.utime(lock, (time.time() - 300, time.time() - 300))
    started = time.monotonic()
    assert ansible.run_hook(settings, SHIPPED / "vps_deleted.yml", facts()).ok
    assert time.monotonic() - started < 60 and not lock.exists()
    assert "vps-0b6c1f5e" not in inventory.read_text()


def test_shipped_cut_off_hook_writes_one_audit_line_per_event(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    event = {**facts(cut_off=True, cut_off_reason="hacked", status="cut_off"), "event": "vps_cut_off"}
    for _ in range(2):  # a hook run again for the same event adds nothing
        assert ansible.run_hook(settings, SHIPPED / "vps_cut_off.yml", event).ok
    lines = (settings.hooks_data / "audit.log").read_text().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("2026-05-13T08:00:00+00:00 cut_off vps-0b6c1f5e")
    assert "reason=hacked" in lines[0] and 'customer="alice"' in lines[0]
