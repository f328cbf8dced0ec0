"""ansible-playbook and ansible-inventory with the vpsctl.cloud collection (playbooks/collections),
against the API served on loopback, as one customer (their token): for the tests of the collection
(tests/api/test_ansible_inventory.py, tests/integration/test_ansible_client.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters import ansible
from orchestrator.core.settings import REPO_ROOT

PLAYBOOKS = Path(__file__).parent / "integration" / "ansible_client"
COLLECTIONS = REPO_ROOT / "playbooks" / "collections"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


def require_ansible() -> None:
    if not ansible.ansible_available():
        if os.environ.get("VPSCTL_TEST_REQUIRE_ANSIBLE") == "1":
            pytest.fail("ansible-playbook is not installed (scripts/install.sh installs ansible-core)")
        pytest.skip("ansible-playbook is not installed (scripts/install.sh installs ansible-core)")


class Ansible:
    """ansible-playbook against the API served on loopback, as a customer (its token)."""

    def __init__(self, port: int, token: str, tmp_path: Path, proxy: str = "", inventory: str = "") -> None:
        self.tmp = tmp_path
        self.key = tmp_path / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ansible@client", "-f", str(self.key)],
                       check=True)
        self.public_key = self.key.with_suffix(".pub").read_text().strip()
        self.known_hosts = tmp_path / "known_hosts"
        self.inventory = tmp_path / "fleet.vpsctl.yml"
        self.inventory.write_text(f"plugin: vpsctl.cloud.vps\nknown_hosts_file: {self.known_hosts}\n{inventory}")
        (tmp_path / "ansible-home").mkdir()
        self.env = {
            "PATH": os.environ.get("PATH", "") + ":/usr/bin:/bin",
            "HOME": str(tmp_path / "ansible-home"),
            "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-home" / "tmp"),
            "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
            "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_PRIVATE_KEY_FILE": str(self.key),
            # no ssh master left running after the play; the guests are in the test namespace
            "ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o ConnectTimeout=20",
            "ANSIBLE_TIMEOUT": "30",
            "VPSCTL_API_URL": f"http://127.0.0.1:{port}",
            "VPSCTL_TOKEN": token,
        }
        if proxy:  # how ssh reaches the guests (through the test network namespace)
            self.env["ANSIBLE_SSH_EXTRA_ARGS"] = f"-o 'ProxyCommand={proxy}'"

    def play(self, playbook: str, *args: str, **extra_vars: Any) -> tuple[subprocess.CompletedProcess[str],
                                                                             dict[str, dict[str, int]]]:
        """Run a playbook of tests/integration/ansible_client; its output and its PLAY RECAP by host."""
        command = ["ansible-playbook", "-i", str(self.inventory), str(PLAYBOOKS / playbook), *args]
        for name, value in extra_vars.items():
            command += ["-e", f"{name}={value}" if name != "ssh_public_key" else f"ssh_public_key='{value}'"]
        done = subprocess.run(command, capture_output=True, text=True, env=self.env, timeout=900, cwd=self.tmp)
        recap = {m[0]: {"ok": int(m[1]), "changed": int(m[2]), "unreachable": int(m[3]), "failed": int(m[4])}
                 for m in RECAP.findall(done.stdout)}
        print(f"$ {' '.join(command)}\n{done.stdout}{done.stderr}")  # shown when the test fails
        return done, recap

    def host_vars(self, host: str) -> dict[str, Any]:
        """The variables the inventory gives ``host`` (ansible-inventory --host)."""
        done = subprocess.run(["ansible-inventory", "-i", str(self.inventory), "--host", host], capture_output=True,
                              text=True, env=self.env, timeout=120, cwd=self.tmp)
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    def inventory_list(self) -> subprocess.CompletedProcess[str]:
        """ansible-inventory --list: its output (JSON on stdout when it succeeded)."""
        return subprocess.run(["ansible-inventory", "-i", str(self.inventory), "--list"], capture_output=True,
                              text=True, env=self.env, timeout=120, cwd=self.tmp)


