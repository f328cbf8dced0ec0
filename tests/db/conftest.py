"""``settings``: each database test runs on a new SQLite file and on a new PostgreSQL schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.core.settings import Settings
from tests.databases import databases, empty_database


@pytest.fixture(params=databases())
def settings(request: Any, tmp_path: Path) -> Iterator[Settings]:
    with empty_database(request.param, tmp_path) as settings:
        yield settings
