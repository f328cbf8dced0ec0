"""The one layer that talks to hypervisors: the driver protocol (``base``, whose docstrings state
its promises), the XML objects (``config``, built with ElementTree only) and the libvirt driver
(``libvirt_driver``, the only module that imports ``libvirt``).

May import ``core`` only; everything above gets its own types back, never a libvirt object."""

from orchestrator.hypervisor.base import (
    ConsoleStream,
    DomainInfo,
    DomainState,
    HostInfo,
    HypervisorDriver,
    Lease,
    LiveBackup,
    PoolInfo,
)
from orchestrator.hypervisor.config import (
    DhcpHostConfig,
    DiskConfig,
    DomainConfig,
    FilterRef,
    FilterSet,
    InterfaceConfig,
    NetworkConfig,
    NwFilter,
    PoolConfig,
    PortBlockFilter,
    VolumeConfig,
    gateway_of,
)

__all__ = [
    "ConsoleStream",
    "DhcpHostConfig",
    "DiskConfig",
    "DomainConfig",
    "DomainInfo",
    "DomainState",
    "FilterRef",
    "FilterSet",
    "HostInfo",
    "HypervisorDriver",
    "InterfaceConfig",
    "Lease",
    "LiveBackup",
    "NetworkConfig",
    "NwFilter",
    "PoolConfig",
    "PoolInfo",
    "PortBlockFilter",
    "VolumeConfig",
    "gateway_of",
]
