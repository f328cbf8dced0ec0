"""The vpsctl.cloud inventory plugin, run by the real ansible-inventory against the API served on
loopback (no hypervisor: the VPS are recorded directly): it lists the caller's VPS only, a page at
a time, groups them by status and site, and writes their public host keys to its known_hosts file
(mode 0600) with the ssh options that make ssh use that file alone and strictly."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from orchestrator.compute.keys import generate_host_key
from orchestrator.core.models import Customer, Host, Vps, VpsStatus
from tests.ansible_client import Ansible, require_ansible
from tests.conftest import Api
from tests.served import serving


def record(api: Api, customer: str, name: str, status: VpsStatus = VpsStatus.running,
           addresses: tuple[str, ...] = ("192.0.2.10",)) -> Vps:
    key = generate_host_key()
    with Session(api.engine, expire_on_commit=False) as session:
        owner = session.exec(select(Customer).where(Customer.name == customer)).one()
        host = session.exec(select(Host)).first()
        assert owner.id is not None and host is not None
        vps = Vps(name=name, customer_id=owner.id, host_id=host.id, image="tiny", vcpus=1, memory_mib=256,
                  disk_gib=2, status=status, addresses=list(addresses),
                  ssh_host_keys=[{"type": key.key_type, "fingerprint": key.fingerprint,
                                  "public_key": key.public_openssh}])
        session.add(vps)
        session.commit()
        return vps


@pytest.fixture
def served(offline_api: Api, tmp_path: Path) -> Iterator[tuple[Api, int]]:
    require_ansible()
    with serving(offline_api.client.app) as port:
        yield offline_api, port


def listed(ansible: Ansible) -> dict[str, Any]:
    done = ansible.inventory_list()
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_the_inventory_lists_the_callers_vps_page_by_page_with_their_host_keys(
    served: tuple[Api, int], tmp_path: Path
) -> None:
    api, port = served
    mine = [record(api, "alice", f"web{i}", addresses=(f"192.0.2.{10 + i}",)) for i in range(5)]
    stopped = record(api, "alice", "cold", VpsStatus.stopped, ("192.0.2.30",))
    record(api, "alice", "leaving", VpsStatus.deleting, ("192.0.2.31",))
    record(api, "alice", "unborn", VpsStatus.building, ())
    record(api, "bob", "bobs", addresses=("192.0.2.40",))
    ansible = Ansible(port, api.alice, tmp_path, inventory="page_size: 2\n")

    inventory = listed(ansible)
    hostvars = inventory["_meta"]["hostvars"]
    assert sorted(hostvars) == ["cold", "web0", "web1", "web2", "web3", "web4"]  # not bob's, not the others
    assert sorted(inventory["vpsctl_status_running"]["hosts"]) == [v.name for v in mine]
    assert inventory["vpsctl_status_stopped"]["hosts"] == ["cold"]
    assert sorted(inventory["vpsctl_site_marseille"]["hosts"]) == sorted(hostvars)
    web0 = hostvars["web0"]
    assert web0["ansible_host"] == "192.0.2.10" and web0["ansible_user"] == "root"
    assert web0["vpsctl_id"] == mine[0].id and web0["vpsctl_customer"] == "alice"
    assert web0["vpsctl_host_key_fingerprints"] == [mine[0].ssh_host_keys[0]["fingerprint"]]
    assert web0["ansible_host_key_checking"] is True and web0["ansible_ssh_host_key_checking"] is True
    assert web0["ansible_ssh_common_args"] == (
        f"-o UserKnownHostsFile={ansible.known_hosts} -o GlobalKnownHostsFile=/dev/null "
        "-o StrictHostKeyChecking=yes -o UpdateHostKeys=no -o CheckHostIP=no")

    lines = ansible.known_hosts.read_text().splitlines()
    assert sorted(lines) == sorted(f"{v.addresses[0]} {v.ssh_host_keys[0]['public_key']}" for v in [*mine, stopped])
    assert stat.S_IMODE(ansible.known_hosts.stat().st_mode) == 0o600

    # a VPS gone from the list goes from the known_hosts file too
    with Session(api.engine) as session:
        gone = session.get(Vps, mine[0].id)
        assert gone is not None
        gone.status = VpsStatus.deleted
        session.add(gone)
        session.commit()
    assert "web0" not in listed(ansible)["_meta"]["hostvars"]
    assert mine[0].addresses[0] not in ansible.known_hosts.read_text()


def test_two_vps_of_one_name_are_two_hosts_and_status_filters(served: tuple[Api, int], tmp_path: Path) -> None:
    api, port = served
    first, second = record(api, "alice", "twin"), record(api, "alice", "twin", VpsStatus.stopped, ("192.0.2.50",))
    ansible = Ansible(port, api.alice, tmp_path, inventory="status: [running]\n")
    assert sorted(listed(ansible)["_meta"]["hostvars"]) == ["twin"]
    (tmp_path / "fleet.vpsctl.yml").write_text(f"plugin: vpsctl.cloud.vps\nknown_hosts_file: {ansible.known_hosts}\n")
    assert sorted(listed(ansible)["_meta"]["hostvars"]) == sorted([f"twin_{first.id}", f"twin_{second.id}"])


def test_a_refused_token_fails_the_inventory_without_showing_the_token(served: tuple[Api, int],
                                                                        tmp_path: Path) -> None:
    _api, port = served
    ansible = Ansible(port, "vpsctl_not-a-real-token", tmp_path)
    done = ansible.inventory_list()
    assert done.returncode != 0
    assert "GET /v1/vps: 401 invalid token" in " ".join(done.stderr.split()), done.stderr
    assert "not-a-real-token" not in done.stdout + done.stderr
    assert not ansible.known_hosts.exists()
