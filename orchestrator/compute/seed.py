"""The NoCloud seed (a ``cidata`` ISO 9660 image) that tells a new guest who it is.

Built in memory with pycdlib so that it can be streamed into a storage volume on any host,
local or remote, without temporary files or external tools.  The user-data is written in a
fixed, plain layout: cloud-init reads it as ordinary YAML, and the ``tiny`` image's shell parser
reads exactly this layout (images/tiny/).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pycdlib

from orchestrator.compute.keys import HostKey


@dataclass(frozen=True)
class Seed:
    instance_id: str
    hostname: str
    authorized_keys: tuple[str, ...]
    host_key: HostKey
    mac: str = ""  # the VPS's MAC (validated: the orchestrator derives it)

    def meta_data(self) -> str:
        # Both values are validated upstream (a UUID, an RFC 1123 label): no quoting needed.
        return f"instance-id: {self.instance_id}\nlocal-hostname: {self.hostname}\n"

    def user_data(self) -> str:
        lines = [
            "#cloud-config",
            f"hostname: {self.hostname}",
            "disable_root: false",
            "ssh_pwauth: false",
            "ssh_deletekeys: true",
            "ssh_authorized_keys:",
            *(f"  - {key}" for key in self.authorized_keys),
            "ssh_keys:",
            "  ed25519_private: |",
            *(f"    {line}" for line in self.host_key.private_openssh.strip().splitlines()),
            f"  ed25519_public: {self.host_key.public_openssh}",
        ]
        return "\n".join(lines) + "\n"

    def network_config(self) -> str | None:
        # DHCP on the NIC with the VPS's MAC, named eth0.  (A name glob such as "e*" is not
        # rendered by cloud-init's ifupdown backend on Debian 12: no interface would come up.)
        if not self.mac:
            return None  # cloud-init's fallback: DHCP on the first NIC
        return (
            "version: 2\nethernets:\n  eth0:\n    match:\n"
            f"      macaddress: \"{self.mac}\"\n    set-name: eth0\n    dhcp4: true\n"
        )

    def to_iso(self) -> bytes:
        iso = pycdlib.PyCdlib()
        iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident="cidata")
        files = {"meta-data": self.meta_data(), "user-data": self.user_data()}
        network = self.network_config()
        if network is not None:
            files["network-config"] = network
        for index, (name, text) in enumerate(files.items()):
            data = text.encode()
            iso.add_fp(
                io.BytesIO(data),
                len(data),
                f"/FILE{index};1",
                rr_name=name,
                joliet_path=f"/{name}",
            )
        out = io.BytesIO()
        iso.write_fp(out)
        iso.close()
        return out.getvalue()
