"""What the control plane writes is private from its creation (orchestrator/core/files.py): the
state directory 0700, the database and its journal 0600 whatever the umask, an export 0600
while it is still being written."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.api.fakeworld import make_world
from tests.fakes import FakeDriver


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_state_and_the_database_are_private_whatever_the_umask(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {**os.environ, "VPSCTL_STATE_DIR": str(state)}
    env.pop("VPSCTL_DATABASE_URL", None)
    run = subprocess.run([sys.executable, "-c", "import os; os.umask(0o022); from orchestrator.cli import app; app()",
                          "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert mode(state) == 0o700
    database = [state / name for name in ("vpsctl.db", "vpsctl.db-wal", "vpsctl.db-shm") if (state / name).exists()]
    assert database and {p.name: mode(p) for p in database} == {p.name: 0o600 for p in database}


def test_an_existing_state_directory_is_made_private(tmp_path: Path) -> None:
    from orchestrator.core.db import make_engine
    from orchestrator.core.settings import Settings

    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    (state / "vpsctl.db").touch(mode=0o644)
    os.chmod(state / "vpsctl.db", 0o644)
    make_engine(Settings(state_dir=state)).dispose()
    assert (mode(state), mode(state / "vpsctl.db")) == (0o700, 0o600)


class Watching(FakeDriver):
    """Looks at the export's file while its bytes are being streamed into it."""

    seen: list[int] = []

    def download_volume(self, pool: str, name: str) -> Iterator[bytes]:
        yield b"QFI\xfb" + bytes(4092)
        exports = Path(os.environ["VPSCTL_TEST_EXPORTS"])
        self.seen.extend(mode(p) for p in exports.glob("*.part"))
        self.seen.append(mode(exports))
        yield bytes(4096)


def test_an_export_is_private_while_it_is_written(tmp_path: Path, monkeypatch: Any) -> None:
    os.umask(0o022)
    try:
        world = make_world(tmp_path, "w", driver=lambda uri, host: Watching(uri, host))
        monkeypatch.setenv("VPSCTL_TEST_EXPORTS", str(world.api.settings.state_dir / "exports"))
        asked = world.api.call("POST", f"/v1/vps/{world.vps_id}/export", world.api.alice)
        assert asked.status_code == 202
        world.run()
    finally:
        os.umask(0o022)
    # for each disk exported (the root disk and the data disk): its partial file, then its directory
    assert Watching.seen == [0o600, 0o700] * 2
    export = world.api.settings.state_dir / "exports" / f"{asked.json()['job']['id']}.qcow2"
    assert mode(export) == 0o600


