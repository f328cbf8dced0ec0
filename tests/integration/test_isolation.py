"""Guests are isolated from each other on the real libvirtd: two tiny guests A and B on one bridge;
from inside A, B's address and a MAC that is not A's get nowhere, while B, and A with its own
address, still work.  Every interface references libvirt's clean-traffic with the guest's own
address, and the R6.4-spam mail block drops IPv6 as well as IPv4.

The evidence is a packet capture in the test network namespace (tests/integration/sniffer.py)
on A's tap device, which sees what A sends, and on the bridge, which sees what reaches the host:
spoofed frames are on the first and not on the second, while A's and B's own frames are on both.
The same capture first shows a spoofed packet reaching the host while A's interface has no filter
(a domain defined before every interface had one, its address not pinned), until the reconciler
brings A to its record, following the lease A holds.

The test network has no IPv6 (orchestrator/hypervisor/config.py NetworkConfig, and clean-traffic
drops every frame that is neither IPv4 nor ARP), so the IPv6 half of the mail block is checked in
libvirt's filter and in the ip6tables rules libvirt made for A's tap device."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from types import TracebackType
from typing import Any

import libvirt
import pytest
from sqlmodel import Session, select

from orchestrator.core.models import Job, JobStatus, Vps
from orchestrator.hypervisor import InterfaceConfig
from tests.conftest import NETNS, TEST_GATEWAY, URI, Api
from tests.integration.lifecycle import Guest, eventually, order

pytestmark = pytest.mark.libvirt

SNIFFER = Path(__file__).with_name("sniffer.py")
FOREIGN_MAC = "52:54:00:de:ad:01"  # not any guest's (ours are 52:54:00 + a hash of the VPS id)
STALE = "192.168.151.5"  # below the test network's DHCP range: never a guest's


class Capture:
    """The sniffer running in the test namespace; ``frames()`` is what it has printed so far."""

    def __init__(self, interfaces: list[str]) -> None:
        self.interfaces = interfaces
        self.seen: list[dict[str, Any]] = []
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Capture:
        self.proc = subprocess.Popen(["ip", "netns", "exec", NETNS, sys.executable, "-u", str(SNIFFER),
                                      *self.interfaces], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        assert json.loads(self.proc.stdout.readline()) == {"ready": True}
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.seen.append(json.loads(line))

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def mark(self) -> int:
        return len(self.seen)

    def frames(self, since: int, iface: str, **fields: str) -> list[dict[str, Any]]:
        """Frames received on ``iface`` (not sent by the host) since ``since`` with those fields."""
        return [f for f in self.seen[since:] if f["iface"] == iface and not f["outgoing"]
                and all(f.get(k) == v for k, v in fields.items())]


def interface(guest: Guest, flags: int = 0) -> ET.Element:
    root = ET.fromstring(guest.domain().XMLDesc(flags))
    found = root.find("devices/interface")
    assert found is not None
    return found


def mac_of(guest: Guest) -> str:
    mac = interface(guest).find("mac")
    assert mac is not None
    return mac.get("address", "")


Filter = tuple[str, frozenset[tuple[str, str]]]


def filter_of(guest: Guest, flags: int = 0) -> Filter | None:
    """The guest interface's filter and its parameters, as libvirt holds them."""
    ref = interface(guest, flags).find("filterref")
    if ref is None:
        return None
    return ref.get("filter", ""), frozenset((p.get("name", ""), p.get("value", "")) for p in ref.iter("parameter"))


def own(address: str, name: str = "clean-traffic") -> Filter:
    return name, frozenset({("IP", address)})


def exit_code(output: str, name: str) -> int:
    """``name=<status>`` printed by a guest command."""
    return int(next(part.split("=")[1] for part in output.split() if part.startswith(f"{name}=")))


def spoof_address(victim: str) -> str:
    """In the guest: take the victim's address beside its own, ping the gateway from it, claim it
    by ARP, give it back, then ping the gateway with its own address."""
    return (f"ip addr add {victim}/32 dev eth0; ping -c 3 -W 1 -I {victim} {TEST_GATEWAY} >/dev/null 2>&1; "
            f"echo spoofed=$?; arping -U -c 2 -I eth0 -s {victim} {victim} >/dev/null 2>&1; "
            f"ip addr del {victim}/32 dev eth0; ping -c 2 -W 2 {TEST_GATEWAY} >/dev/null 2>&1; echo own=$?")


