"""``vpsctl host prepare``: make a machine a hypervisor host and register it.

``playbooks/hypervisor.yml`` runs through ansible-runner against the target (``local``: this
machine, ``ansible_connection=local``; or ``[USER@]ADDRESS[:PORT]`` over SSH, logging in with
``keyfile``), then the host is registered (compute/hosts.register_host) as soon as its libvirtd
answers.  Over SSH the target's host key is checked before the playbook runs, with the same rule
as a qemu+ssh:// host (compute/hostaccess.py): the key or fingerprint staff give must be the one
the host presents, and Ansible's ssh runs with a known_hosts file holding only that key and
``StrictHostKeyChecking=yes``.  The playbook is idempotent: a second run reports ``changed=0``.
"""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session

from orchestrator.adapters.ansible import PlaybookResult, run_playbook
from orchestrator.compute import hostaccess
from orchestrator.compute.hostaccess import HostKeyMismatch
from orchestrator.compute.hosts import Drivers, register_host
from orchestrator.contract.sites import check_site
from orchestrator.core.errors import HypervisorError, InvalidRequest, OperationFailed
from orchestrator.core.files import open_private, private_dir
from orchestrator.core.models import Host
from orchestrator.core.settings import Settings

PLAYBOOK = Path(__file__).resolve().parents[2] / "playbooks" / "hypervisor.yml"
_TARGET = re.compile(r"^(?:(?P<user>[a-z_][a-z0-9_-]*)@)?(?P<address>[A-Za-z0-9.:-]+?)(?::(?P<port>\d{1,5}))?$")


@dataclass(frozen=True)
class Target:
    address: str  # "local": this machine
    user: str = "root"
    port: int = 22

    @property
    def local(self) -> bool:
        return self.address == "local"


def parse_target(text: str) -> Target:
    if text == "local":
        return Target("local")
    match = _TARGET.match(text)
    if match is None or not 0 < int(match["port"] or 22) < 65536:
        raise InvalidRequest(f"target: 'local' or [USER@]ADDRESS[:PORT], not {text!r}")
    return Target(match["address"], match["user"] or "root", int(match["port"] or 22))


@dataclass(frozen=True)
class Prepared:
    result: PlaybookResult
    host: Host


def prepare_host(session: Session, settings: Settings, drivers: Drivers, name: str, target_text: str, site: str, *,
                 uri: str | None = None, keyfile: str | None = None, ssh_host_key: str | None = None,
                 guest_proxy_command: str | None = None, extravars: dict[str, Any] | None = None,
                 timeout: float = 1800.0, answer_within: float = 60.0) -> Prepared:
    """Run the playbook against the target, then register the host (see the module)."""
    site = check_site(site)  # R2-locations, before anything runs
    target = parse_target(target_text)
    work = settings.state_dir / "prepare"
    private_dir(work)
    if target.local:
        inventory = f"{name} ansible_connection=local"
        uri = uri or "qemu:///system"
        key = None
    else:
        query = f"?keyfile={keyfile}" if keyfile else ""
        uri = uri or f"qemu+ssh://{target.user}@{target.address}:{target.port}/system{query}"
        endpoint = hostaccess.ssh_endpoint(f"qemu+ssh://{target.user}@{target.address}:{target.port}/system")
        assert endpoint is not None
        key = hostaccess.accept_host_key(f"qemu+ssh://{target.address}:{target.port}/system", ssh_host_key, None)
        assert key is not None
        known_hosts = work / f"known_hosts-{name}"
        with open_private(known_hosts) as handle:
            handle.write(f"{endpoint.known_hosts_name} {key}\n".encode())
        options = f"-o UserKnownHostsFile={known_hosts} -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes"
        inventory = (f"{name} ansible_host={target.address} ansible_port={target.port} ansible_user={target.user} "
                     f"ansible_ssh_common_args={shlex.quote(options)}"
                     + (f" ansible_ssh_private_key_file={shlex.quote(keyfile)}" if keyfile else ""))
    result = run_playbook(PLAYBOOK, inventory + "\n", extravars or {}, work_dir=work, timeout=timeout)
    if not result.ok:
        raise OperationFailed(f"{PLAYBOOK.name} failed on {target_text} ({result.status}, rc {result.rc}):\n"
                              f"{result.output_tail}")
    deadline = time.monotonic() + answer_within
    while True:
        try:
            host = register_host(session, settings, drivers, name, uri, site, guest_proxy_command,
                                 ssh_host_key=key)
            return Prepared(result, host)
        except HostKeyMismatch:
            raise
        except HypervisorError:
            session.rollback()
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)
