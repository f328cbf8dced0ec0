"""Policy for what a VPS looks like on a hypervisor: turns records into hypervisor configs."""

from __future__ import annotations

import hashlib

from orchestrator.hypervisor import DiskConfig, DomainConfig, InterfaceConfig
from orchestrator.models import Host, Vps


def mac_for(vps_id: str) -> str:
    # Stable across retries (the DHCP lease follows the MAC), in QEMU's locally administered range.
    digest = hashlib.sha256(vps_id.encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def domain_config(vps: Vps, host: Host, customer_name: str) -> DomainConfig:
    return DomainConfig(
        uuid=vps.id,
        name=vps.domain_name,
        title=vps.name,
        domain_type=host.domain_type,
        vcpus=vps.vcpus,
        max_vcpus=vps.vcpus,
        memory_mib=vps.memory_mib,
        max_memory_mib=vps.memory_mib,
        disks=(
            DiskConfig(pool=host.pool_name, volume=vps.root_volume, target="vda", serial="root"),
            DiskConfig(pool=host.pool_name, volume=vps.seed_volume, target="vdb", format="raw",
                       readonly=True, serial="seed"),
        ),
        interfaces=(InterfaceConfig(network=host.network_name, mac=vps.mac or mac_for(vps.id)),),
        metadata={"name": vps.name, "customer": customer_name, "image": vps.image},
    )