def make_legacy(guest: Guest) -> None:
    """Make the guest as this project left it before every interface had a filter, as a VPS
    created by an earlier version is found after the upgrade: its interface without a filter (live
    and persistent), its address not pinned in the network's DHCP server."""
    network = interface(guest).find("source").get("network", "")  # type: ignore[union-attr]
    bare = InterfaceConfig(network=network, mac=mac_of(guest)).to_xml()
    guest.domain().updateDeviceFlags(bare, libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    conn = libvirt.open(URI)
    try:
        net = conn.networkLookupByName(network)
        for address in pinned(mac_of(guest)):
            net.update(libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE, libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST, -1,
                       f"<host mac='{mac_of(guest)}' ip='{address}'/>",
                       libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE | libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG)
    finally:
        conn.close()


def record_addresses(api: Api, vps_id: str, addresses: list[str]) -> None:
    with Session(api.engine) as session:
        vps = session.get(Vps, vps_id)
        assert vps is not None
        vps.addresses = addresses
        session.add(vps)
        session.commit()


def pinned(mac: str) -> list[str]:
    """The addresses the test network's DHCP server keeps for that MAC (its DHCP host entries)."""
    conn = libvirt.open(URI)
    try:
        network = ET.fromstring(conn.networkLookupByName("vpsctl-test").XMLDesc(0))
    finally:
        conn.close()
    return [h.get("ip", "") for h in network.iterfind("ip/dhcp/host") if h.get("mac", "").lower() == mac.lower()]


def neighbour(address: str) -> str:
    """The host's ARP entry for an address on the test network ("" when it has none)."""
    return subprocess.run(["ip", "-n", NETNS, "neigh", "show", address], capture_output=True, text=True,
                          check=True).stdout


def host_ping(address: str) -> None:
    """The host pings a guest of the test network (so that it learns its MAC by ARP); busybox's
    ping, which scripts/install.sh installs for the images."""
    subprocess.run(["ip", "netns", "exec", NETNS, "busybox", "ping", "-c", "1", "-W", "5", address], check=True,
                   capture_output=True)


def test_a_guest_cannot_take_a_neighbours_address_or_mac(live_api: Api, tmp_path: Path) -> None:
    api = live_api
    api.settings.periodic.reconcile_seconds = 0  # the reconciler runs when this test says so (below)
    a, b = order(api, tmp_path, name="spoofer"), order(api, tmp_path, name="neighbour")
    addr_a, addr_b = a.record["addresses"][0], b.record["addresses"][0]
    mac_a, mac_b = mac_of(a), mac_of(b)
    # Every interface references clean-traffic with its guest's own address, live and persistent,
    # and the network's DHCP server keeps that address for it.
    for guest, mac, address in ((a, mac_a, addr_a), (b, mac_b, addr_b)):
        assert filter_of(guest) == own(address)
        assert filter_of(guest, libvirt.VIR_DOMAIN_XML_INACTIVE) == own(address)
        assert pinned(mac) == [address]
    bridge, tap = api.settings.hosts.guest_bridge, interface(a).find("target").get("dev", "")  # type: ignore[union-attr]

    with Capture([bridge, tap]) as capture:
        # Before: A as an earlier version defined it, without a filter.  Its packet from B's
        # address reaches the host: the capture would see what the filter is there to stop.
        make_legacy(a)
        assert filter_of(a) is None and pinned(mac_a) == []
        mark = capture.mark()
        assert exit_code(a.ssh(spoof_address(addr_b)), "own") == 0
        eventually(lambda: capture.frames(mark, bridge, kind="echo-request", eth_src=mac_a, src=addr_b),
                   within=10, what="the unfiltered spoofed ping at the host")

        # The address first recorded may not be the one it holds now (.5 is outside the DHCP
        # range: nobody's).
        record_addresses(api, a.id, [STALE])

        # The reconciler finds A's filter is not its record's and asks a network-sync job, which
        # records the lease A holds, pins it and gives it to the filter: A keeps its network.
        api.settings.periodic.filter_check_seconds = 1.0
        eventually(lambda: filter_of(a) == own(addr_a), within=60, what="A's filter applied again")
        api.settings.periodic.filter_check_seconds = 0
        assert filter_of(a, libvirt.VIR_DOMAIN_XML_INACTIVE) == own(addr_a)
        with Session(api.engine) as session:
            [sync] = session.exec(select(Job).where(Job.kind == "network-sync", Job.vps_id == a.id)).all()
        # Its live filter is applied before its last step ends: the job itself is waited for.
        synced = api.wait_job(sync.id, api.support)
        assert synced["status"] == JobStatus.succeeded.value, synced["error"]
        assert a.record["addresses"] == [addr_a] and pinned(mac_a) == [addr_a]

        # The host knows B's MAC for B's address (the unfiltered A may have answered for it above).
        subprocess.run(["ip", "-n", NETNS, "neigh", "flush", "to", addr_b], check=True)
        host_ping(addr_b)
        assert mac_b in neighbour(addr_b)
        time.sleep(1.5)  # past the ARP lock time: an unfiltered claim would replace the entry

        # (a) B's address, taken by A: A sends the pings and the ARP claim (its tap device shows
        # them), none reaches the host; A's own ping, right after, does.
        mark = capture.mark()
        output = a.ssh(spoof_address(addr_b))
        assert exit_code(output, "spoofed") != 0 and exit_code(output, "own") == 0, output
        time.sleep(1)
        sent = capture.frames(mark, tap, kind="echo-request", eth_src=mac_a, src=addr_b)
        claimed = capture.frames(mark, tap, kind="arp", eth_src=mac_a, sender_ip=addr_b)
        assert len(sent) >= 3 and len(claimed) >= 1, capture.seen[mark:]
        assert capture.frames(mark, bridge, src=addr_b, eth_src=mac_a) == []
        assert capture.frames(mark, bridge, kind="arp", sender_ip=addr_b, eth_src=mac_a) == []
        assert len(capture.frames(mark, bridge, kind="echo-request", eth_src=mac_a, src=addr_a)) >= 2
        assert mac_b in neighbour(addr_b)  # no evidence can be planted under B's address

        # (b) Another MAC: A changes its own and pings, then puts its MAC back (by itself: the SSH
        # session goes over that interface).  The frames leave A and never reach the host.
        mark = capture.mark()
        a.ssh(f"setsid sh -c 'ip link set eth0 address {FOREIGN_MAC}; ping -c 3 -W 1 {TEST_GATEWAY} "
              f">/dev/null 2>&1; echo spoofed=$? > /tmp/mac-spoof; ip link set eth0 address {mac_a}' "
              "</dev/null >/dev/null 2>&1 &")
        output = a.ssh_eventually("cat /tmp/mac-spoof", within=60)
        assert exit_code(output, "spoofed") != 0, output
        assert capture.frames(mark, tap, eth_src=FOREIGN_MAC), capture.seen[mark:]
        assert capture.frames(mark, bridge, eth_src=FOREIGN_MAC) == []
        assert capture.frames(mark, bridge, sender_mac=FOREIGN_MAC) == []
        mark = capture.mark()
        assert exit_code(a.ssh(f"ping -c 2 -W 2 {TEST_GATEWAY} >/dev/null 2>&1; echo own=$?"), "own") == 0
        assert len(capture.frames(mark, bridge, kind="echo-request", eth_src=mac_a, src=addr_a)) >= 2

        # B kept its address: it answers SSH, and its own traffic flows.
        mark = capture.mark()
        output = b.ssh_eventually(f"ping -c 2 -W 2 {TEST_GATEWAY} >/dev/null 2>&1; echo own=$?")
        assert exit_code(output, "own") == 0
        assert len(capture.frames(mark, bridge, kind="echo-request", eth_src=mac_b, src=addr_b)) >= 2
        assert mac_b in neighbour(addr_b)

    # R6.4-spam: the mail block is clean-traffic plus rules for IPv4 and IPv6.
    assert a.do("mail-block", {"complaint": "isolation test"}, token=api.support)["status"] == "succeeded"
    blocked = own(addr_a, "vpsctl-clean-traffic-no-mail")
    assert filter_of(a) == blocked and filter_of(a, libvirt.VIR_DOMAIN_XML_INACTIVE) == blocked
    assert mail_rules() == {(protocol, port) for protocol in ("tcp", "tcp-ipv6") for port in ("25", "465", "587")}
    rules = subprocess.run(["ip", "netns", "exec", NETNS, "ip6tables-save"], capture_output=True, text=True,
                           check=True).stdout
    for port in (25, 465, 587):
        assert any(tap in line and f"--dport {port}" in line and "DROP" in line for line in rules.splitlines()), \
            f"no ip6tables rule dropping TCP {port} from {tap}"
    assert b.ssh("echo still").strip() == "still"


def mail_rules() -> set[tuple[str, str]]:
    """The (protocol, port) of the mail block's drop rules, as libvirt holds the filter."""
    conn = libvirt.open(URI)
    try:
        root = ET.fromstring(conn.nwfilterLookupByName("vpsctl-no-outgoing-mail").XMLDesc(0))
    finally:
        conn.close()
    return {(match.tag, match.get("dstportstart", "")) for rule in root.iter("rule")
            if rule.get("action") == "drop" and rule.get("direction") == "out" for match in rule}
