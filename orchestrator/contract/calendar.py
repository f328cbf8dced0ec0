"""Jours ouvrés, heures ouvrées and calendar arithmetic in Europe/Paris (R4-support-hours, R5.4-fix-delay).

The counting conventions of RULES.md, used by every deadline of the contract:

- *N jours ouvrés after T*: the same Paris wall-clock time as T, on the Nth jour ouvré after T's
  date (a jour ouvré is Monday to Friday and not a French public holiday).
- *N days after T*: the same Paris wall-clock time, N calendar days later.
- *N months after a date*: calendar months, clamped to the month's last day (31 January + 1 month
  = 28 or 29 February); always computed from the original date, never chained.
- *N heures ouvrées after T*: only time that falls on jours ouvrés counts, midnight to midnight
  ("around_the_clock", the default reading of R5.4-fix-delay), or only Monday-Friday 09:00-17:00
  on jours ouvrés ("support_hours", R4-support-hours).

Daylight saving time: arithmetic is done on Paris wall-clock times, which are then turned back into
instants with ``fold=0`` (PEP 495) and normalised, so that

- a wall-clock time that does not exist (the spring-forward gap, e.g. 29 March 2026 02:00-03:00)
  is shifted forward by the length of the gap: 02:30 becomes 03:30 CEST (= 01:30 UTC);
- a wall-clock time that happens twice (the fall-back hour, e.g. 25 October 2026 02:00-03:00) is
  read as its first occurrence, still in summer time (02:30 CEST = 00:30 UTC).

In Paris both only happen on Sundays, never on a jour ouvré, so jours ouvrés and heures ouvrées
never meet them; plain days and months can. Every instant returned is an aware datetime in
Europe/Paris (compare it with other aware datetimes, or store it with ``.astimezone(UTC)``).
Naive datetimes are refused.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo

import holidays

from orchestrator.core.errors import InvalidRequest

PARIS = ZoneInfo("Europe/Paris")

Reading = Literal["around_the_clock", "support_hours"]
READINGS: tuple[str, ...] = get_args(Reading)

# R4-support-hours: Monday-Friday 09:00-17:00, Europe/Paris.
SUPPORT_OPENS = time(9)
SUPPORT_CLOSES = time(17)

# Alsace-Moselle adds Good Friday and 26 December. The ``holidays`` package names its parts
# "57" (Moselle, alias "Moselle") and "6AE" (Collectivité européenne d'Alsace, alias "Alsace");
# both give the same public holidays. "Alsace-Moselle" is accepted here as a name for them.
ALSACE_MOSELLE = "57"
_ALIASES = {"alsace-moselle": ALSACE_MOSELLE, "alsace moselle": ALSACE_MOSELLE}


def to_paris(t: datetime) -> datetime:
    """R4-support-hours, R6.2-notice, R8.7-default (every contract time is read in Europe/Paris):
    the instant ``t`` on the Paris clock; a naive datetime is refused."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise InvalidRequest(f"naive datetime {t.isoformat()}: contract times must be timezone-aware")
    return t.astimezone(PARIS)


def to_utc(t: datetime) -> datetime:
    """R5.4-frequency, R6.2-notice, R8.7-default: the instant ``t`` in UTC. Deadlines are compared
    in UTC: Python compares two datetimes of the same zone by wall clock, which is wrong in the
    repeated autumn hour."""
    return to_paris(t).astimezone(UTC)


def at_paris(d: date, wall: time) -> datetime:
    """R6.2-notice, R8.7-default, R10-nonpayment (same Paris wall-clock time): the instant showing
    ``wall`` on the Paris clock on ``d`` (fold=0: a time in the spring gap is shifted forward, a
    repeated autumn time is its first occurrence; see the module doc)."""
    naive = datetime.combine(d, wall.replace(tzinfo=None, fold=0))
    return naive.replace(tzinfo=PARIS).astimezone(UTC).astimezone(PARIS)


def paris_midnight(d: date) -> datetime:
    """R3-renewal, R5.4-fix-delay: the instant ``d`` begins in Paris (00:00 always exists there:
    the clocks change at 02:00/03:00)."""
    return at_paris(d, time(0))


def add_days(t: datetime, n: int) -> datetime:
    """R8.7-default, R10-nonpayment: the same Paris wall-clock time as ``t``, ``n`` calendar days
    later (so 7 days across a DST change is 167 or 169 hours, not 168)."""
    p = to_paris(t)
    return at_paris(p.date() + timedelta(days=n), p.time())


def _month_length(year: int, month: int) -> int:
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return (nxt - timedelta(days=1)).day


def add_months(d: date, n: int) -> date:
    """R3-renewal, R3-notice: ``d`` plus ``n`` calendar months (``n`` may be negative), clamped to
    the last day of the month reached (31 January + 1 = 28/29 February)."""
    if isinstance(d, datetime):
        raise InvalidRequest("add_months takes a date; use add_months_at for an instant")
    index = d.month - 1 + n
    year, month = d.year + index // 12, index % 12 + 1
    if not 1 <= year <= 9998:
        raise InvalidRequest(f"{d.isoformat()} + {n} months is out of range")
    return date(year, month, min(d.day, _month_length(year, month)))


def add_months_at(t: datetime, n: int) -> datetime:
    """R8.6-billing, R13-reversibility: the same Paris wall-clock time as ``t``, ``n`` calendar
    months later (clamped to the month's last day)."""
    p = to_paris(t)
    return at_paris(add_months(p.date(), n), p.time())


