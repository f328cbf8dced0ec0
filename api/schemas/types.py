"""Bounded types for what people type: dates and instants within the years a contract can be
about (2000-2199: outside, date arithmetic would overflow, and such a date is a typing mistake),
and record ids that fit the database's 64-bit integers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AwareDatetime, Field

EARLIEST, LATEST = date(2000, 1, 1), date(2199, 12, 31)

Day = Annotated[date, Field(ge=EARLIEST, le=LATEST, description="a date between 2000-01-01 and 2199-12-31")]
Instant = Annotated[AwareDatetime, Field(ge=datetime(2000, 1, 1, tzinfo=UTC), le=datetime(2199, 12, 31, tzinfo=UTC),
                                         description="an instant with its UTC offset, between 2000 and 2199")]
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]
