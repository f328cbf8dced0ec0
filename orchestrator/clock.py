"""The orchestrator's clock.  ``VPSCTL_NOW`` (an ISO 8601 instant) starts it at a chosen time and
lets it run on from there, so tests and demos can stand on any date the contract cares about."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

_offset: timedelta | None = None


def _compute_offset() -> timedelta:
    start = os.environ.get("VPSCTL_NOW", "").strip()
    if not start:
        return timedelta(0)
    chosen = datetime.fromisoformat(start)
    if chosen.tzinfo is None:
        raise ValueError("VPSCTL_NOW must carry a UTC offset, e.g. 2026-05-13T10:00:00+02:00")
    return chosen - datetime.now(UTC)


def utcnow() -> datetime:
    """Aware UTC now, shifted by VPSCTL_NOW when set."""
    global _offset
    if _offset is None:
        _offset = _compute_offset()
    return datetime.now(UTC) + _offset


def reset() -> None:
    """Forget the offset (tests that change VPSCTL_NOW)."""
    global _offset
    _offset = None


def travel_to(instant: datetime) -> None:
    """Move the clock to ``instant`` and let it run on from there (tests and demos only: the
    in-process worker and outbox see the same clock)."""
    global _offset
    if instant.tzinfo is None:
        raise ValueError("travel_to needs an aware datetime")
    _offset = instant - datetime.now(UTC)


def advance(delta: timedelta) -> None:
    travel_to(utcnow() + delta)
