"""The vpsctl.cloud Ansible collection (playbooks/collections) driving the API, run by the real
ansible-playbook against the API served on loopback and real tiny guests on the real libvirtd:
the module orders from a plan staff published (R8.1-setup-fee), and deletes, a VPS idempotently
and in check mode changes nothing; the inventory plugin reaches the VPS with the SSH host keys the
API knows and strict host key checking (no trust on first use), and a guest presenting another
key than the API's is unreachable.

ansible-playbook runs in the test's own network namespace: it calls the API on 127.0.0.1 and
reaches the guests through the test namespace (an ssh ProxyCommand, as the tests' own ssh does).
The tiny image has busybox and dropbear but no Python: the in-guest tasks use ``raw``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
from sqlmodel import Session

from orchestrator.compute.keys import generate_host_key
from orchestrator.core.models import Vps
from tests.ansible_client import Ansible, require_ansible
from tests.conftest import Api, proxy_command, ssh_run
from tests.integration.lifecycle import order
from tests.served import serving

pytestmark = pytest.mark.libvirt



@pytest.fixture
def ansible(live_api: Api, tmp_path: Path) -> Iterator[Ansible]:
    require_ansible()
    assert proxy_command(), "the test network namespace is not there"
    with serving(live_api.client.app) as port:
        yield Ansible(port, live_api.alice, tmp_path, proxy=proxy_command())


def named(api: Api, name: str) -> list[dict[str, Any]]:
    return list(api.call("GET", f"/v1/vps?name={name}", api.alice).json()["items"])


def test_a_playbook_makes_a_vps_reaches_it_by_its_known_host_key_and_deletes_it(
    live_api: Api, ansible: Ansible
) -> None:
    plan = live_api.plan(1, 256, 2)  # published by staff
    done, recap = ansible.play("vps.yml", vps_name="from-ansible", plan=plan, ssh_public_key=ansible.public_key,
                               greeting="hello-from-ansible")
    assert done.returncode == 0, done.stdout[-3000:]
    assert recap["localhost"]["changed"] == 1 and recap["localhost"]["failed"] == 0, recap
    [order] = live_api.call("GET", "/v1/orders", live_api.alice).json()["items"]
    assert order["plan_code"] == plan and order["term_months"] == 1
    assert recap["from-ansible"] == {"ok": 3, "changed": 1, "unreachable": 0, "failed": 0}, recap
    [vps] = named(live_api, "from-ansible")
    assert vps["status"] == "running"
    # the known_hosts the inventory wrote: the API's public host key for the VPS's address, nothing else
    key = vps["ssh_host_keys"][0]
    assert ansible.known_hosts.read_text() == f"{vps['addresses'][0]} {' '.join(key['public_key'].split()[:2])}\n"
    host = ansible.host_vars("from-ansible")
    assert host["ansible_host"] == vps["addresses"][0] and host["ansible_user"] == "root"
    assert host["ansible_ssh_common_args"].split() == [
        "-o", f"UserKnownHostsFile={ansible.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes", "-o", "UpdateHostKeys=no", "-o", "CheckHostIP=no"]
    assert host["vpsctl_host_key_fingerprints"] == [key["fingerprint"]]
    # the file is in the guest: read over SSH by the test's own client, checking the same host key
    guest_key = paramiko.Ed25519Key.from_private_key_file(str(ansible.key))
    assert ssh_run(vps["addresses"][0], key["public_key"], guest_key, "cat /root/hello") == "hello-from-ansible\n"

    # again: nothing to do
    done, recap = ansible.play("vps.yml", vps_name="from-ansible", plan=plan, ssh_public_key=ansible.public_key,
                               greeting="hello-from-ansible")
    assert done.returncode == 0, done.stdout[-3000:]
    assert recap["localhost"]["changed"] == 0 and recap["from-ansible"]["changed"] == 0, recap
    assert [v["id"] for v in named(live_api, "from-ansible")] == [vps["id"]]
    assert len(live_api.call("GET", "/v1/orders", live_api.alice).json()["items"]) == 1  # ordered once

    # the whole playbook: nothing to make or write, the VPS deleted
    done, recap = ansible.play("vps.yml", vps_name="from-ansible", plan=plan, ssh_public_key=ansible.public_key,
                               greeting="hello-from-ansible", delete="true")
    assert done.returncode == 0, done.stdout[-3000:]
    assert recap["localhost"]["changed"] == 1 and recap["from-ansible"]["changed"] == 0, recap
    assert named(live_api, "from-ansible") == []
    assert live_api.call("GET", f"/v1/vps/{vps['id']}", live_api.alice).json()["status"] == "deleted"


def test_a_guest_presenting_another_host_key_than_the_apis_is_unreachable(live_api: Api, ansible: Ansible,
                                                                            tmp_path: Path) -> None:
    guest = order(live_api, tmp_path, name="pinned")
    # its own key in the guest, so that only the host key decides
    guest_ssh = guest.ssh(f"echo '{ansible.public_key}' >> /root/.ssh/authorized_keys && echo added")
    assert guest_ssh.strip() == "added"

    done, recap = ansible.play("reach.yml", greeting="first")
    assert done.returncode == 0, done.stdout[-3000:]
    assert recap["pinned"] == {"ok": 1, "changed": 1, "unreachable": 0, "failed": 0}, recap
    assert guest.ssh("cat /root/hello") == "first\n"

    # The API now vouches for another key than the one the guest presents (as if someone else
    # answered at its address): the inventory writes that key, and ssh refuses the guest.
    guest_address = guest.record["addresses"][0]
    other = generate_host_key()
    with Session(live_api.engine) as session:
        vps = session.get(Vps, guest.id)
        assert vps is not None
        real = vps.ssh_host_keys
        vps.ssh_host_keys = [{"type": other.key_type, "fingerprint": other.fingerprint,
                              "public_key": other.public_openssh}]
        session.add(vps)
        session.commit()
    done, recap = ansible.play("reach.yml", greeting="second")
    assert done.returncode != 0
    assert recap["pinned"]["unreachable"] == 1 and recap["pinned"]["ok"] == 0, recap
    assert "Host key verification failed" in done.stdout + done.stderr
    # and so it is when the controller's configuration turns host key checking off
    ansible.env["ANSIBLE_HOST_KEY_CHECKING"] = "False"
    done, recap = ansible.play("reach.yml", greeting="third")
    assert done.returncode != 0
    assert recap["pinned"]["unreachable"] == 1 and recap["pinned"]["ok"] == 0, recap
    assert "Host key verification failed" in done.stdout + done.stderr
    assert other.public_openssh.split()[1] in ansible.known_hosts.read_text()
    assert real[0]["public_key"].split()[1] not in ansible.known_hosts.read_text()
    # nothing was run in the guest (read with its real key)
    assert ssh_run(guest_address, real[0]["public_key"], guest.key,
                   "cat /root/hello") == "first\n"


def test_check_mode_reports_the_changes_and_makes_none(live_api: Api, ansible: Ansible, tmp_path: Path) -> None:
    guest = order(live_api, tmp_path, name="kept")
    jobs_before = live_api.call("GET", "/v1/jobs", live_api.alice).json()["items"]

    orders_before = live_api.call("GET", "/v1/orders", live_api.alice).json()["items"]
    done, recap = ansible.play("check_mode.yml", "--check", ghost="ghost", kept="kept", plan=live_api.plan(),
                               ssh_public_key=ansible.public_key)
    assert done.returncode == 0, done.stdout[-3000:]
    assert recap["localhost"]["changed"] == 3 and recap["localhost"]["failed"] == 0, recap
    assert named(live_api, "ghost") == []
    assert guest.record["status"] == "running"
    assert live_api.call("GET", "/v1/jobs", live_api.alice).json()["items"] == jobs_before
    assert live_api.call("GET", "/v1/orders", live_api.alice).json()["items"] == orders_before


def test_the_module_stops_starts_suspends_and_resumes_once_each(live_api: Api, ansible: Ansible,
                                                                 tmp_path: Path) -> None:
    guest = order(live_api, tmp_path, name="cycled")
    done, recap = ansible.play("states.yml", vps="cycled")
    assert done.returncode == 0, done.stdout[-3000:]
    assert recap["localhost"] == {"ok": 8, "changed": 4, "unreachable": 0, "failed": 0}, recap
    assert guest.record["status"] == "running"
    kinds = [j["kind"] for j in live_api.call("GET", "/v1/jobs", live_api.alice).json()["items"]]
    assert sorted(kinds) == ["create", "resume", "start", "stop", "suspend"], kinds
