"""vpsctl: provision VPS on libvirt hosts and run their lifecycle under the hosting contract."""

__version__ = "0.1.0"
