"""Fixtures shared by the API tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import Api


@pytest.fixture
def two_vps(offline_api: Api, tmp_path: Path) -> list[str]:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    key = (tmp_path / "k.pub").read_text().strip()
    ids = []
    for token, name in ((offline_api.alice, "a1"), (offline_api.bob, "b1")):
        response = offline_api.order(token, json={
            "name": name, "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [key]})
        ids.append(response.json()["vps"]["id"])
    return ids
