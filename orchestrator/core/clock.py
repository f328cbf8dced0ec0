"""The orchestrator's clock: the real time, unless the process was started on another instant
(the ``now`` setting, ``VPSCTL_NOW``) or a test or demo moved it; it runs on from there.  Every
part of one process (API, worker, outbox) reads the same clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_offset = timedelta(0)


def utcnow() -> datetime:
    """Aware UTC now, shifted as the clock was told."""
    return datetime.now(UTC) + _offset


def start(settings_now: datetime | None) -> None:
    """At a process's start: stand the clock on the ``now`` setting when there is one (and leave
    it alone otherwise)."""
    if settings_now is not None:
        travel_to(settings_now)


def travel_to(instant: datetime) -> None:
    """Move the clock to ``instant`` and let it run on from there."""
    global _offset
    if instant.tzinfo is None:
        raise ValueError("the clock needs an aware instant, e.g. 2026-05-13T10:00:00+02:00")
    _offset = instant - datetime.now(UTC)


def advance(delta: timedelta) -> None:
    travel_to(utcnow() + delta)


def reset() -> None:
    """Back to the real time."""
    global _offset
    _offset = timedelta(0)
