"""Unbroken numbering (invoices ``F2026-000001``, order forms ``BC2026-000001``).

A number is taken from a ``Counter`` row under a row lock, in the caller's transaction: two
transactions asking at once get consecutive numbers (the second waits for the first to end), and
a transaction that rolls back gives its number back — the sequence has neither duplicates nor
gaps.  Counting the numbers already given, as before, let two transactions take the same one.
A prefix's counter starts from the numbers already given under it (installations from before the
counters)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, func, select

from orchestrator.core.models import Counter


def next_number(session: Session, prefix: str, numbered: Any, width: int = 6) -> str:
    """The next number after ``prefix`` (``numbered``: the column holding the numbers already
    given, to start a new counter from)."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    already = select(func.count()).select_from(numbered.class_).where(col(numbered).startswith(prefix))
    session.execute(insert(Counter).values(prefix=prefix, value=already.scalar_subquery())
                    .on_conflict_do_nothing(index_elements=["prefix"]))
    counter = session.exec(select(Counter).where(Counter.prefix == prefix).with_for_update()
                           .execution_options(populate_existing=True)).one()
    counter.value += 1
    session.add(counter)
    session.flush()
    return f"{prefix}{counter.value:0{width}d}"
