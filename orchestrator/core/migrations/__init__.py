"""Schema migrations: every database is brought to the models' schema by alembic revisions
(``versions/``), so an installation keeps its data across upgrades.

``migrate(engine)`` runs at every start (API, worker, command line) and decides from the database:

- at the head revision: nothing to do (one version read, the common case);
- empty: the tables are created from the models in one go and stamped at the head (what alembic
  recommends for a new database: creating thirty tables directly is much faster than replaying
  every revision, and ``tests/db/test_migrations.py`` proves both give the same schema);
- tables but no ``alembic_version`` (an installation from before migrations, commit f15dd45):
  stamped ``0001`` and upgraded, or stamped at the head if its tables already are the models';
- at an older revision: upgraded.

Several processes may start at once: on PostgreSQL the check and the upgrade run under a
transaction-level advisory lock; on SQLite under the write lock that ``BEGIN IMMEDIATE`` takes
(orchestrator/core/db.py), so the second process finds the work done.  The whole upgrade is one
transaction: a failure leaves the database as it was (DDL is transactional on both engines).

Developers: every change to ``orchestrator/core/models.py`` comes with a revision here
(``vpsctl db revision -m "what"`` writes a draft from the difference); the test
``test_upgrade_from_empty_gives_the_models_schema`` fails when they differ.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from orchestrator.core import models  # noqa: F401  (registers the tables)
from orchestrator.core.errors import SchemaError

TARGET = SQLModel.metadata
# The tables of the first release (revision 0001): a database holding them but no version is one.
RELEASE_TABLES = frozenset({"audit", "customer", "host", "image", "apitoken", "hostimage", "maintenance", "outbox",
                            "vps", "backup", "compromise", "job", "maintenancevps", "jobevent"})
LOCK_KEY = 0x7670_7363_746C  # "vpsctl": the advisory lock serialising migrations on PostgreSQL

Outcome = Literal["current", "created", "stamped", "upgraded"]


def alembic_config(connection: Connection | None = None) -> Config:
    """The alembic configuration, built in code (no alembic.ini to ship or to find)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent))
    cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def head() -> str:
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None
    return revision


def current(engine: Engine) -> str | None:
    """The database's revision (None: not versioned, empty or from before migrations)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def differences(conn: Connection) -> list[Any]:
    """What separates the database's schema from the models' (empty: the same)."""
    quiet = logging.getLogger("alembic.autogenerate")  # each difference is logged as "detected"
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        return list(compare_metadata(MigrationContext.configure(conn), TARGET))
    finally:
        quiet.setLevel(level)


def migrate(engine: Engine) -> Outcome:
    """Bring the database to the head revision; returns what had to be done."""
    with engine.connect() as conn:
        if _revision(conn) == head():
            conn.rollback()
            return "current"
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        outcome = _migrate(conn)
        conn.commit()
        return outcome


def _revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _migrate(conn: Connection) -> Outcome:
    cfg = alembic_config(conn)
    revision = _revision(conn)  # again: another process may have migrated while this one waited
    if revision == head():
        return "current"
    if revision is None:
        tables = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
        if not tables:
            TARGET.create_all(conn)
            command.stamp(cfg, "head")
            return "created"
        found = differences(conn)
        if not found:
            command.stamp(cfg, "head")
            return "stamped"
        missing = RELEASE_TABLES - tables
        if missing:
            raise SchemaError(f"the database has tables but not those of a vpsctl installation "
                              f"(missing: {', '.join(sorted(missing))}); refusing to migrate it")
        if tables - RELEASE_TABLES:
            raise SchemaError(f"the database has no schema version and tables the first release did not "
                              f"have ({', '.join(sorted(tables - RELEASE_TABLES))}), but differs from this "
                              f"version's models (e.g. {found[0]}); a development database? refusing to guess")
        command.stamp(cfg, "0001")
    elif revision not in {script.revision for script in ScriptDirectory.from_config(cfg).walk_revisions()}:
        raise SchemaError(f"the database is at revision {revision}, unknown to this version of vpsctl "
                          f"(newer?); refusing to start on it")
    command.upgrade(cfg, "head")
    return "upgraded"


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Draft revisions name column types as the database stores them (``sa.String(24)``, not
    ``orchestrator.core.models.Money``), so a revision never depends on code that later changes."""
    if type_ != "type":
        return False
    impl = obj.impl_instance if isinstance(obj, sa.TypeDecorator) else obj
    if isinstance(impl, sa.DateTime):
        return "sa.DateTime()"
    if isinstance(impl, sa.String) and type(impl) in (sa.String, AutoString):
        return f"sa.String(length={impl.length})" if impl.length else "sa.String()"
    return False
