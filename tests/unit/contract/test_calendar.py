"""Jours ouvrés, heures ouvrées and DST arithmetic (R5.4-fix-delay, R4-support-hours, R6.2-notice)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.contract.calendar import (
    PARIS,
    BusinessCalendar,
    Reading,
    add_days,
    add_months,
    add_months_at,
    at_paris,
    to_paris,
)
from orchestrator.core.errors import InvalidRequest

METRO = BusinessCalendar()
ALSACE = BusinessCalendar("Alsace-Moselle")


def paris(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=PARIS)


def elapsed(a: datetime, b: datetime) -> timedelta:
    """Real time from a to b (Python subtracts two datetimes of the same zone by wall clock)."""
    return b.astimezone(UTC) - a.astimezone(UTC)


def utc(t: datetime) -> datetime:
    return t.astimezone(UTC)


# --- jours ouvrés ------------------------------------------------------------------------------

@pytest.mark.parametrize("day", [
    date(2026, 5, 14),  # Ascension (Thursday)
    date(2026, 5, 25),  # Whit Monday
    date(2028, 7, 14),  # Bastille Day, a Friday
    date(2025, 8, 15),  # Assumption, a Friday
    date(2029, 8, 15),  # Assumption, a Wednesday
    date(2027, 11, 1),  # All Saints, a Monday
    date(2026, 11, 11),  # Armistice, a Wednesday
    date(2026, 12, 25),  # Christmas, a Friday
    date(2027, 1, 1),  # New Year's Day, a Friday
    date(2026, 4, 6),  # Easter Monday
    date(2026, 5, 1), date(2026, 5, 8),
    date(2026, 5, 16), date(2026, 5, 17),  # a weekend
])
def test_R5_4_fix_delay_holidays_and_weekends_are_not_jours_ouvres(day: date) -> None:
    """R5.4-fix-delay: holidays and weekends are not jours ouvrés."""
    assert not METRO.is_jour_ouvre(day)
    assert not ALSACE.is_jour_ouvre(day)


@pytest.mark.parametrize("day", [
    date(2026, 12, 31),  # New Year's Eve is a working day
    date(2026, 12, 24),  # so is Christmas Eve
    date(2026, 5, 15),  # the Friday after Ascension
    date(2026, 4, 3),  # Good Friday: a jour ouvré outside Alsace-Moselle
    date(2025, 12, 26),  # 26 December: idem
])
def test_R5_4_fix_delay_working_days_in_metropolitan_france(day: date) -> None:
    """R5.4-fix-delay: working days in metropolitan France."""
    assert METRO.is_jour_ouvre(day)
    assert METRO.holiday_name(day) is None


@pytest.mark.parametrize("subdivision", ["Alsace-Moselle", "57", "6AE", "Moselle", "Alsace"])
def test_R5_4_fix_delay_alsace_moselle_adds_good_friday_and_26_december(subdivision: str) -> None:
    """R5.4-fix-delay: Alsace-Moselle adds Good Friday and 26 December."""
    cal = BusinessCalendar(subdivision)
    assert not cal.is_jour_ouvre(date(2026, 4, 3))  # Good Friday 2026
    assert not cal.is_jour_ouvre(date(2025, 12, 26))  # a Friday
    assert cal.holiday_name(date(2025, 12, 26)) is not None
    assert cal.is_jour_ouvre(date(2026, 4, 2))


def test_R5_4_fix_delay_unknown_subdivision_is_invalid() -> None:
    """R5.4-fix-delay: unknown subdivision is invalid."""
    with pytest.raises(InvalidRequest, match="subdivision"):
        BusinessCalendar("Atlantis")


def test_R6_2_notice_a_datetime_is_read_on_the_paris_clock() -> None:
    # Sunday 23:30 UTC is already Monday 00:30 in Paris (winter time)
    """R6.2-notice: a datetime is read on the Paris clock."""
    assert METRO.is_jour_ouvre(datetime(2026, 1, 11, 23, 30, tzinfo=UTC))
    assert not METRO.is_jour_ouvre(date(2026, 1, 11))


# --- N jours ouvrés after T ---------------------------------------------------------------------

def test_R6_2_notice_rules_example_three_jours_ouvres_over_ascension() -> None:
    """R6.2-notice: RULES.md: Wed 13 May 2026 10:00 + 3 jours ouvrés -> Tue 19 May 2026 10:00."""
    assert METRO.add_jours_ouvres(paris(2026, 5, 13, 10), 3) == paris(2026, 5, 19, 10)


@pytest.mark.parametrize(("start", "n", "metro", "alsace"), [
    (paris(2026, 5, 22, 15), 1, paris(2026, 5, 26, 15), paris(2026, 5, 26, 15)),  # Whit Monday
    (paris(2028, 7, 13, 9), 1, paris(2028, 7, 17, 9), paris(2028, 7, 17, 9)),  # 14 July 2028, a Friday
    (paris(2026, 12, 24, 8), 1, paris(2026, 12, 28, 8), paris(2026, 12, 28, 8)),  # Christmas
    (paris(2026, 12, 31, 8), 1, paris(2027, 1, 4, 8), paris(2027, 1, 4, 8)),  # New Year's Day, a Friday
    (paris(2027, 10, 29, 8), 1, paris(2027, 11, 2, 8), paris(2027, 11, 2, 8)),  # All Saints, a Monday
    (paris(2026, 11, 10, 8), 1, paris(2026, 11, 12, 8), paris(2026, 11, 12, 8)),  # Armistice
    (paris(2025, 8, 14, 8), 1, paris(2025, 8, 18, 8), paris(2025, 8, 18, 8)),  # Assumption, a Friday
    (paris(2026, 4, 2, 16), 1, paris(2026, 4, 3, 16), paris(2026, 4, 7, 16)),  # Good Friday + Easter Monday
    (paris(2025, 12, 24, 12), 1, paris(2025, 12, 26, 12), paris(2025, 12, 29, 12)),  # 26 December
])
def test_R6_2_notice_jours_ouvres_skip_holidays(start: datetime, n: int, metro: datetime, alsace: datetime) -> None:
    """R6.2-notice: jours ouvrés skip holidays."""
    assert METRO.add_jours_ouvres(start, n) == metro
    assert ALSACE.add_jours_ouvres(start, n) == alsace


def test_R6_2_notice_jours_ouvres_keep_the_wall_clock_across_dst() -> None:
    """R6.2-notice: jours ouvrés keep the wall clock across DST."""
    spring = METRO.add_jours_ouvres(paris(2026, 3, 27, 10), 1)  # clocks go forward Sunday 29 March
    assert spring == paris(2026, 3, 30, 10) and spring.utcoffset() == timedelta(hours=2)
    assert elapsed(paris(2026, 3, 27, 10), spring) == timedelta(hours=71)
    autumn = METRO.add_jours_ouvres(paris(2026, 10, 23, 10), 1)  # clocks go back Sunday 25 October
    assert autumn == paris(2026, 10, 26, 10) and autumn.utcoffset() == timedelta(hours=1)
    assert elapsed(paris(2026, 10, 23, 10), autumn) == timedelta(hours=73)


def test_R6_2_notice_zero_negative_and_naive() -> None:
    """R6.2-notice: zero negative and naive."""
    t = datetime(2026, 5, 13, 8, tzinfo=UTC)
    assert METRO.add_jours_ouvres(t, 0) == t
    with pytest.raises(InvalidRequest):
        METRO.add_jours_ouvres(t, -1)
    with pytest.raises(InvalidRequest, match="naive"):
        METRO.add_jours_ouvres(datetime(2026, 5, 13, 10), 3)


# --- plain days and months, DST ---------------------------------------------------------------

def test_R8_7_default_plain_days_keep_the_wall_clock_across_dst() -> None:
    """R8.7-default: plain days keep the wall clock across DST."""
    assert add_days(paris(2026, 3, 22, 10), 7) == paris(2026, 3, 29, 10)
    assert elapsed(paris(2026, 3, 22, 10), add_days(paris(2026, 3, 22, 10), 7)) == timedelta(hours=167)
    assert elapsed(paris(2026, 10, 18, 10), add_days(paris(2026, 10, 18, 10), 7)) == timedelta(hours=169)


def test_R8_7_default_a_missing_wall_clock_time_is_shifted_forward() -> None:
    """R8.7-default: 29 March 2026 02:30 does not exist in Paris: fold=0 gives 03:30 CEST (01:30 UTC)."""
    r = add_days(paris(2026, 3, 28, 2, 30), 1)
    assert r.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert (r.hour, r.minute, r.utcoffset()) == (3, 30, timedelta(hours=2))


def test_R8_7_default_a_repeated_wall_clock_time_is_its_first_occurrence() -> None:
    """R8.7-default: 25 October 2026 02:30 happens twice in Paris: fold=0 is the first one, in summer time."""
    r = add_days(paris(2026, 10, 24, 2, 30), 1)
    assert r.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert r.utcoffset() == timedelta(hours=2)
    second = datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=PARIS)  # 01:30 UTC
    assert add_days(second, 1) == paris(2026, 10, 26, 2, 30)


@pytest.mark.parametrize(("d", "n", "expected"), [
    (date(2026, 1, 31), 1, date(2026, 2, 28)),
    (date(2028, 1, 31), 1, date(2028, 2, 29)),
    (date(2026, 1, 31), 2, date(2026, 3, 31)),  # from the original date, not chained
    (date(2026, 5, 31), -2, date(2026, 3, 31)),
    (date(2026, 4, 30), -2, date(2026, 2, 28)),
    (date(2026, 12, 31), 2, date(2027, 2, 28)),
    (date(2026, 1, 15), 24, date(2028, 1, 15)),
])
def test_R3_renewal_calendar_months_are_clamped(d: date, n: int, expected: date) -> None:
    """R3-renewal: calendar months are clamped."""
    assert add_months(d, n) == expected
    assert METRO.add_months(d, n) == expected


def test_R3_renewal_add_months_refuses_instants() -> None:
    """R3-renewal: add months refuses instants."""
    with pytest.raises(InvalidRequest):
        add_months(paris(2026, 1, 31, 10), 1)
    assert add_months_at(paris(2026, 1, 31, 10), 1) == paris(2026, 2, 28, 10)
    assert add_months_at(paris(2026, 3, 15, 10), 1).utcoffset() == timedelta(hours=2)


# --- heures ouvrées ---------------------------------------------------------------------------

def test_R5_4_fix_delay_rules_example_friday_plus_48_hours_is_tuesday() -> None:
    """R5.4-fix-delay: RULES.md: Friday 10:00 + 48 h ouvrées -> Tuesday 10:00."""
    assert METRO.add_heures_ouvrees(paris(2026, 1, 9, 10), 48) == paris(2026, 1, 13, 10)


@pytest.mark.parametrize(("start", "expected"), [
    (paris(2026, 5, 13, 10), paris(2026, 5, 18, 10)),  # Ascension (Thursday 14 May) is skipped
    (paris(2026, 5, 22, 10), paris(2026, 5, 27, 10)),  # Whit Monday: one more day
    (paris(2028, 7, 13, 10), paris(2028, 7, 18, 10)),  # Friday 14 July 2028
    (paris(2026, 12, 24, 10), paris(2026, 12, 29, 10)),  # Christmas, a Friday
])
def test_R5_4_fix_delay_one_more_day_per_holiday(start: datetime, expected: datetime) -> None:
    """R5.4-fix-delay: one more day per holiday."""
    assert METRO.add_heures_ouvrees(start, 48) == expected


def test_R5_4_fix_delay_dst_weekends_do_not_move_the_wall_clock() -> None:
    """R5.4-fix-delay: DST weekends do not move the wall clock."""
    spring = METRO.add_heures_ouvrees(paris(2026, 3, 27, 10), 48)
    assert spring == paris(2026, 3, 31, 10) and elapsed(paris(2026, 3, 27, 10), spring) == timedelta(hours=95)
    autumn = METRO.add_heures_ouvrees(paris(2026, 10, 23, 10), 48)
    assert autumn == paris(2026, 10, 27, 10) and elapsed(paris(2026, 10, 23, 10), autumn) == timedelta(hours=97)


def test_R5_4_fix_delay_counting_starts_on_the_next_jour_ouvre_and_may_end_at_midnight() -> None:
    """R5.4-fix-delay: counting starts on the next jour ouvré and may end at midnight."""
    assert METRO.add_heures_ouvrees(paris(2026, 5, 16, 12), 1) == paris(2026, 5, 18, 1)  # from a Saturday
    assert METRO.add_heures_ouvrees(paris(2026, 1, 9, 10), 14) == paris(2026, 1, 10)  # Friday 24:00
    assert METRO.add_heures_ouvrees(paris(2026, 1, 10, 10), 0) == paris(2026, 1, 10, 10)
    assert METRO.add_heures_ouvrees(paris(2026, 1, 9, 10), 0.5) == paris(2026, 1, 9, 10, 30)


def test_R5_4_fix_delay_alsace_moselle_reading_skips_good_friday() -> None:
    """R5.4-fix-delay: Alsace-Moselle reading skips Good Friday."""
    assert METRO.add_heures_ouvrees(paris(2026, 4, 2, 10), 24) == paris(2026, 4, 3, 10)
    assert ALSACE.add_heures_ouvrees(paris(2026, 4, 2, 10), 24) == paris(2026, 4, 7, 10)  # + Easter Monday


def test_R4_support_hours_count_only_9_to_17_on_jours_ouvres() -> None:
    # Friday 10-17 (7 h), Monday to Friday (40 h), next Monday 09-10 (1 h)
    """R4-support-hours: count only 9 to 17 on jours ouvrés."""
    assert METRO.add_heures_ouvrees(paris(2026, 1, 9, 10), 48, "support_hours") == paris(2026, 1, 19, 10)
    assert METRO.add_heures_ouvrees(paris(2026, 1, 12, 7), 1, "support_hours") == paris(2026, 1, 12, 10)
    assert METRO.add_heures_ouvrees(paris(2026, 1, 12, 18), 1, "support_hours") == paris(2026, 1, 13, 10)
    assert METRO.add_heures_ouvrees(paris(2026, 1, 12, 9), 8, "support_hours") == paris(2026, 1, 12, 17)
    # over the spring DST weekend and Easter Monday (6 April 2026)
    assert METRO.add_heures_ouvrees(paris(2026, 3, 27, 10), 48, "support_hours") == paris(2026, 4, 7, 10)


def test_R5_4_fix_delay_bad_arguments() -> None:
    """R5.4-fix-delay: bad arguments."""
    t = paris(2026, 1, 9, 10)
    for hours in (-1, float("nan"), float("inf")):
        with pytest.raises(InvalidRequest):
            METRO.add_heures_ouvrees(t, hours)
    with pytest.raises(InvalidRequest, match="reading"):
        METRO.add_heures_ouvrees(t, 1, "office_hours")  # type: ignore[arg-type]


def test_R5_4_fix_delay_heures_ouvrees_between() -> None:
    """R5.4-fix-delay: heures ouvrées between."""
    assert METRO.heures_ouvrees_between(paris(2026, 1, 9, 10), paris(2026, 1, 13, 10)) == timedelta(hours=48)
    assert METRO.heures_ouvrees_between(paris(2026, 1, 13, 10), paris(2026, 1, 9, 10)) == timedelta(0)
    assert METRO.heures_ouvrees_between(paris(2026, 5, 13), paris(2026, 5, 16), "support_hours") == timedelta(hours=16)


# --- properties ---------------------------------------------------------------------------------

instants = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31),
                        timezones=st.just(UTC))
calendars = st.sampled_from([METRO, ALSACE])
readings = st.sampled_from(["around_the_clock", "support_hours"])


@settings(max_examples=150, deadline=None)
@given(t=instants, n=st.integers(1, 30), cal=calendars)
def test_R6_2_notice_property_jours_ouvres_deadline(t: datetime, n: int, cal: BusinessCalendar) -> None:
    """R6.2-notice, R8.6-billing: the Nth jour ouvré is a jour ouvré (never a weekend or a holiday),
    at the same Paris wall-clock time, never earlier than N calendar days, with exactly N jours
    ouvrés after T's date up to it."""
    r = cal.add_jours_ouvres(t, n)
    p = to_paris(t)
    assert cal.is_jour_ouvre(r)
    assert r.weekday() < 5 and cal.holiday_name(r.date()) is None
    assert utc(r) >= utc(add_days(t, n))
    assert r == at_paris(r.date(), p.time())
    assert (r.hour, r.minute, r.second) == (p.hour, p.minute, p.second)
    days = [p.date() + timedelta(days=i) for i in range(1, (r.date() - p.date()).days + 1)]
    assert sum(cal.is_jour_ouvre(d) for d in days) == n


