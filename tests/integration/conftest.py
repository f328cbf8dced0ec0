"""``second_host``: a second real libvirt host for the fleet tests, started once per test run
(scripts/extra-host.sh: its own network and mount namespaces, reached through its unix socket;
its guests through its namespace) and stopped at the end, with every guest it holds."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# One second host per test process (pytest-xdist's worker name): each starts and stops its own.
NETNS = "vpsctl-h2" + os.environ.get("PYTEST_XDIST_WORKER", "").replace("gw", "-")
HOST_DIR = Path("/var/tmp/vpsctl-fleet") / NETNS  # QEMU (libvirt-qemu) must traverse it: not under pytest's 0700 tmp


@pytest.fixture(scope="session")
def second_host() -> Iterator[dict[str, str]]:
    HOST_DIR.mkdir(parents=True, exist_ok=True)
    HOST_DIR.parent.chmod(0o755)
    HOST_DIR.chmod(0o755)
    started = subprocess.run([str(REPO / "scripts/extra-host.sh"), "start", NETNS, str(HOST_DIR)],
                             capture_output=True, text=True, timeout=180)
    if started.returncode != 0:
        pytest.fail(f"the second host did not start: {started.stderr[-2000:]}")
    uri = started.stdout.strip().splitlines()[-1]
    try:
        yield {"uri": uri, "proxy": f"ip netns exec {NETNS} nc -w 10 %h %p"}
    finally:
        subprocess.run([str(REPO / "scripts/extra-host.sh"), "stop", NETNS, str(HOST_DIR)],
                       capture_output=True, timeout=180)
