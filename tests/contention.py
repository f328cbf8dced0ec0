"""Contention that is seen, not hoped for: a test holds the lock every contender needs, lets the
contenders (threads or processes) go, waits until each is positively seen waiting for that
lock, and only then lets it go; so they all were at the lock at the same moment, whatever the
machine's load or the processes' start-up times.

- SQLite: the lock is the database's write lock (every transaction begins ``BEGIN IMMEDIATE``,
  orchestrator/core/db.py), held by a connection of the test's own.  A contender is seen waiting
  by ``BeginWatch``: its engine tells when it takes a connection for its first transaction, just
  before ``BEGIN IMMEDIATE``, and stamps when that ``BEGIN`` came back: after the lock was let go,
  as it could not before.
- PostgreSQL: the lock is a row lock (``SELECT ... FOR UPDATE``) on the row the contenders need
  (an invoice counter, an invoice); each contender connects with an ``application_name`` of its
  own and is seen waiting for a lock in ``pg_stat_activity`` (``wait_event_type = 'Lock'``).

Times are ``time.monotonic()``: CLOCK_MONOTONIC, one clock for every process of the machine.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.context import BaseContext
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

# Modules a process of the contention tests needs, imported once by the fork server: each
# process forked from it starts in milliseconds instead of importing them again.
PRELOAD = ["orchestrator.workflows", "orchestrator.core.db", "tests.contention"]


def processes() -> BaseContext:
    """A multiprocessing context whose processes start from a fork server with ``PRELOAD``
    imported (a fresh process, not a copy of the test's threads and connections)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def names(count: int) -> list[str]:
    """``count`` application names no other test (of this run or another) uses."""
    run = uuid.uuid4().hex[:8]
    return [f"contender-{run}-{n}" for n in range(count)]


def named(url: str, name: str) -> str:
    """``url`` with ``application_name`` (PostgreSQL); SQLite URLs as they are."""
    if not url.startswith("postgresql"):
        return url
    return sa.make_url(url).update_query_dict({"application_name": name}).render_as_string(hide_password=False)


class BeginWatch:
    """The first transaction an engine begins in each thread: when it asked to begin, when the
    ``BEGIN`` came back; ``on_asking(key)`` is called as it asks (before it may wait)."""

    def __init__(self, engine: Engine, on_asking: Callable[[str], None] = lambda _key: None,
                 key: Callable[[], str] = lambda: threading.current_thread().name) -> None:
        self.asked: dict[str, float] = {}
        self.began: dict[str, float] = {}
        self.key = key
        self.on_asking = on_asking
        # A connection is taken for each transaction (the session's, or engine.begin()'s) before
        # it begins: BEGIN IMMEDIATE runs in a "begin" listener of orchestrator/core/db.py, before
        # this one's.
        event.listen(engine, "engine_connect", self._asking)
        event.listen(engine, "begin", self._began)
        self.engine = engine

    def _asking(self, _conn: Any) -> None:
        key = self.key()
        if key not in self.asked:
            self.asked[key] = time.monotonic()
            self.on_asking(key)

    def _began(self, _conn: Any) -> None:
        self.began.setdefault(self.key(), time.monotonic())

    def close(self) -> None:
        event.remove(self.engine, "engine_connect", self._asking)
        event.remove(self.engine, "begin", self._began)


@contextmanager
def sqlite_write_lock(url: str) -> Iterator[Callable[[], float]]:
    """Hold the write lock of the SQLite database at ``url``; yields ``release()``, which lets it
    go and answers the instant just before it did."""
    path = sa.make_url(url).database
    assert path, url
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("BEGIN IMMEDIATE")
    released: list[float] = []

    def release() -> float:
        if not released:
            released.append(time.monotonic())
            conn.execute("ROLLBACK")
        return released[0]

    try:
        yield release
    finally:
        release()
        conn.close()


@contextmanager
def pg_row_lock(url: str, statement: str, **params: Any) -> Iterator[Callable[[], float]]:
    """Hold the row lock(s) ``statement`` (a ``SELECT ... FOR UPDATE``) takes in the PostgreSQL
    database at ``url``; yields ``release()`` as ``sqlite_write_lock`` does."""
    engine = sa.create_engine(url)
    conn = engine.connect()
    transaction = conn.begin()
    assert conn.execute(sa.text(statement), params).all(), f"nothing to lock: {statement} {params}"
    released: list[float] = []

    def release() -> float:
        if not released:
            released.append(time.monotonic())
            transaction.rollback()
        return released[0]

    try:
        yield release
    finally:
        release()
        conn.close()
        engine.dispose()


def pg_waiting(url: str, names: list[str], timeout: float = 60) -> set[str]:
    """Once every connection named in ``names`` waits for a lock (``pg_stat_activity``), their
    names; fails after ``timeout`` seconds naming those that never did."""
    engine = sa.create_engine(url)
    seen: set[str] = set()
    try:
        deadline = time.monotonic() + timeout
        with engine.connect() as conn:
            while True:
                seen = {row[0] for row in conn.execute(sa.text(
                    "SELECT application_name FROM pg_stat_activity "
                    "WHERE application_name = ANY(:names) AND wait_event_type = 'Lock'"), {"names": names})}
                conn.commit()
                if seen == set(names):
                    return seen
                assert time.monotonic() < deadline, f"never seen waiting for the lock: {sorted(set(names) - seen)}"
                time.sleep(0.02)
    finally:
        engine.dispose()


def pg_waiting_count(url: str, name: str, count: int, timeout: float = 60) -> int:
    """Once at least ``count`` connections named ``name`` wait for a lock (``pg_stat_activity``),
    how many do; fails after ``timeout`` seconds."""
    engine = sa.create_engine(url)
    try:
        deadline = time.monotonic() + timeout
        with engine.connect() as conn:
            while True:
                waiting = int(conn.execute(sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name "
                    "AND wait_event_type = 'Lock'"), {"name": name}).scalar_one())
                conn.commit()
                if waiting >= count:
                    return waiting
                assert time.monotonic() < deadline, f"{waiting} of {count} connections {name} seen waiting"
                time.sleep(0.02)
    finally:
        engine.dispose()
