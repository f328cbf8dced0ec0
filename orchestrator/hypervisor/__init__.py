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
