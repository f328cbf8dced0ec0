"""Extra real libvirt hosts for the fleet tests, each started once per test run
(scripts/extra-host.sh: its own network and mount namespaces, an sshd inside them) and stopped at
the end, with every guest it holds.  A host is reached through its unix socket (``uri``) or over
SSH (``ssh_uri``, root logging in with ``client_key``, the host presenting the key in its
``ssh_host_ed25519_key.pub``); its guests through its namespace (``proxy``) or by a jump through
its sshd (``jump``).  ``second_host`` (Paris in the tests) and ``third_host`` (an empty host to
rebuild on)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import libvirt
import pytest

from orchestrator.hypervisor.libvirt_driver import refresh_pool

REPO = Path(__file__).resolve().parents[2]
# One set of hosts per test process (pytest-xdist's worker name): each starts and stops its own.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
WORKER_INDEX = int(WORKER[2:] or 0) if WORKER.startswith("gw") else 0
FLEET = Path("/var/tmp/vpsctl-fleet")  # QEMU (libvirt-qemu) must traverse it: not under pytest's 0700 tmp


def host_key(host: dict[str, str]) -> str:
    """The host's SSH host key, read from its file (``ssh-ed25519 AAAA...``)."""
    return " ".join(Path(host["dir"], "ssh_host_ed25519_key.pub").read_text().split()[:2])


def run_host(action: str, host: dict[str, str], timeout: float = 180) -> None:
    """scripts/extra-host.sh ``action`` (down, up, rekey) on the host; fails the test if it fails."""
    done = subprocess.run([str(REPO / "scripts/extra-host.sh"), action, host["netns"], host["dir"],
                           host["ssh_port"]], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        pytest.fail(f"extra-host.sh {action} {host['netns']}: {done.stderr[-2000:]}")


STARTED: dict[str, str] = {}  # the extra hosts of this process: name -> unix socket URI


def leases_file(uri: str, bridge: str) -> Path:
    """Where the extra host's libvirt keeps the leases of its network on ``bridge``: its
    /var/lib/libvirt is DIR/lib (scripts/extra-host.sh), DIR the folder of its socket's."""
    socket = Path(parse_qs(urlsplit(uri).query)["socket"][0])
    return socket.parent.parent / "lib" / "dnsmasq" / f"{bridge}.status"


def forget_leases(net: libvirt.virNetwork, uri: str) -> None:
    """The network's DHCP server forgets its leases: stopped, its leases file removed, started.
    Each test allocates addresses from the start of the range again, and a lease an earlier test's
    guest still held would keep the address from the MAC it is now pinned for."""
    if not net.isActive() or not net.DHCPLeases():
        return
    bridge = net.bridgeName()
    net.destroy()
    leases_file(uri, bridge).unlink(missing_ok=True)
    net.create()
    left = net.DHCPLeases()
    assert not left, f"{net.name()} still leases {left} after its leases were removed"


def wipe(uri: str) -> None:
    """What the tests left on an extra host goes (each test has a database of its own; the host
    outlives it): domains, VPS volumes (not the images), DHCP host entries and leases."""
    conn = libvirt.open(uri)
    try:
        for dom in conn.listAllDomains(0):
            for action in (dom.destroy, dom.undefine):
                with contextlib.suppress(libvirt.libvirtError):
                    action()
        for pool in conn.listAllStoragePools(0):
            with contextlib.suppress(libvirt.libvirtError):
                refresh_pool(pool)
                for vol in pool.listAllVolumes(0):
                    if vol.name().startswith("vps-"):
                        vol.delete(0)
        for net in conn.listAllNetworks(0):
            for host in ET.fromstring(net.XMLDesc(0)).findall("./ip/dhcp/host"):
                with contextlib.suppress(libvirt.libvirtError):
                    net.update(libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE, libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST,
                               -1, ET.tostring(host, encoding="unicode"),
                               libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE | libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG)
            forget_leases(net, uri)
    finally:
        conn.close()


@pytest.fixture(autouse=True)
def _extra_hosts_wiped() -> Iterator[None]:
    yield
    for uri in STARTED.values():
        with contextlib.suppress(libvirt.libvirtError):  # a host a test left down is wiped when back
            wipe(uri)


def extra_host(name: str, base_port: int) -> Iterator[dict[str, str]]:
    netns = f"vpsctl-{name}" + (f"-{WORKER_INDEX}" if WORKER else "")
    directory = FLEET / netns
    port = base_port + WORKER_INDEX
    address = f"10.251.{port % 250 + 1}.2"  # scripts/extra-host.sh: the namespace's end of its veth pair
    directory.mkdir(parents=True, exist_ok=True)
    FLEET.chmod(0o755)
    directory.chmod(0o755)
    started = subprocess.run([str(REPO / "scripts/extra-host.sh"), "start", netns, str(directory), str(port)],
                             capture_output=True, text=True, timeout=180)
    if started.returncode != 0:
        pytest.fail(f"host {netns} did not start: {started.stderr[-2000:]}")
    key = directory / "client_key"
    known_hosts = directory / "known_hosts"  # the test's own, for the jump to the guests
    host = {"uri": started.stdout.strip().splitlines()[-1], "proxy": f"ip netns exec {netns} nc -w 10 %h %p",
            "ssh_uri": f"qemu+ssh://root@{address}:{port}/system?keyfile={key}",
            "jump": f"ssh -i {key} -p {port} -o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes "
                    f"-o BatchMode=yes -W %h:%p root@{address}",
            "netns": netns, "dir": str(directory), "ssh_port": str(port), "known_hosts": str(known_hosts),
            "ssh_address": address}
    known_hosts.write_text(f"[{address}]:{port} {host_key(host)}\n")
    STARTED[netns] = host["uri"]
    try:
        yield host
    finally:
        STARTED.pop(netns, None)
        subprocess.run([str(REPO / "scripts/extra-host.sh"), "stop", netns, str(directory)],
                       capture_output=True, timeout=180)


@pytest.fixture(scope="session")
def second_host() -> Iterator[dict[str, str]]:
    yield from extra_host("h2", 2222)


@pytest.fixture(scope="session")
def third_host() -> Iterator[dict[str, str]]:
    yield from extra_host("h3", 2300)


@pytest.fixture(scope="session")
def linked_hosts(second_host: dict[str, str], third_host: dict[str, str]) -> dict[str, str]:
    """A wire between the second and third hosts (a veth pair from one's network namespace to the
    other's, nothing else on it): their QEMU reach each other for a live migration.  The address
    of each end, by host."""
    subnet = f"10.252.{WORKER_INDEX}"
    a, b = second_host["netns"], third_host["netns"]
    if subprocess.run(["ip", "-n", a, "link", "show", "mig0"], capture_output=True).returncode != 0:
        for command in (["ip", "link", "add", "mig0", "netns", a, "type", "veth", "peer", "name", "mig0", "netns", b],
                        ["ip", "-n", a, "addr", "add", f"{subnet}.1/30", "dev", "mig0"],
                        ["ip", "-n", b, "addr", "add", f"{subnet}.2/30", "dev", "mig0"],
                        ["ip", "-n", a, "link", "set", "mig0", "up"],
                        ["ip", "-n", b, "link", "set", "mig0", "up"]):
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                pytest.fail(f"{' '.join(command)}: {done.stderr}")
    return {"h2": f"{subnet}.1", "h3": f"{subnet}.2"}
