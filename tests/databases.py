"""The databases the database tests run on: SQLite always, and the real PostgreSQL that
scripts/test.sh starts (``$VPSCTL_TEST_POSTGRES_URL``).  Each PostgreSQL test works in a new
schema of its own (``search_path``), dropped afterwards: it neither sees nor leaves behind tables
or a schema version (``alembic_version``) of another test or of an earlier run on the same server.

When the test command requires PostgreSQL (``VPSCTL_TEST_REQUIRE_POSTGRES=1``) and none is given,
the PostgreSQL variant of every such test fails, loudly: it is never skipped."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from orchestrator.core.settings import Settings


def databases() -> list[str]:
    kinds = ["sqlite"]
    if os.environ.get("VPSCTL_TEST_POSTGRES_URL") or os.environ.get("VPSCTL_TEST_REQUIRE_POSTGRES") == "1":
        kinds.append("postgresql")
    return kinds


@contextmanager
def empty_database(kind: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings for an empty database: a new SQLite file, or a new PostgreSQL schema."""
    if kind == "sqlite":
        yield Settings(state_dir=tmp_path, database_url="")
        return
    if not os.environ.get("VPSCTL_TEST_POSTGRES_URL"):
        pytest.fail("VPSCTL_TEST_REQUIRE_POSTGRES=1 but no VPSCTL_TEST_POSTGRES_URL: start PostgreSQL "
                    "(scripts/postgres.sh start) or run scripts/test.sh")
    base = sa.make_url(os.environ["VPSCTL_TEST_POSTGRES_URL"])
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = base.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield Settings(state_dir=tmp_path, database_url=url.render_as_string(hide_password=False))
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
