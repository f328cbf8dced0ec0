"""Policy for what a VPS looks like on a hypervisor: turns records into hypervisor configs."""

from __future__ import annotations

import hashlib
import math
from typing import Any

from orchestrator.core.models import Host, Vps
from orchestrator.core.settings import Settings
from orchestrator.hypervisor import (
    DiskConfig,
    DomainConfig,
    FilterRef,
    FilterSet,
    InterfaceConfig,
    NwFilter,
    PortBlockFilter,
    gateway_of,
)


def mac_for(vps_id: str) -> str:
    # Stable across retries (the DHCP lease follows the MAC), in QEMU's locally administered range.
    digest = hashlib.sha256(vps_id.encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def mac_of(vps: Vps) -> str:
    return vps.mac or mac_for(vps.id)


def live_ceilings(vcpus: int, memory_mib: int, settings: Settings) -> tuple[int, int]:
    """The maximum vCPUs and memory a VPS is defined with, so that it can grow without a reboot."""
    headroom = settings.lifecycle.live_resize_headroom
    return (
        max(vcpus, min(settings.limits.max_vcpus, math.ceil(vcpus * headroom))),
        max(memory_mib, min(settings.limits.max_memory_mib, math.ceil(memory_mib * headroom))),
    )


# Every guest's interface goes through libvirt's clean-traffic: no MAC, IP or ARP spoofing (a
# neighbour cannot take another VPS's address), no other layer-2 traffic (IPv6 included).
CLEAN_TRAFFIC = "clean-traffic"
# R6.4-spam: the partial interruption: outgoing SMTP, SMTPS and submission are dropped, over IPv4
# and IPv6.  An interface takes one filter, so a blocked VPS's is clean-traffic plus these rules.
MAIL_BLOCK = PortBlockFilter(name="vpsctl-no-outgoing-mail", tcp_ports=(25, 465, 587))
CLEAN_TRAFFIC_NO_MAIL = FilterSet(name="vpsctl-clean-traffic-no-mail", filters=(CLEAN_TRAFFIC, MAIL_BLOCK.name))
# What registration defines on every host, in this order (a filter after those it references).
HOST_FILTERS: tuple[NwFilter, ...] = (MAIL_BLOCK, CLEAN_TRAFFIC_NO_MAIL)


def ipv4_address(vps: Vps) -> str | None:
    """The VPS's IPv4 address as recorded from its DHCP lease (None until it has one)."""
    return next((a for a in vps.addresses if ":" not in a), None)


def filter_ref(vps: Vps, settings: Settings) -> FilterRef:
    """The interface's filter: its address once recorded (pinned by a DHCP host entry, so the DHCP
    server never hands it another); until then libvirt learns it from the DHCP answers of the
    host's own DHCP server only, and lets nothing but DHCP through before that."""
    name = CLEAN_TRAFFIC_NO_MAIL.name if vps.mail_blocked else CLEAN_TRAFFIC
    address = ipv4_address(vps)
    if address:
        return FilterRef(name, frozenset({("IP", address)}))
    dhcp_server = gateway_of(settings.hosts.guest_subnet)
    return FilterRef(name, frozenset({("CTRL_IP_LEARNING", "dhcp"), ("DHCPSERVER", dhcp_server)}))


def interface_config(vps: Vps, host: Host, settings: Settings) -> InterfaceConfig:
    # R5.5-cutoff: a cut-off VPS has its link down in every definition until reconnected.
    return InterfaceConfig(network=host.network_name, mac=mac_of(vps), link_up=not vps.cut_off,
                           filter=filter_ref(vps, settings))


def data_disk_config(vps: Vps, host: Host, disk: dict[str, Any]) -> DiskConfig:
    # The serial lets the guest find the disk by id (/dev/disk/by-id/virtio-<serial>).
    return DiskConfig(pool=host.pool_name, volume=str(disk["volume"]), target=str(disk["target"]),
                      serial=str(disk["id"]))


def next_disk_target(vps: Vps) -> str:
    used = {"vda", "vdb", *(str(d["target"]) for d in vps.data_disks)}
    return next(f"vd{letter}" for letter in "cdefghijklmnopqrstuvwxyz" if f"vd{letter}" not in used)


def domain_config(vps: Vps, host: Host, customer_name: str, settings: Settings) -> DomainConfig:
    serial_log = f"{settings.hosts.serial_log_dir}/{vps.domain_name}-serial.log"
    return DomainConfig(
        uuid=vps.id,
        name=vps.domain_name,
        title=vps.name,
        domain_type=host.domain_type,
        vcpus=vps.vcpus,
        max_vcpus=max(vps.max_vcpus, vps.vcpus),
        memory_mib=vps.memory_mib,
        max_memory_mib=max(vps.max_memory_mib, vps.memory_mib),
        disks=(
            DiskConfig(pool=host.pool_name, volume=vps.root_volume, target="vda", serial="root"),
            DiskConfig(pool=host.pool_name, volume=vps.seed_volume, target="vdb", format="raw",
                       readonly=True, serial="seed"),
            *(data_disk_config(vps, host, disk) for disk in vps.data_disks),
        ),
        interfaces=(interface_config(vps, host, settings),),
        metadata={"name": vps.name, "customer": customer_name, "image": vps.image},
        serial_log=serial_log,
    )