def _check_reading(reading: str) -> None:
    if reading not in READINGS:
        raise InvalidRequest(f"unknown heures ouvrées reading {reading!r} (one of {', '.join(READINGS)})")


def _as_timedelta(hours: float) -> timedelta:
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not math.isfinite(hours) or hours < 0:
        raise InvalidRequest(f"a number of hours must be a finite number >= 0, not {hours!r}")
    return timedelta(hours=hours)


class BusinessCalendar:
    """R5.4-fix-delay, R4-support-hours, R6.2-notice, R8.6-billing: jours ouvrés of France.

    ``subdivision`` is a ``holidays`` subdivision of France (None: metropolitan France, the
    default). For Alsace-Moselle (adds Good Friday and 26 December) pass "57", "6AE", "Moselle",
    "Alsace" or "Alsace-Moselle"."""

    def __init__(self, subdivision: str | None = None) -> None:
        code = _ALIASES.get(subdivision.strip().casefold(), subdivision.strip()) if subdivision else None
        try:
            self._holidays = holidays.country_holidays("FR", subdiv=code)
        except NotImplementedError as exc:
            raise InvalidRequest(f"unknown subdivision of France {subdivision!r}") from exc
        self.subdivision = code

    def __repr__(self) -> str:
        return f"BusinessCalendar(subdivision={self.subdivision!r})"

    def holiday_name(self, d: date) -> str | None:
        """R5.4-fix-delay, R6.2-notice: the French public holiday on ``d`` (a datetime is read in
        Paris), or None."""
        day = to_paris(d).date() if isinstance(d, datetime) else d
        name = self._holidays.get(day)
        return None if name is None else str(name)

    def is_jour_ouvre(self, d: date) -> bool:
        """R5.4-fix-delay, R6.2-notice: Monday to Friday and not a public holiday (a datetime is
        read on the Paris clock)."""
        day = to_paris(d).date() if isinstance(d, datetime) else d
        return day.weekday() < 5 and day not in self._holidays

    def add_jours_ouvres(self, t: datetime, n: int) -> datetime:
        """R6.2-notice, R8.6-billing: the same Paris wall-clock time as ``t`` on the ``n``th jour
        ouvré after ``t``'s date (``t`` itself when n = 0). Wednesday 13 May 2026 10:00 + 3 ->
        Tuesday 19 May 2026 10:00 (Ascension is Thursday 14 May)."""
        if isinstance(n, bool) or n < 0:
            raise InvalidRequest(f"a number of jours ouvrés must be >= 0, not {n!r}")
        p = to_paris(t)
        if n == 0:
            return p
        day, left = p.date(), n
        while left:
            day += timedelta(days=1)
            if self.is_jour_ouvre(day):
                left -= 1
        return at_paris(day, p.time())

    def add_days(self, t: datetime, n: int) -> datetime:
        """R8.7-default, R10-nonpayment: see the module function ``add_days``."""
        return add_days(t, n)

    def add_months(self, d: date, n: int) -> date:
        """R3-renewal: see the module function ``add_months``."""
        return add_months(d, n)

    def counted_spans(self, t: datetime, reading: Reading = "around_the_clock") -> Iterator[tuple[datetime, datetime]]:
        """R5.4-fix-delay, R4-support-hours: the endless, ordered stretches of time from ``t`` on
        that count as heures ouvrées under ``reading``, as (start, end) UTC instants."""
        _check_reading(reading)
        p = to_paris(t)
        origin, day = p.astimezone(UTC), p.date()
        while True:
            if self.is_jour_ouvre(day):
                if reading == "support_hours":
                    start, end = at_paris(day, SUPPORT_OPENS), at_paris(day, SUPPORT_CLOSES)
                else:
                    start, end = paris_midnight(day), paris_midnight(day + timedelta(days=1))
                start_utc, end_utc = max(start.astimezone(UTC), origin), end.astimezone(UTC)
                if start_utc < end_utc:
                    yield start_utc, end_utc
            day += timedelta(days=1)

    def add_heures_ouvrees(self, t: datetime, hours: float, reading: Reading = "around_the_clock") -> datetime:
        """R5.4-fix-delay, R4-support-hours: the earliest instant at which ``hours`` heures ouvrées
        have elapsed since ``t``. "around_the_clock" (default): all the time of jours ouvrés
        counts, midnight to midnight (Friday 10:00 + 48 h -> Tuesday 10:00, one more day per
        holiday crossed). "support_hours": only 09:00-17:00 on jours ouvrés. A count ending
        exactly at a day's end gives the next midnight (the same instant as 24:00)."""
        left = _as_timedelta(hours)
        if not left:
            _check_reading(reading)
            return to_paris(t)
        for start, end in self.counted_spans(t, reading):
            if end - start >= left:
                return (start + left).astimezone(PARIS)
            left -= end - start
        raise AssertionError("unreachable: counted_spans never ends")  # pragma: no cover

    def heures_ouvrees_between(self, start: datetime, end: datetime,
                               reading: Reading = "around_the_clock") -> timedelta:
        """R5.4-fix-delay, R4-support-hours: how much heures ouvrées time lies between ``start``
        and ``end`` (zero when end <= start); the inverse of ``add_heures_ouvrees``."""
        stop = to_paris(end).astimezone(UTC)
        total = timedelta(0)
        for a, b in self.counted_spans(start, reading):
            if a >= stop:
                break
            total += min(b, stop) - a
        return total
