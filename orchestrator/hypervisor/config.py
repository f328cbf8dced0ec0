"""libvirt XML documents as typed objects.

These classes only convert to XML (ElementTree does every escape); what goes into them — sizes,
devices, the domain type — is decided by callers (orchestrator/operations/designer.py), the way
Nova keeps ``config.py`` apart from ``designer.py``.
"""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

METADATA_NS = "https://vpsctl.dev/xmlns/vps/1"
GUEST_AGENT_CHANNEL = "org.qemu.guest_agent.0"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        element.text = text
    return element


def _to_string(root: ET.Element) -> str:
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")


@dataclass(frozen=True)
class DiskConfig:
    """A disk backed by a volume of a storage pool (works the same on a remote host)."""

    pool: str
    volume: str
    target: str  # vda, vdb, ...
    format: str = "qcow2"
    readonly: bool = False
    serial: str | None = None

    def to_element(self) -> ET.Element:
        disk = ET.Element("disk", type="volume", device="disk")
        driver = {"name": "qemu", "type": self.format}
        if not self.readonly:
            driver["discard"] = "unmap"
        _sub(disk, "driver", **driver)
        _sub(disk, "source", pool=self.pool, volume=self.volume)
        _sub(disk, "target", dev=self.target, bus="virtio")
        if self.readonly:
            _sub(disk, "readonly")
        if self.serial:
            _sub(disk, "serial", self.serial)
        return disk

    def to_xml(self) -> str:
        return _to_string(self.to_element())


@dataclass(frozen=True)
class FilterRef:
    """An interface's nwfilter and the values of its variables (``IP``, ``CTRL_IP_LEARNING``, ...).

    The variables are a set: libvirt keeps no order among them, and a variable may be given
    several values (two ``IP``s), so that two references compare equal whatever their order."""

    filter: str
    parameters: frozenset[tuple[str, str]] = frozenset()

    def to_element(self) -> ET.Element:
        ref = ET.Element("filterref", filter=self.filter)
        for name, value in sorted(self.parameters):
            _sub(ref, "parameter", name=name, value=value)
        return ref


@dataclass(frozen=True)
class InterfaceConfig:
    network: str
    mac: str
    link_up: bool = True
    filter: FilterRef | None = None  # the nwfilter applied to the guest's traffic

    def to_element(self) -> ET.Element:
        interface = ET.Element("interface", type="network")
        _sub(interface, "mac", address=self.mac)
        _sub(interface, "source", network=self.network)
        _sub(interface, "model", type="virtio")
        if self.filter:
            interface.append(self.filter.to_element())
        _sub(interface, "link", state="up" if self.link_up else "down")
        return interface

    def to_xml(self) -> str:
        return _to_string(self.to_element())


def _interface(domain_xml: str, mac: str) -> ET.Element | None:
    root = ET.fromstring(domain_xml)  # noqa: S314  (XML from libvirt, not from users)
    for interface in root.iter("interface"):
        mac_element = interface.find("mac")
        if mac_element is not None and mac_element.get("address", "").lower() == mac.lower():
            return interface
    return None


def parse_link_state(domain_xml: str, mac: str) -> bool | None:
    """Whether the interface with that MAC has its link up in a domain's XML (None: no such NIC)."""
    interface = _interface(domain_xml, mac)
    if interface is None:
        return None
    link = interface.find("link")
    return link is None or link.get("state", "up") == "up"


def parse_filter_ref(domain_xml: str, mac: str) -> FilterRef | None:
    """The nwfilter reference of the interface with that MAC in a domain's XML (None: no such
    NIC, or a NIC without a filter)."""
    interface = _interface(domain_xml, mac)
    ref = None if interface is None else interface.find("filterref")
    if ref is None:
        return None
    parameters = frozenset((p.get("name", ""), p.get("value", "")) for p in ref.findall("parameter"))
    return FilterRef(filter=ref.get("filter", ""), parameters=parameters)


@dataclass(frozen=True)
class DomainConfig:
    uuid: str
    name: str
    title: str
    domain_type: str  # kvm | qemu
    vcpus: int
    max_vcpus: int
    memory_mib: int
    max_memory_mib: int
    disks: tuple[DiskConfig, ...]
    interfaces: tuple[InterfaceConfig, ...]
    metadata: dict[str, str] = field(default_factory=dict)
    machine: str = "pc"
    serial_log: str | None = None

    def to_xml(self) -> str:
        root = ET.Element("domain", type=self.domain_type)
        _sub(root, "name", self.name)
        _sub(root, "uuid", self.uuid)
        _sub(root, "title", self.title)
        meta = _sub(root, "metadata")
        vps = ET.SubElement(meta, f"{{{METADATA_NS}}}vps")
        for key, value in sorted(self.metadata.items()):
            ET.SubElement(vps, f"{{{METADATA_NS}}}{key}").text = value
        _sub(root, "memory", str(self.max_memory_mib), unit="MiB")
        _sub(root, "currentMemory", str(self.memory_mib), unit="MiB")
        _sub(root, "vcpu", str(self.max_vcpus), placement="static", current=str(self.vcpus))
        os_ = _sub(root, "os")
        _sub(os_, "type", "hvm", arch="x86_64", machine=self.machine)
        _sub(os_, "boot", dev="hd")
        features = _sub(root, "features")
        _sub(features, "acpi")
        _sub(features, "apic")
        if self.domain_type == "kvm":
            _sub(root, "cpu", mode="host-passthrough")
        _sub(root, "clock", offset="utc")
        _sub(root, "on_poweroff", "destroy")
        _sub(root, "on_reboot", "restart")
        _sub(root, "on_crash", "destroy")
        devices = _sub(root, "devices")
        for disk in self.disks:
            devices.append(disk.to_element())
        for interface in self.interfaces:
            devices.append(interface.to_element())
        serial = _sub(devices, "serial", type="pty")
        _sub(serial, "target", port="0")
        if self.serial_log:
            _sub(serial, "log", file=self.serial_log, append="on")
        console = _sub(devices, "console", type="pty")
        _sub(console, "target", type="serial", port="0")
        # The QEMU guest agent's channel (virtio-serial; libvirt adds the controller and the host's
        # socket): backups freeze the guest's filesystems through it when an agent answers.
        channel = _sub(devices, "channel", type="unix")
        _sub(channel, "target", type="virtio", name=GUEST_AGENT_CHANNEL)
        _sub(devices, "memballoon", model="virtio")
        rng = _sub(devices, "rng", model="virtio")
        _sub(rng, "backend", "/dev/urandom", model="random")
        return _to_string(root)


