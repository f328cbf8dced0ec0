"""A PostgreSQL server of a test's own, on a loopback port: initdb into a directory of the test's,
started, stopped and started again by the test (the PostgreSQL the whole test run shares,
scripts/postgres.sh, is never touched).  The binaries are the ones of the newest PostgreSQL
installed, found as scripts/postgres.sh finds them (``/etc/postgresql/<version>``)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.smtp import free_port

USER = "postgres"  # initdb and postgres refuse to run as root


def binaries() -> Path:
    versions = sorted((p.name for p in Path("/etc/postgresql").glob("*") if p.name.replace(".", "").isdigit()),
                      key=lambda v: [int(part) for part in v.split(".")])
    for version in reversed(versions):
        found = Path("/usr/lib/postgresql") / version / "bin"
        if (found / "initdb").exists():
            return found
    pytest.fail("no PostgreSQL binaries under /usr/lib/postgresql (scripts/postgres.sh installs them)")


def _run(*command: str, timeout: float = 60) -> str:
    done = subprocess.run(["runuser", "-u", USER, "--", *command], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stdout[-1000:]} {done.stderr[-2000:]}")
    return done.stdout


class PrivatePostgres:
    """``start``, ``stop`` (``mode``: fast, or immediate as a crash), ``start`` again: the same data
    directory and the same port each time; ``url`` for the orchestrator."""

    def __init__(self) -> None:
        self.bin = binaries()
        # Not under pytest's tmp (0700 root): the postgres user must reach it.
        self.base = Path(tempfile.mkdtemp(prefix="vpsctl-pg-", dir="/var/tmp"))
        self.base.chmod(0o755)
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self.port = free_port()
        shutil.chown(self.base, USER)
        _run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "vpsctl", "-A", "trust", "--no-sync",
             "-E", "UTF8", "--locale=C.UTF-8")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://vpsctl@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        _run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options,
             "start")

    def stop(self, mode: str = "fast") -> None:
        _run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", "-m", mode, "stop")

    def running(self) -> bool:
        done = subprocess.run(["runuser", "-u", USER, "--", str(self.bin / "pg_ctl"), "-D", str(self.data), "status"],
                              capture_output=True, text=True)
        return done.returncode == 0

    def remove(self) -> None:
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)