@settings(max_examples=150, deadline=None)
@given(t=instants, a=st.integers(0, 200 * 60), b=st.integers(0, 200 * 60), cal=calendars, reading=readings)
def test_R5_4_fix_delay_property_heures_ouvrees_monotonic_and_additive(
        t: datetime, a: int, b: int, cal: BusinessCalendar, reading: Reading) -> None:
    """R5.4-fix-delay, R4-support-hours: more hours never give an earlier instant; a + b hours is
    a hours then b hours; the time counted between T and the result is exactly the hours asked."""
    lo, hi = sorted((a, b))
    r_lo = cal.add_heures_ouvrees(t, lo / 60, reading)
    r_hi = cal.add_heures_ouvrees(t, hi / 60, reading)
    assert t <= utc(r_lo) <= utc(r_hi)
    assert cal.add_heures_ouvrees(r_lo, (hi - lo) / 60, reading) == r_hi
    assert cal.heures_ouvrees_between(t, r_hi, reading) == timedelta(minutes=hi)


@settings(max_examples=150, deadline=None)
@given(t=instants, minutes=st.integers(1, 300 * 60), cal=calendars, reading=readings)
def test_R5_4_fix_delay_property_deadline_lies_in_counted_time(
        t: datetime, minutes: int, cal: BusinessCalendar, reading: Reading) -> None:
    """R5.4-fix-delay, R4-support-hours: a deadline in heures ouvrées ends inside counted time (on
    a jour ouvré, or at the midnight / 17:00 closing that ends one) and is never earlier than the
    same count of calendar hours."""
    r = cal.add_heures_ouvrees(t, minutes / 60, reading)
    assert r - t >= timedelta(minutes=minutes)
    if reading == "support_hours":
        assert cal.is_jour_ouvre(r) and time(9) < r.time() <= time(17)
    else:
        assert cal.is_jour_ouvre(r) if r.time() != time(0) else cal.is_jour_ouvre(r.date() - timedelta(days=1))


@settings(max_examples=100, deadline=None)
@given(t=instants, n=st.integers(1, 20), cal=calendars)
def test_R5_4_fix_delay_property_n_days_of_heures_ouvrees_take_at_least_n_days(
        t: datetime, n: int, cal: BusinessCalendar) -> None:
    """R5.4-fix-delay: 24 x N heures ouvrées never end before N calendar days."""
    assert utc(cal.add_heures_ouvrees(t, 24 * n)) >= utc(add_days(t, n))
