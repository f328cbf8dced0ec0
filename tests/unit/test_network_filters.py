"""The guests' network isolation as libvirt XML: every interface references libvirt's
clean-traffic (no MAC, IP or ARP spoofing), with the one address the guest may use once it is
recorded, learnt from the host's DHCP server's answer until then; a mail-blocked VPS's filter is
clean-traffic plus the R6.4-spam rules, which drop TCP 25, 465 and 587 over IPv4 and IPv6.

The expected documents are written out here, not built by the code under test; both sides are
compared in canonical form (attribute order and indentation do not count)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from orchestrator.compute.designer import CLEAN_TRAFFIC_NO_MAIL, HOST_FILTERS, MAIL_BLOCK, domain_config
from orchestrator.core.models import Host, Vps
from orchestrator.core.settings import Settings
from orchestrator.hypervisor import DhcpHostConfig, FilterRef
from orchestrator.hypervisor.config import parse_dhcp_hosts, parse_filter_ref

VPS_ID = "6f1c1a52-6b43-4a5c-9a3e-3a0d7c2f9a11"
MAC = "52:54:00:aa:bb:cc"
SETTINGS = Settings(guest_subnet="192.168.151.0/24")


def canonical(xml: str) -> str:
    return ET.canonicalize(xml, strip_text=True)


def interface_xml(**record: object) -> str:
    vps = Vps(id=VPS_ID, name="web1", customer_id=1, host_id=1, image="tiny", vcpus=1, memory_mib=256,
              disk_gib=2, mac=MAC, **record)
    host = Host(id=1, name="h", uri="qemu:///system", pool_name="p", network_name="vpsctl")
    root = ET.fromstring(domain_config(vps, host, "alice", SETTINGS).to_xml())
    [interface] = root.findall("devices/interface")
    return ET.tostring(interface, encoding="unicode")


def test_before_its_lease_the_address_is_learnt_from_the_hosts_dhcp_server_only() -> None:
    assert canonical(interface_xml()) == canonical("""
        <interface type="network">
          <mac address="52:54:00:aa:bb:cc"/>
          <source network="vpsctl"/>
          <model type="virtio"/>
          <filterref filter="clean-traffic">
            <parameter name="CTRL_IP_LEARNING" value="dhcp"/>
            <parameter name="DHCPSERVER" value="192.168.151.1"/>
          </filterref>
          <link state="up"/>
        </interface>""")


def test_a_recorded_address_is_the_only_one_the_guest_may_use() -> None:
    xml = interface_xml(addresses=["fe80::1", "192.168.151.23"])
    assert canonical(xml) == canonical("""
        <interface type="network">
          <mac address="52:54:00:aa:bb:cc"/>
          <source network="vpsctl"/>
          <model type="virtio"/>
          <filterref filter="clean-traffic">
            <parameter name="IP" value="192.168.151.23"/>
          </filterref>
          <link state="up"/>
        </interface>""")


def test_mail_blocked_and_cut_off_keep_clean_traffic() -> None:
    """R6.4-spam and R5.5-cutoff change the filter and the link, never drop clean-traffic."""
    xml = interface_xml(addresses=["192.168.151.23"], mail_blocked=True, cut_off=True)
    assert canonical(xml) == canonical("""
        <interface type="network">
          <mac address="52:54:00:aa:bb:cc"/>
          <source network="vpsctl"/>
          <model type="virtio"/>
          <filterref filter="vpsctl-clean-traffic-no-mail">
            <parameter name="IP" value="192.168.151.23"/>
          </filterref>
          <link state="down"/>
        </interface>""")


def test_the_mail_block_drops_smtp_submission_and_smtps_over_ipv4_and_ipv6() -> None:
    """R6.4-spam: tcp rules are iptables rules and tcp-ipv6 ones ip6tables rules."""
    assert canonical(MAIL_BLOCK.to_xml("0e5c3f5e-8d3c-4f0f-9d7c-3f1d2a4b5c6d")) == canonical("""
        <filter name="vpsctl-no-outgoing-mail" chain="root">
          <uuid>0e5c3f5e-8d3c-4f0f-9d7c-3f1d2a4b5c6d</uuid>
          <rule action="drop" direction="out" priority="500"><tcp dstportstart="25"/></rule>
          <rule action="drop" direction="out" priority="500"><tcp-ipv6 dstportstart="25"/></rule>
          <rule action="drop" direction="out" priority="500"><tcp dstportstart="465"/></rule>
          <rule action="drop" direction="out" priority="500"><tcp-ipv6 dstportstart="465"/></rule>
          <rule action="drop" direction="out" priority="500"><tcp dstportstart="587"/></rule>
          <rule action="drop" direction="out" priority="500"><tcp-ipv6 dstportstart="587"/></rule>
        </filter>""")


def test_a_blocked_vps_filter_is_clean_traffic_plus_the_mail_block() -> None:
    assert canonical(CLEAN_TRAFFIC_NO_MAIL.to_xml()) == canonical("""
        <filter name="vpsctl-clean-traffic-no-mail" chain="root">
          <filterref filter="clean-traffic"/>
          <filterref filter="vpsctl-no-outgoing-mail"/>
        </filter>""")
    # defined on each host after the filter it references
    assert [f.name for f in HOST_FILTERS] == ["vpsctl-no-outgoing-mail", "vpsctl-clean-traffic-no-mail"]


def test_the_filter_is_read_back_from_libvirts_xml_whatever_the_order() -> None:
    live = """
        <domain type="qemu"><devices>
          <interface type="network">
            <mac address="52:54:00:AA:BB:CC"/>
            <filterref filter="clean-traffic">
              <parameter name="DHCPSERVER" value="192.168.151.1"/>
              <parameter name="CTRL_IP_LEARNING" value="dhcp"/>
            </filterref>
            <target dev="vnet3"/>
          </interface>
          <interface type="network"><mac address="52:54:00:00:00:01"/></interface>
        </devices></domain>"""
    assert parse_filter_ref(live, MAC) == FilterRef(
        "clean-traffic", frozenset({("CTRL_IP_LEARNING", "dhcp"), ("DHCPSERVER", "192.168.151.1")}))
    assert parse_filter_ref(live, "52:54:00:00:00:01") is None  # a NIC without a filter
    assert parse_filter_ref(live, "52:54:00:99:99:99") is None  # no such NIC


def test_dhcp_host_entries_pin_an_address_to_a_mac() -> None:
    assert canonical(DhcpHostConfig(mac=MAC, ip="192.168.151.23").to_xml()) == canonical(
        '<host mac="52:54:00:aa:bb:cc" ip="192.168.151.23"/>')
    network = """
        <network><name>vpsctl</name>
          <ip address="192.168.151.1" netmask="255.255.255.0">
            <dhcp>
              <range start="192.168.151.10" end="192.168.151.254"/>
              <host mac="52:54:00:AA:BB:CC" ip="192.168.151.23"/>
              <host mac="52:54:00:00:00:01" name="other"/>
            </dhcp>
          </ip>
        </network>"""
    assert parse_dhcp_hosts(network) == {MAC: "192.168.151.23"}
