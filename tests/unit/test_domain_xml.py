"""Domain, volume and network XML are built by ElementTree from typed objects."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from orchestrator.compute.designer import domain_config, mac_for
from orchestrator.core.models import Host, Vps
from orchestrator.core.settings import Settings
from orchestrator.hypervisor import NetworkConfig, VolumeConfig
from orchestrator.hypervisor.config import METADATA_NS

EVIL = "</title><devices><disk type='file'><source file='/etc/shadow'/></disk></devices>&amp;"


def make(name: str = "web1", customer: str = "alice") -> ET.Element:
    vps = Vps(id="6f1c1a52-6b43-4a5c-9a3e-3a0d7c2f9a11", name=name, customer_id=1, host_id=1, image="tiny",
              vcpus=2, memory_mib=512, disk_gib=4)
    host = Host(id=1, name="h", uri="qemu:///system", domain_type="qemu", pool_name="p", network_name="n")
    return ET.fromstring(domain_config(vps, host, customer, Settings()).to_xml())


def test_domain_identity_comes_from_the_uuid() -> None:
    root = make()
    assert root.get("type") == "qemu"
    assert root.findtext("uuid") == "6f1c1a52-6b43-4a5c-9a3e-3a0d7c2f9a11"
    assert root.findtext("name") == "vps-6f1c1a52-6b43-4a5c-9a3e-3a0d7c2f9a11"


def test_sizes_devices_and_link() -> None:
    root = make()
    assert root.find("memory").text == "512" and root.find("memory").get("unit") == "MiB"
    assert root.find("vcpu").get("current") == "2"
    disks = root.findall("devices/disk")
    assert [d.find("target").get("dev") for d in disks] == ["vda", "vdb"]
    root_volume = "vps-6f1c1a52-6b43-4a5c-9a3e-3a0d7c2f9a11-root.qcow2"
    assert disks[0].find("source").attrib == {"pool": "p", "volume": root_volume}
    assert disks[1].find("readonly") is not None and disks[1].find("driver").get("type") == "raw"
    iface = root.find("devices/interface")
    assert iface.find("source").get("network") == "n"
    assert iface.find("mac").get("address") == mac_for("6f1c1a52-6b43-4a5c-9a3e-3a0d7c2f9a11")
    assert iface.find("link").get("state") == "up"
    # the guest agent's channel: virtio-serial, the name qemu-guest-agent listens on
    [channel] = root.findall("devices/channel")
    assert channel.get("type") == "unix"
    assert channel.find("target").attrib == {"type": "virtio", "name": "org.qemu.guest_agent.0"}


def test_user_strings_are_escaped_text_never_markup() -> None:
    root = make(name=EVIL, customer=EVIL)
    assert root.findtext("title") == EVIL
    assert root.find(f"metadata/{{{METADATA_NS}}}vps/{{{METADATA_NS}}}customer").text == EVIL
    assert len(root.findall("devices/disk")) == 2  # nothing injected
    assert all(d.find("source").get("file") is None for d in root.findall("devices/disk"))


def test_mac_is_stable_and_locally_administered() -> None:
    assert mac_for("a") == mac_for("a") != mac_for("b")
    assert mac_for("a").startswith("52:54:00:") and len(mac_for("a")) == 17


def test_overlay_volume_and_network() -> None:
    vol = ET.fromstring(VolumeConfig("v.qcow2", 2 << 30, backing_path="/pool/base.qcow2").to_xml())
    assert vol.findtext("capacity") == str(2 << 30)
    assert vol.findtext("backingStore/path") == "/pool/base.qcow2"
    assert vol.find("backingStore/format").get("type") == "qcow2"
    net = ET.fromstring(NetworkConfig("n", "br9", "192.168.150.0/24").to_xml())
    assert net.find("ip").get("address") == "192.168.150.1"
    assert net.find("ip/dhcp/range").attrib == {"start": "192.168.150.10", "end": "192.168.150.254"}
