"""Maintenance interruptions: how long, how often, at what time, and when to warn the client.

R5.4-duration, R5.4-frequency, R5.4-hours, R5.4-notice. Pure functions: every instant is a
parameter (aware datetimes); nothing reads a clock.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestrator.contract.calendar import add_days, to_utc
from orchestrator.core.errors import ContractRefusal, InvalidRequest

MAX_MAINTENANCE_MINUTES = 60  # R5.4-duration: at most one hour
MIN_DAYS_BETWEEN_MAINTENANCES = 7  # R5.4-frequency: less than once a week, start to start
NOTICE_ABOVE_MINUTES = 60  # R5.4-notice: more than one hour
DEFAULT_ZONES: tuple[str, ...] = ("Europe/Paris", "America/New_York", "America/Los_Angeles")
DAYTIME_START = time(8)  # R5.4-hours: local daytime 08:00-23:00
DAYTIME_END = time(23)
HOURS_PER_WEEK = 168


def check_duration(minutes: int) -> None:
    """R5.4-duration: a maintenance interruption lasts at most one hour (60 minutes)."""
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes <= 0:
        raise InvalidRequest(f"a maintenance duration is a whole number of minutes > 0, not {minutes!r}")
    if minutes > MAX_MAINTENANCE_MINUTES:
        raise ContractRefusal(
            "R5.4-duration", f"a maintenance interruption lasts at most {MAX_MAINTENANCE_MINUTES} minutes, "
            f"not {minutes}")


def check_frequency(starts_at: datetime, other_starts: Iterable[datetime]) -> None:
    """R5.4-frequency: maintenance of a VPS happens less than once a week: every other maintenance
    start of each VPS affected (``other_starts``, not including this one) must be strictly more
    than 7 days away from ``starts_at``, before or after. Days follow the contract's convention
    (same Paris wall-clock time 7 calendar days on), so across a DST change the limit is 167 or
    169 hours."""
    start = to_utc(starts_at)
    earliest_after = to_utc(add_days(starts_at, MIN_DAYS_BETWEEN_MAINTENANCES))
    latest_before = to_utc(add_days(starts_at, -MIN_DAYS_BETWEEN_MAINTENANCES))
    for other in sorted(to_utc(o) for o in other_starts):
        if latest_before <= other <= earliest_after:
            raise ContractRefusal(
                "R5.4-frequency",
                f"another maintenance starts at {other.isoformat()}, within {MIN_DAYS_BETWEEN_MAINTENANCES} days "
                f"of {start.isoformat()}: maintenance happens less than once a week",
            )


@dataclass(frozen=True)
class HourScore:
    """R5.4-hours: one UTC hour of a day and how much of it falls in local daytime."""

    hour_utc: int
    overlap_minutes: int  # summed over the zones
    per_zone_minutes: tuple[int, ...]  # in the zones' order


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidRequest(f"unknown time zone {name!r}") from exc


def least_harmful_hours(zones: Sequence[str] = DEFAULT_ZONES, *, day: date,
                        daytime_start: time = DAYTIME_START, daytime_end: time = DAYTIME_END) -> list[HourScore]:
    """R5.4-hours: the 24 UTC hours of ``day``, least harmful first: ranked by the minutes of the
    hour that fall in local daytime (08:00-23:00 by default) summed over ``zones`` (Europe and the
    Americas by default); ties go to the hour whose overlap is smallest in the zones taken in the
    order given (the first zone's daytime is avoided first), then to the earlier hour. Each minute
    is placed on each zone's clock of that date, so DST changes are taken into account."""
    if not zones:
        raise InvalidRequest("least_harmful_hours needs at least one time zone")
    tzs = [_zone(z) for z in zones]
    midnight = datetime.combine(day, time(0), tzinfo=UTC)
    scores = []
    for hour in range(24):
        per_zone = []
        for tz in tzs:
            minutes = 0
            for m in range(60):
                local = (midnight + timedelta(hours=hour, minutes=m)).astimezone(tz).time()
                minutes += daytime_start <= local < daytime_end
            per_zone.append(minutes)
        scores.append(HourScore(hour, sum(per_zone), tuple(per_zone)))
    return sorted(scores, key=lambda s: (s.overlap_minutes, s.per_zone_minutes, s.hour_utc))


def hour_of_week(t: datetime) -> int:
    """R5.4-hours: the UTC hour of the week of ``t``, 0 = Monday 00:00-01:00 UTC … 167 = Sunday
    23:00-24:00 UTC (the keys of ``least_harmful_hour_from_traffic``)."""
    u = to_utc(t)
    return u.weekday() * 24 + u.hour


def least_harmful_hour_from_traffic(hourly_bytes: Mapping[int, int]) -> int:
    """R5.4-hours (better reading): the hour of the week (see ``hour_of_week``) with the least
    measured traffic on the VPS or host concerned; only measured hours are candidates; ties go to
    the earliest hour of the week."""
    if not hourly_bytes:
        raise InvalidRequest("no traffic measured: use least_harmful_hours instead")
    for hour, volume in hourly_bytes.items():
        if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour < HOURS_PER_WEEK:
            raise InvalidRequest(f"an hour of the week is 0..167, not {hour!r}")
        if isinstance(volume, bool) or not isinstance(volume, int) or volume < 0:
            raise InvalidRequest(f"traffic for hour {hour} must be a whole number of bytes >= 0, not {volume!r}")
    return min(hourly_bytes, key=lambda h: (hourly_bytes[h], h))


def next_start_at_hour_of_week(hour: int, after: datetime) -> datetime:
    """R5.4-hours: the first whole UTC hour at or after ``after`` that is hour ``hour`` of the week."""
    if isinstance(hour, bool) or not 0 <= hour < HOURS_PER_WEEK:
        raise InvalidRequest(f"an hour of the week is 0..167, not {hour!r}")
    u = to_utc(after)
    top = u.replace(minute=0, second=0, microsecond=0)
    if top < u:
        top += timedelta(hours=1)
    return top + timedelta(hours=(hour - hour_of_week(top)) % HOURS_PER_WEEK)


def check_hours(starts_at: datetime, duration_minutes: int, allowed_hours_utc: Collection[int]) -> None:
    """R5.4-hours: refuse a maintenance window that touches a UTC hour of the day outside
    ``allowed_hours_utc`` (e.g. the first few hours of ``least_harmful_hours``)."""
    if isinstance(duration_minutes, bool) or not isinstance(duration_minutes, int) or duration_minutes <= 0:
        raise InvalidRequest(f"a maintenance duration is a whole number of minutes > 0, not {duration_minutes!r}")
    start = to_utc(starts_at)
    end = start + timedelta(minutes=duration_minutes)
    t = start
    while t < end:
        if t.hour not in allowed_hours_utc:
            raise ContractRefusal(
                "R5.4-hours",
                f"the window {start.isoformat()} + {duration_minutes} min runs in {t.hour:02d}:00 UTC, not one "
                f"of the least harmful hours ({', '.join(f'{h:02d}' for h in sorted(allowed_hours_utc))} UTC)",
            )
        t = t.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def check_window(starts_at: datetime, duration_minutes: int, other_starts: Iterable[datetime],
                 allowed_hours_utc: Collection[int] | None = None) -> None:
    """R5.4-duration, R5.4-frequency, R5.4-hours: refuse a maintenance window that is too long,
    too close to another maintenance of an affected VPS or (when ``allowed_hours_utc`` is given)
    at a harmful hour; the first rule broken, in that order, is the one named."""
    check_duration(duration_minutes)
    check_frequency(starts_at, other_starts)
    if allowed_hours_utc is not None:
        check_hours(starts_at, duration_minutes, allowed_hours_utc)


def needs_prior_notice(duration_minutes: int, is_maintenance: bool) -> bool:
    """R5.4-notice: an interruption of more than one hour that is not normal maintenance must be
    announced to the client by email beforehand. Normal maintenance never lasts more than an hour
    (R5.4-duration): asking about a longer "maintenance" is refused, so that the caller treats it
    as an interruption that is not normal maintenance (which then needs the notice)."""
    if isinstance(duration_minutes, bool) or not isinstance(duration_minutes, int) or duration_minutes < 0:
        raise InvalidRequest(f"an interruption's duration is a whole number of minutes >= 0, not {duration_minutes!r}")
    if is_maintenance:
        if duration_minutes > MAX_MAINTENANCE_MINUTES:
            raise ContractRefusal(
                "R5.4-duration",
                f"a {duration_minutes}-minute interruption is not normal maintenance (at most "
                f"{MAX_MAINTENANCE_MINUTES} minutes): announce it beforehand as an interruption (R5.4-notice)",
            )
        return False
    return duration_minutes > NOTICE_ABOVE_MINUTES
