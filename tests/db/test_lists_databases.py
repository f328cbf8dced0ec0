"""Every list read a page at a time on each database (SQLite and PostgreSQL): the keyset
comparisons (time, then id; the VPS events' (time, source, id)) give each row once, in order,
with ties across page ends and rows added meanwhile (tests/api/test_lists.py says what is
checked)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.app import create_app
from orchestrator.core.models import Host, Image
from tests.api.test_lists import LISTS, check_list
from tests.conftest import Api, base_settings
from tests.databases import databases, empty_database


@pytest.fixture(params=databases())
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    with empty_database(request.param, tmp_path) as database:
        settings = base_settings(tmp_path, database_url=database.db.url)
        app = create_app(settings, run_worker=False)
        engine = app.state.engine
        with Session(engine) as session:
            session.add(Host(name="h1", uri="test:///default", site="Marseille", vcpus=4, memory_mib=8192,
                             disk_gib=100))
            session.add(Image(name="tiny", os="Tiny Linux", sha256="0" * 64, path="/nonexistent",
                              min_disk_gib=1, min_memory_mib=128))
            session.commit()
        try:
            with TestClient(app) as client:
                yield Api(client, engine, settings)
        finally:
            engine.dispose()


@pytest.mark.parametrize("name", list(LISTS))
def test_every_list_pages_alike_on_each_database(api: Api, name: str) -> None:
    check_list(api, name)
