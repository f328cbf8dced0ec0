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

from orchestrator.keys import HostKey


@dataclass(frozen=True)
class Seed:
    instance_id: str
    hostname: str
    authorized_keys: tuple[str, ...]
    host_key: HostKey

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

    def network_config(self) -> str:
        return "version: 2\nethernets:\n  primary:\n    match:\n      name: \"e*\"\n    dhcp4: true\n"

    def to_iso(self) -> bytes:
        iso = pycdlib.PyCdlib()
        iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident="cidata")
        files = {
            "meta-data": self.meta_data(),
            "user-data": self.user_data(),
            "network-config": self.network_config(),
        }
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
