"""Maintenance windows: R5.4-duration, R5.4-frequency, R5.4-hours, R5.4-notice."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.contract.calendar import PARIS
from orchestrator.contract.maintenance import (
    check_duration,
    check_frequency,
    check_hours,
    check_window,
    hour_of_week,
    least_harmful_hour_from_traffic,
    least_harmful_hours,
    needs_prior_notice,
    next_start_at_hour_of_week,
)
from orchestrator.core.errors import ContractRefusal, InvalidRequest

T0 = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)  # a Tuesday, 04:00 in Paris


def refused(rule: str) -> AbstractContextManager[pytest.ExceptionInfo[ContractRefusal]]:
    return pytest.raises(ContractRefusal, match=f"^{rule}:")


# --- R5.4-duration ------------------------------------------------------------------------------

def test_R5_4_duration_at_most_one_hour() -> None:
    """R5.4-duration: at most one hour."""
    check_duration(60)
    check_duration(1)
    with refused("R5.4-duration"):
        check_duration(61)
    for bad in (0, -5, 1.5, True):
        with pytest.raises(InvalidRequest):
            check_duration(bad)  # type: ignore[arg-type]


# --- R5.4-frequency -----------------------------------------------------------------------------

def test_R5_4_frequency_strictly_more_than_seven_days_apart() -> None:
    """R5.4-frequency: strictly more than seven days apart."""
    check_frequency(T0, [])
    check_frequency(T0, [T0 + timedelta(days=7, minutes=1), T0 - timedelta(days=7, minutes=1)])
    with refused("R5.4-frequency"):
        check_frequency(T0, [T0 + timedelta(days=7)])  # exactly 7 days: not "less than once a week"
    with refused("R5.4-frequency"):
        check_frequency(T0, [T0 - timedelta(days=7)])
    with refused("R5.4-frequency"):
        check_frequency(T0, [T0 - timedelta(days=30), T0 + timedelta(days=3), T0 + timedelta(days=30)])


def test_R5_4_frequency_days_follow_the_paris_clock_across_dst() -> None:
    """R5.4-frequency: days follow the Paris clock across DST."""
    start = datetime(2026, 3, 22, 3, 0, tzinfo=PARIS)
    with refused("R5.4-frequency"):  # 7 days on the Paris clock, only 167 hours
        check_frequency(start, [datetime(2026, 3, 29, 3, 0, tzinfo=PARIS)])
    check_frequency(start, [datetime(2026, 3, 29, 3, 1, tzinfo=PARIS)])


@settings(max_examples=100, deadline=None)
@given(a=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)),
       gap=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=20)))
def test_R5_4_frequency_property_symmetric(a: datetime, gap: timedelta) -> None:
    """R5.4-frequency: the refusal does not depend on which of two maintenances is checked."""
    b = a + gap

    def ok(x: datetime, y: datetime) -> bool:
        try:
            check_frequency(x, [y])
        except ContractRefusal:
            return False
        return True

    assert ok(a, b) == ok(b, a)
    if gap > timedelta(days=7, hours=1):
        assert ok(a, b)
    if gap <= timedelta(days=7) - timedelta(hours=1):
        assert not ok(a, b)


# --- R5.4-hours ---------------------------------------------------------------------------------

def test_R5_4_hours_winter_ranking() -> None:
    """R5.4-hours: 14 January 2026: 04:00 UTC is 05:00 in Paris, 23:00 in New York, 20:00 in Los Angeles."""
    ranking = least_harmful_hours(day=date(2026, 1, 14))
    assert sorted(s.hour_utc for s in ranking) == list(range(24))
    best = ranking[0]
    assert (best.hour_utc, best.overlap_minutes, best.per_zone_minutes) == (4, 60, (0, 0, 60))
    assert [s.hour_utc for s in ranking[:3]] == [4, 5, 6]  # Paris asleep, only Los Angeles awake
    assert {s.hour_utc for s in ranking if s.overlap_minutes == 180} == set(range(16, 22))
    assert ranking[-1].overlap_minutes == 180


def test_R5_4_hours_summer_ranking() -> None:
    """R5.4-hours: summer ranking."""
    ranking = least_harmful_hours(day=date(2026, 7, 15))
    assert [s.hour_utc for s in ranking[:3]] == [3, 4, 5]


def test_R5_4_hours_between_the_american_and_european_dst_changes() -> None:
    """R5.4-hours: 15 March 2026: New York and Los Angeles are on summer time, Paris not yet: 06:00 UTC is
    07:00 in Paris, 02:00 in New York, 23:00 in Los Angeles, night everywhere."""
    best = least_harmful_hours(day=date(2026, 3, 15))[0]
    assert (best.hour_utc, best.overlap_minutes) == (6, 0)
    # the same holds between 25 October (Europe) and 1 November 2026 (USA)
    assert least_harmful_hours(day=date(2026, 10, 28))[0].overlap_minutes == 0


def test_R5_4_hours_on_the_dst_day_and_with_other_zones() -> None:
    """R5.4-hours: on the DST day and with other zones."""
    assert least_harmful_hours(day=date(2026, 3, 29))[0].hour_utc == 3
    only_paris = least_harmful_hours(("Europe/Paris",), day=date(2026, 1, 14))
    assert [s.hour_utc for s in only_paris if s.overlap_minutes == 0] == [0, 1, 2, 3, 4, 5, 6, 22, 23]
    with pytest.raises(InvalidRequest):
        least_harmful_hours(("Mars/Olympus_Mons",), day=date(2026, 1, 14))
    with pytest.raises(InvalidRequest):
        least_harmful_hours((), day=date(2026, 1, 14))


def test_R5_4_hours_least_measured_traffic() -> None:
    """R5.4-hours: least measured traffic."""
    traffic = {h: 1000 + h for h in range(168)}
    traffic[75] = 10
    assert least_harmful_hour_from_traffic(traffic) == 75
    traffic[20] = 10
    assert least_harmful_hour_from_traffic(traffic) == 20  # ties: the earliest hour of the week
    assert least_harmful_hour_from_traffic({100: 5, 3: 7}) == 100  # only measured hours count
    for bad in ({}, {168: 1}, {-1: 1}, {3: -1}):
        with pytest.raises(InvalidRequest):
            least_harmful_hour_from_traffic(bad)


def test_R5_4_hours_hour_of_week() -> None:
    """R5.4-hours: hour of week."""
    assert hour_of_week(datetime(2026, 1, 5, 0, 30, tzinfo=UTC)) == 0  # a Monday
    assert hour_of_week(datetime(2026, 1, 11, 23, 59, tzinfo=UTC)) == 167
    assert hour_of_week(datetime(2026, 1, 12, 0, 30, tzinfo=PARIS)) == 167  # Sunday 23:30 UTC
    after = datetime(2026, 1, 14, 10, 15, tzinfo=UTC)  # Wednesday
    assert next_start_at_hour_of_week(3, after) == datetime(2026, 1, 19, 3, tzinfo=UTC)
    assert next_start_at_hour_of_week(58, after) == datetime(2026, 1, 14, 10, tzinfo=UTC) + timedelta(days=7)
    assert next_start_at_hour_of_week(59, after) == datetime(2026, 1, 14, 11, tzinfo=UTC)
    assert next_start_at_hour_of_week(58, datetime(2026, 1, 14, 10, tzinfo=UTC)) == datetime(2026, 1, 14, 10,
                                                                                             tzinfo=UTC)


# --- check_window -------------------------------------------------------------------------------

def test_R5_4_duration_frequency_hours_check_window() -> None:
    """R5.4-duration, R5.4-frequency, R5.4-hours: check_window names the first rule broken."""
    check_window(T0, 60, [T0 - timedelta(days=8)], allowed_hours_utc={3})
    with refused("R5.4-duration"):
        check_window(T0, 90, [T0 - timedelta(days=1)])  # the first rule broken is named
    with refused("R5.4-frequency"):
        check_window(T0, 30, [T0 - timedelta(days=1)])
    with refused("R5.4-hours"):
        check_window(T0, 30, [], allowed_hours_utc={4, 5})
    with refused("R5.4-hours"):  # 03:30 + 60 min runs into 04:00 UTC
        check_hours(T0 + timedelta(minutes=30), 60, {3})
    check_hours(T0 + timedelta(minutes=30), 60, {3, 4})
    check_hours(T0 + timedelta(minutes=30), 30, {3})


# --- R5.4-notice --------------------------------------------------------------------------------

def test_R5_4_notice_more_than_one_hour_outside_normal_maintenance() -> None:
    """R5.4-notice: more than one hour outside normal maintenance."""
    assert needs_prior_notice(61, is_maintenance=False)
    assert needs_prior_notice(24 * 60, is_maintenance=False)
    assert not needs_prior_notice(60, is_maintenance=False)
    assert not needs_prior_notice(45, is_maintenance=True)
    with refused("R5.4-duration"):  # a 90-minute "maintenance" is not normal maintenance
        needs_prior_notice(90, is_maintenance=True)
    with pytest.raises(InvalidRequest):
        needs_prior_notice(-1, is_maintenance=False)