@dataclass(frozen=True)
class VolumeConfig:
    name: str
    capacity_bytes: int
    format: str = "qcow2"
    backing_path: str | None = None
    backing_format: str = "qcow2"

    def to_xml(self) -> str:
        root = ET.Element("volume")
        _sub(root, "name", self.name)
        _sub(root, "capacity", str(self.capacity_bytes), unit="bytes")
        _sub(root, "allocation", "0", unit="bytes")
        target = _sub(root, "target")
        _sub(target, "format", type=self.format)
        perms = _sub(target, "permissions")
        _sub(perms, "mode", "0600")
        if self.backing_path:
            backing = _sub(root, "backingStore")
            _sub(backing, "path", self.backing_path)
            _sub(backing, "format", type=self.backing_format)
        return _to_string(root)


@dataclass(frozen=True)
class PoolConfig:
    name: str
    path: str

    def to_xml(self) -> str:
        root = ET.Element("pool", type="dir")
        _sub(root, "name", self.name)
        target = _sub(root, "target")
        _sub(target, "path", self.path)
        perms = _sub(target, "permissions")
        _sub(perms, "mode", "0711")
        return _to_string(root)


@dataclass(frozen=True)
class NetworkConfig:
    """A NAT network with DHCP: each host gives its guests private addresses behind its own."""

    name: str
    bridge: str
    subnet: str

    @property
    def gateway(self) -> str:
        """The host's address on the network: the guests' gateway and their DHCP server."""
        return gateway_of(self.subnet)

    def to_xml(self) -> str:
        net = ipaddress.ip_network(self.subnet)
        hosts = list(net.hosts())
        root = ET.Element("network")
        _sub(root, "name", self.name)
        _sub(root, "forward", mode="nat")
        _sub(root, "bridge", name=self.bridge, stp="off", delay="0")
        ip = _sub(root, "ip", address=self.gateway, netmask=str(net.netmask))
        dhcp = _sub(ip, "dhcp")
        _sub(dhcp, "range", start=str(hosts[min(9, len(hosts) - 1)]), end=str(hosts[-1]))
        return _to_string(root)


def gateway_of(subnet: str) -> str:
    """The first address of a guest subnet, which the host takes (see NetworkConfig)."""
    return str(next(ipaddress.ip_network(subnet).hosts()))


@dataclass(frozen=True)
class DhcpHostConfig:
    """A DHCP host entry of a network: its DHCP server gives this address to this MAC only."""

    mac: str
    ip: str

    def to_xml(self) -> str:
        return _to_string(ET.Element("host", mac=self.mac, ip=self.ip))


def parse_dhcp_hosts(network_xml: str) -> dict[str, str]:
    """A network's DHCP host entries: MAC (lower case) to IPv4 address."""
    root = ET.fromstring(network_xml)  # noqa: S314  (XML from libvirt, not from users)
    return {host.get("mac", "").lower(): host.get("ip", "") for host in root.iterfind("ip/dhcp/host")
            if host.get("mac") and host.get("ip")}


@dataclass(frozen=True)
class BackupConfig:
    """A push-mode backup of one disk into a qcow2 file."""

    target: str  # the domain's disk, e.g. vda
    path: str

    def to_xml(self) -> str:
        root = ET.Element("domainbackup", mode="push")
        disks = _sub(root, "disks")
        disk = _sub(disks, "disk", name=self.target, backup="yes", type="file")
        _sub(disk, "target", file=self.path)
        _sub(disk, "driver", type="qcow2")
        return _to_string(root)


@dataclass(frozen=True)
class PortBlockFilter:
    """An nwfilter dropping the guest's outgoing TCP to some ports, over IPv4 and IPv6 (everything
    else flows).  ``tcp`` and ``tcp-ipv6`` rules are iptables and ip6tables rules, whatever the
    chain: the filter is in the root chain and holds both families."""

    name: str
    tcp_ports: tuple[int, ...]

    def to_xml(self, uuid: str | None = None) -> str:
        root = ET.Element("filter", name=self.name, chain="root")
        if uuid:
            _sub(root, "uuid", uuid)
        for port in self.tcp_ports:
            for protocol in ("tcp", "tcp-ipv6"):
                rule = _sub(root, "rule", action="drop", direction="out", priority="500")
                _sub(rule, protocol, dstportstart=str(port))
        return _to_string(root)


@dataclass(frozen=True)
class FilterSet:
    """An nwfilter made of other nwfilters: an interface references a single filter, so a
    combination (libvirt's clean-traffic plus our own rules) is a filter of its own.  The
    interface's variables reach every filter it references."""

    name: str
    filters: tuple[str, ...]

    def to_xml(self, uuid: str | None = None) -> str:
        root = ET.Element("filter", name=self.name, chain="root")
        if uuid:
            _sub(root, "uuid", uuid)
        for name in self.filters:
            _sub(root, "filterref", filter=name)
        return _to_string(root)


NwFilter = PortBlockFilter | FilterSet
