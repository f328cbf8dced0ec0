"""The one layer that talks to hypervisors.  Only ``libvirt_driver`` imports ``libvirt``."""

from orchestrator.hypervisor.base import (
    ConsoleStream,
    DomainInfo,
    DomainState,
    HostInfo,
    HypervisorDriver,
    PoolInfo,
)
from orchestrator.hypervisor.config import (
    DiskConfig,
    DomainConfig,
    InterfaceConfig,
    NetworkConfig,
    PoolConfig,
    PortBlockFilter,
    VolumeConfig,
)

__all__ = [
    "ConsoleStream",
    "DiskConfig",
    "DomainConfig",
    "DomainInfo",
    "DomainState",
    "HostInfo",
    "HypervisorDriver",
    "InterfaceConfig",
    "NetworkConfig",
    "PoolConfig",
    "PoolInfo",
    "PortBlockFilter",
    "VolumeConfig",
]
