"""Column types and field helpers shared by every table: aware UTC times, exact money, JSON."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Date, DateTime, String, TypeDecorator
from sqlmodel import Field

from orchestrator.core.clock import utcnow


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every engine (SQLite drops offsets)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Money(TypeDecorator[Decimal]):
    """Euros as exact decimal text (SQLite has no decimal type and would round through a float)."""

    impl = String(24)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise ValueError(f"money must be a finite Decimal, not {value!r}")
        return str(value)

    def process_result_value(self, value: str | None, dialect: Any) -> Decimal | None:
        return None if value is None else Decimal(value)


def money_field(nullable: bool = False) -> Any:
    column: Column[Decimal] = Column(Money(), nullable=nullable)
    return Field(default=None if nullable else Decimal("0"), sa_column=column)


def bytes_field() -> Any:
    """A count of bytes: 64 bits (a disk's copy or an hour's traffic passes 2 GiB, PostgreSQL's
    INTEGER)."""
    return Field(default=0, sa_column=Column(BigInteger(), nullable=False))


def date_field(index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(Date(), nullable=True, index=index))


def time_field(now: bool = False, index: bool = False) -> Any:
    column: Column[datetime] = Column(UTCDateTime(), nullable=True, index=index)
    if now:
        return Field(default_factory=utcnow, sa_column=column)
    return Field(default=None, sa_column=column)


def json_field(default: Any) -> Any:
    return Field(default_factory=default, sa_column=Column(JSON, nullable=False))


def new_id() -> str:
    return str(uuid.uuid4())
