"""``vpsctl host prepare`` for real: playbooks/hypervisor.yml through ansible-runner over SSH
against a bare machine (its own network and mount namespaces, an sshd, no libvirtd yet:
scripts/extra-host.sh bare), which is then registered as a qemu+ssh:// host.  Refused with
nothing run while the target's host key is not confirmed; run again, the playbook changes
nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from sqlmodel import Session, create_engine, select

from orchestrator.core.models import Host
from tests.integration.conftest import FLEET, REPO, WORKER, WORKER_INDEX

pytestmark = pytest.mark.libvirt


@pytest.fixture
def bare_machine() -> Iterator[dict[str, str]]:
    netns = "vpsctl-h4" + (f"-{WORKER_INDEX}" if WORKER else "")
    directory, port = FLEET / netns, 2350 + WORKER_INDEX
    directory.mkdir(parents=True, exist_ok=True)
    FLEET.chmod(0o755)
    directory.chmod(0o755)
    script = str(REPO / "scripts/extra-host.sh")
    started = subprocess.run([script, "bare", netns, str(directory), str(port)], capture_output=True, text=True,
                             timeout=120)
    if started.returncode != 0:
        pytest.fail(f"the bare machine did not start: {started.stderr[-2000:]}")
    try:
        yield {"dir": str(directory), "target": f"root@10.251.{port % 250 + 1}.2:{port}",
               "socket_uri": f"qemu+unix:///system?socket={directory}/run/libvirt-sock"}
    finally:
        subprocess.run([script, "stop", netns, str(directory)], capture_output=True, timeout=180)


def vpsctl(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VPSCTL_")}, "VPSCTL_STATE_DIR": str(state_dir)}
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], capture_output=True, text=True,
                          env=env, timeout=900, cwd=REPO)


def answers(uri: str) -> bool:
    try:
        libvirt.open(uri).close()
        return True
    except libvirt.libvirtError:
        return False


def test_host_prepare_runs_the_playbook_over_ssh_registers_the_host_and_changes_nothing_the_second_time(
        bare_machine: dict[str, str], tmp_path: Path) -> None:
    directory = bare_machine["dir"]
    fingerprint = subprocess.run(["ssh-keygen", "-lf", f"{directory}/ssh_host_ed25519_key.pub"], capture_output=True,
                                 text=True, check=True).stdout.split()[1]
    command = ["host", "prepare", "h4", bare_machine["target"], "--site", "Paris", "--key", f"{directory}/client_key"]
    assert not answers(bare_machine["socket_uri"])  # bare: no libvirtd

    unconfirmed = vpsctl(tmp_path, *command)
    assert unconfirmed.returncode != 0
    assert fingerprint in re.sub(r"\s+", "", unconfirmed.stderr), unconfirmed.stderr  # (lines folded)
    assert not answers(bare_machine["socket_uri"])  # nothing ran

    first = vpsctl(tmp_path, *command, "--ssh-host-key", fingerprint)
    assert first.returncode == 0, first.stderr[-3000:]
    changed = int(re.search(r"changed=(\d+)", first.stdout)[1])  # type: ignore[index]
    assert changed > 0, first.stdout
    assert answers(bare_machine["socket_uri"])  # its libvirtd runs now, inside its namespaces
    conn = libvirt.open(bare_machine["socket_uri"])
    try:
        assert {"vpsctl", "vpsctl-backup"} <= {p.name() for p in conn.listAllStoragePools(0)}
        assert "vpsctl" in [n.name() for n in conn.listAllNetworks(0)]
    finally:
        conn.close()
    engine = create_engine(f"sqlite:///{tmp_path}/vpsctl.db")
    with Session(engine) as session:
        host = session.exec(select(Host).where(Host.name == "h4")).one()
        assert host.uri.startswith(f"qemu+ssh://{bare_machine['target']}/system")
        assert host.site == "Paris" and host.state == "enabled" and host.vcpus >= 1
        assert host.ssh_host_key == " ".join(Path(directory, "ssh_host_ed25519_key.pub").read_text().split()[:2])
    engine.dispose()

    second = vpsctl(tmp_path, *command, "--ssh-host-key", fingerprint)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "changed=0 failed=0" in second.stdout, second.stdout
