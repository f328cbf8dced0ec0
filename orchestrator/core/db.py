"""Engine and sessions.  SQLite on one machine, PostgreSQL when several processes share work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, inspect
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine, select

from orchestrator.core import eventlog, models  # noqa: F401  (registers the tables; events follow changes)
from orchestrator.core.files import private_dir, private_file
from orchestrator.core.migrations import migrate
from orchestrator.core.settings import Settings


def make_engine(settings: Settings, *, upgrade: bool = True) -> Engine:
    """An engine on the configured database, its schema brought to this version's (migrations;
    ``upgrade=False`` only for commands that look at the schema without changing it)."""
    url = settings.database
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            # SQLite gives its journal and WAL files the database file's mode.
            private_dir(Path(path).parent)
            private_file(Path(path))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _sqlite_pragmas(engine)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    if upgrade:
        migrate(engine)
    return engine


def _sqlite_pragmas(engine: Engine) -> None:
    # WAL lets the API read while a worker writes; busy_timeout makes writers queue, not fail.
    # BEGIN IMMEDIATE on every transaction takes the write lock up front, so a read-then-write
    # (claiming a job, reserving capacity) cannot interleave with another process's.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")  # WAL: consistent after a crash, cheap commits
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


# What SQLite says when its file cannot be used now (every other sqlite3.OperationalError, such as
# "no such table" or a syntax error, is a fault of the code, not of the database's availability).
_SQLITE_BUSY = ("database is locked", "unable to open database file", "disk i/o error")


def database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot be reached or used just now (a server stopped or
    restarting, a connection cut, no connection free in the pool, SQLite's file locked beyond its
    wait): worth trying again shortly, and no fault of what was asked."""
    if isinstance(error, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return True
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    if not isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError):
        return False
    if type(error.orig).__module__.startswith("sqlite3"):
        return any(text in str(error.orig).lower() for text in _SQLITE_BUSY)
    return True  # a server's OperationalError: connection refused, closed, shut down, starting up


def unavailable_detail(error: BaseException) -> str:
    """The first line of the database driver's message (no SQL, no parameters)."""
    orig = getattr(error, "orig", None) or error
    lines = str(orig).strip().splitlines()
    return (lines[0] if lines else type(orig).__name__)[:300]


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


M = TypeVar("M", bound=SQLModel)


def locked(session: Session, record: M) -> M:
    """``record`` read again under a row lock held until the transaction ends (``SELECT ... FOR
    UPDATE`` on PostgreSQL; SQLite's transactions are serial already): check-then-act on it is
    safe against a concurrent transaction doing the same."""
    model = type(record)
    key = inspect(model).primary_key[0]
    identity = getattr(record, key.name)
    return session.exec(select(model).where(key == identity).with_for_update()
                        .execution_options(populate_existing=True)).one()
