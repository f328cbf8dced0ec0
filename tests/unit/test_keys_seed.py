from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pycdlib
import pytest
import yaml

from orchestrator.compute.keys import fingerprint, generate_host_key, normalise_authorized_key
from orchestrator.compute.seed import Seed
from orchestrator.core.errors import InvalidRequest


def keygen(tmp_path: Path, kind: str) -> tuple[str, str]:
    path = tmp_path / kind
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "me@laptop", "-f", str(path)], check=True)
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(path)], check=True, capture_output=True,
                         text=True).stdout
    return path.with_suffix(".pub").read_text().strip(), out.split()[1]


@pytest.mark.parametrize("kind", ["ed25519", "rsa", "ecdsa"])
def test_client_keys_are_accepted_and_fingerprints_match_openssh(tmp_path: Path, kind: str) -> None:
    public, expected = keygen(tmp_path, kind)
    assert normalise_authorized_key(public + "\n") == public
    assert fingerprint(public) == expected


def test_generated_host_key_fingerprint_matches_openssh(tmp_path: Path) -> None:
    key = generate_host_key()
    (tmp_path / "h.pub").write_text(key.public_openssh + "\n")
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(tmp_path / "h.pub")], check=True,
                         capture_output=True, text=True).stdout
    assert out.split()[1] == key.fingerprint
    assert key.private_openssh.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")


@pytest.mark.parametrize("bad", [
    "", "ssh-ed25519", "ssh-dss AAAAB3NzaC1kc3MAAACBAP", "ssh-ed25519 !!!!",
    "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",  # type mismatch
    "-----BEGIN OPENSSH PRIVATE KEY-----",
])
def test_bad_client_keys_are_refused(bad: str) -> None:
    with pytest.raises(InvalidRequest):
        normalise_authorized_key(bad)


def test_seed_is_a_cidata_iso_that_cloud_init_can_read(tmp_path: Path) -> None:
    public, _ = keygen(tmp_path, "ed25519")
    key = generate_host_key()
    seed = Seed("0d5c7f0e-2f0a-4d8e-9b1a-1f9b0b6f4b7e", "web1", (public,), key, mac="52:54:00:ab:cd:ef")
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(seed.to_iso()))
    assert iso.pvd.volume_identifier.decode().strip() == "cidata"

    def read(name: str) -> str:
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, rr_path=f"/{name}")
        return out.getvalue().decode()

    meta = yaml.safe_load(read("meta-data"))
    user = yaml.safe_load(read("user-data"))
    assert read("user-data").startswith("#cloud-config\n")
    assert meta == {"instance-id": "0d5c7f0e-2f0a-4d8e-9b1a-1f9b0b6f4b7e", "local-hostname": "web1"}
    assert user["ssh_authorized_keys"] == [public]
    assert user["ssh_keys"]["ed25519_private"].strip() == key.private_openssh.strip()
    assert user["ssh_keys"]["ed25519_public"] == key.public_openssh
    assert user["disable_root"] is False and user["ssh_pwauth"] is False
    network = yaml.safe_load(read("network-config"))
    assert network["ethernets"]["eth0"] == {"match": {"macaddress": "52:54:00:ab:cd:ef"}, "set-name": "eth0",
                                           "dhcp4": True}
