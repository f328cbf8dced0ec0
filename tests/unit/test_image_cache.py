"""The image cache serves a built file only for the recipe it was built from."""

from __future__ import annotations

import json
from pathlib import Path

from sqlmodel import Session

from orchestrator.compute import images
from orchestrator.core.db import make_engine
from orchestrator.core.settings import Settings

RECIPE = """#!/bin/bash
set -euo pipefail
echo built >>"$(dirname "$0")/../../runs"  # outside the recipe
qemu-img create -q -f qcow2 "$1" 64M
"""


def recipes(tmp_path: Path) -> Path:
    folder = tmp_path / "recipes"
    (folder / "small").mkdir(parents=True)
    (folder / "lib").mkdir()
    (folder / "small" / "build.sh").write_text(RECIPE)
    (folder / "small" / "init").write_text("#!/bin/sh\necho one\n")
    (folder / "lib" / "common.sh").write_text("x=1\n")
    (folder / "catalog.json").write_text(json.dumps([{"name": "small", "os": "Small 1", "recipe": "small/build.sh"}]))
    return folder


def runs(folder: Path) -> int:
    path = folder.parent / "runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_changed_recipe_file_rebuilds_the_image_and_an_unchanged_one_does_not(tmp_path: Path) -> None:
    folder = recipes(tmp_path)
    local = Settings(state_dir=tmp_path / "state", images_dir=folder, image_cache_dir=tmp_path / "cache")
    engine = make_engine(local)
    with Session(engine) as session:
        check(local, session, folder)
    engine.dispose()


def check(local: Settings, session: Session, folder: Path) -> None:

    images.build(local, session, "small")
    images.build(local, session, "small")
    assert runs(folder) == 1

    (folder / "small" / "init").write_text("#!/bin/sh\necho two\n")
    images.build(local, session, "small")
    assert runs(folder) == 2

    (folder / "lib" / "common.sh").write_text("x=2\n")
    images.build(local, session, "small")
    assert runs(folder) == 3

    (folder / "small" / "init").chmod(0o755)  # only the mode changes: still another recipe
    images.build(local, session, "small")
    assert runs(folder) == 4

    images.build(local, session, "small")
    assert runs(folder) == 4
