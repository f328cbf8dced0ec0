"""Policy for what a VPS looks like on a hypervisor: turns records into hypervisor configs."""

from __future__ import annotations

import hashlib
import math
from typing import Any

from orchestrator.core.models import Host, Vps
from orchestrator.core.settings import Settings
from orchestrator.hypervisor import DiskConfig, DomainConfig, InterfaceConfig, PortBlockFilter


def mac_for(vps_id: str) -> str:
    # Stable across retries (the DHCP lease follows the MAC), in QEMU's locally administered range.
    digest = hashlib.sha256(vps_id.encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def live_ceilings(vcpus: int, memory_mib: int, settings: Settings) -> tuple[int, int]:
    """The maximum vCPUs and memory a VPS is defined with, so that it can grow without a reboot."""
    headroom = settings.lifecycle.live_resize_headroom
    return (
        max(vcpus, min(settings.limits.max_vcpus, math.ceil(vcpus * headroom))),
        max(memory_mib, min(settings.limits.max_memory_mib, math.ceil(memory_mib * headroom))),
    )


# R6.4-spam: the partial interruption: outgoing SMTP, SMTPS and submission are dropped.
MAIL_BLOCK = PortBlockFilter(name="vpsctl-block-mail", tcp_ports=(25, 465, 587))


def interface_config(vps: Vps, host: Host) -> InterfaceConfig:
    # R5.5-cutoff: a cut-off VPS has its link down in every definition until reconnected.
    return InterfaceConfig(network=host.network_name, mac=vps.mac or mac_for(vps.id), link_up=not vps.cut_off,
                           filter=MAIL_BLOCK.name if vps.mail_blocked else None)


def data_disk_config(vps: Vps, host: Host, disk: dict[str, Any]) -> DiskConfig:
    # The serial lets the guest find the disk by id (/dev/disk/by-id/virtio-<serial>).
    return DiskConfig(pool=host.pool_name, volume=str(disk["volume"]), target=str(disk["target"]),
                      serial=str(disk["id"]))


def next_disk_target(vps: Vps) -> str:
    used = {"vda", "vdb", *(str(d["target"]) for d in vps.data_disks)}
    return next(f"vd{letter}" for letter in "cdefghijklmnopqrstuvwxyz" if f"vd{letter}" not in used)


def domain_config(vps: Vps, host: Host, customer_name: str, settings: Settings | None = None) -> DomainConfig:
    serial_log = f"{settings.hosts.serial_log_dir}/{vps.domain_name}-serial.log" if settings else None
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
        interfaces=(interface_config(vps, host),),
        metadata={"name": vps.name, "customer": customer_name, "image": vps.image},
        serial_log=serial_log,
    )
