"""Termination rights from incidents: R5.4-fix-delay, R5.4-repeat, R5.3-force-majeure, R12-suspend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.contract.calendar import PARIS, BusinessCalendar
from orchestrator.contract.incidents import Incident, suspended_fix_deadline, termination_right, termination_rights
from orchestrator.core.errors import InvalidRequest

CAL = BusinessCalendar()


def paris(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=PARIS)


def fault(opened: datetime, resolved: datetime | None = None, key: str = "disk-io", fm: bool = False) -> Incident:
    return Incident(opened, resolved, key, force_majeure=fm)


FRIDAY = paris(2026, 1, 9, 10)  # + 48 heures ouvrées = Tuesday 13 January 10:00


# --- R5.4-fix-delay -----------------------------------------------------------------------------

def test_R5_4_fix_delay_unresolved_past_its_deadline_gives_the_right() -> None:
    """R5.4-fix-delay: unresolved past its deadline gives the right."""
    incidents = [fault(FRIDAY)]
    assert termination_right(incidents, paris(2026, 1, 13, 10), CAL) is None  # the deadline itself
    right = termination_right(incidents, paris(2026, 1, 13, 10, 1), CAL)
    assert right is not None
    assert right.rule == "R5.4-fix-delay"
    assert right.since == paris(2026, 1, 13, 10)
    assert right.incidents == (incidents[0],)
    assert "still unresolved" in right.reason


def test_R5_4_fix_delay_fixed_in_time_gives_nothing() -> None:
    """R5.4-fix-delay: fixed in time gives nothing."""
    assert termination_right([fault(FRIDAY, paris(2026, 1, 13, 9))], paris(2026, 2, 1), CAL) is None
    assert termination_right([fault(FRIDAY, paris(2026, 1, 13, 10))], paris(2026, 2, 1), CAL) is None


def test_R5_4_fix_delay_fixed_late_still_gave_the_right() -> None:
    """R5.4-fix-delay: "aucune solution ... dans ces délais": a late fix does not undo the right."""
    right = termination_right([fault(FRIDAY, paris(2026, 1, 13, 12))], paris(2026, 1, 20), CAL)
    assert right is not None and right.rule == "R5.4-fix-delay" and "resolved late" in right.reason
    # resolved after "now": still unresolved as of now
    right = termination_right([fault(FRIDAY, paris(2026, 1, 20))], paris(2026, 1, 14), CAL)
    assert right is not None and "still unresolved" in right.reason


def test_R5_4_fix_delay_over_ascension_and_in_support_hours() -> None:
    """R5.4-fix-delay: over Ascension and in support hours."""
    opened = paris(2026, 5, 13, 10)
    assert termination_right([fault(opened)], paris(2026, 5, 18, 9), CAL) is None
    assert termination_right([fault(opened)], paris(2026, 5, 18, 11), CAL) is not None
    assert termination_right([fault(FRIDAY)], paris(2026, 1, 14), CAL, "support_hours") is None
    right = termination_right([fault(FRIDAY)], paris(2026, 1, 19, 10, 1), CAL, "support_hours")
    assert right is not None and right.since == paris(2026, 1, 19, 10)


def test_R5_3_force_majeure_never_counts() -> None:
    """R5.3-force-majeure: never counts."""
    storm = fault(FRIDAY, None, "power-grid", fm=True)
    assert termination_right([storm], paris(2026, 3, 1), CAL) is None
    repeated = [fault(paris(2026, 1, d, 10), paris(2026, 1, d, 11), fm=True) for d in (5, 6, 7, 8, 9)]
    assert termination_right(repeated, paris(2026, 3, 1), CAL) is None


def test_R12_suspend_force_majeure_stops_the_fix_clock() -> None:
    """R12-suspend: force majeure stops the fix clock."""
    provider = fault(FRIDAY)
    storm = fault(paris(2026, 1, 12), paris(2026, 1, 13), "storm", fm=True)  # all of Monday
    assert suspended_fix_deadline(FRIDAY, CAL, suspensions=[(paris(2026, 1, 12), paris(2026, 1, 13))]) == \
        paris(2026, 1, 14, 10)
    assert termination_right([provider, storm], paris(2026, 1, 13, 12), CAL) is None
    right = termination_right([provider, storm], paris(2026, 1, 14, 10, 1), CAL)
    assert right is not None and right.since == paris(2026, 1, 14, 10)


def test_R12_suspend_ongoing_force_majeure_stops_the_clock_for_good() -> None:
    """R12-suspend: ongoing force majeure stops the clock for good."""
    provider = fault(FRIDAY)
    strike = fault(paris(2026, 1, 12, 8), None, "strike", fm=True)
    assert termination_right([provider, strike], paris(2026, 6, 1), CAL) is None
    # 14 h on Friday + 8 h on Monday counted; the rest is suspended
    assert suspended_fix_deadline(FRIDAY, CAL, suspensions=[(paris(2026, 1, 12, 8), None)]) is None
    # a force majeure that ended before the incident changes nothing
    old = fault(paris(2026, 1, 5), paris(2026, 1, 6), "storm", fm=True)
    right = termination_right([provider, old], paris(2026, 1, 13, 11), CAL)
    assert right is not None and right.since == paris(2026, 1, 13, 10)


def test_R12_suspend_overlapping_force_majeure_periods_merge() -> None:
    """R12-suspend: overlapping force majeure periods merge."""
    provider = fault(FRIDAY)
    storms = [fault(paris(2026, 1, 12), paris(2026, 1, 12, 18), "storm", fm=True),
              fault(paris(2026, 1, 12, 12), paris(2026, 1, 13), "grid", fm=True)]
    right = termination_right([provider, *storms], paris(2026, 2, 1), CAL)
    assert right is not None and right.since == paris(2026, 1, 14, 10)


# --- R5.4-repeat --------------------------------------------------------------------------------

def fixed_in_time(opened: datetime, key: str = "disk-io") -> Incident:
    return fault(opened, opened + timedelta(hours=1), key)


def test_R5_4_repeat_four_times_within_three_months() -> None:
    """R5.4-repeat: four times within three months."""
    days = [paris(2026, 1, 10, 10), paris(2026, 2, 20, 10), paris(2026, 3, 15, 10), paris(2026, 4, 10, 10)]
    incidents = [fixed_in_time(d) for d in days]
    assert termination_right(incidents[:3], paris(2026, 6, 1), CAL) is None  # three times is not "more than"
    right = termination_right(incidents, paris(2026, 6, 1), CAL)
    assert right is not None
    assert right.rule == "R5.4-repeat" and right.since == paris(2026, 4, 10, 10)
    assert right.incidents == tuple(incidents)
    # the right arises with the fourth occurrence, not before
    assert termination_right(incidents, paris(2026, 4, 10, 9), CAL) is None


def test_R5_4_repeat_three_calendar_months_first_to_last_inclusive() -> None:
    """R5.4-repeat: three calendar months first to last inclusive."""
    days = [paris(2026, 1, 10, 10), paris(2026, 2, 20, 10), paris(2026, 3, 15, 10)]
    late = [fixed_in_time(d) for d in [*days, paris(2026, 4, 10, 10, 1)]]
    assert termination_right(late, paris(2026, 6, 1), CAL) is None
    clamped = [fixed_in_time(d) for d in (paris(2026, 11, 30, 10), paris(2026, 12, 15, 10), paris(2027, 1, 20, 10))]
    assert termination_right([*clamped, fixed_in_time(paris(2027, 2, 28, 10))], paris(2027, 6, 1), CAL) is not None
    assert termination_right([*clamped, fixed_in_time(paris(2027, 3, 1, 10))], paris(2027, 6, 1), CAL) is None


def test_R5_4_repeat_any_window_counts() -> None:
    """R5.4-repeat: any window counts."""
    days = [paris(2026, 1, 1, 10), paris(2026, 3, 1, 10), paris(2026, 4, 1, 10), paris(2026, 4, 15, 10),
            paris(2026, 4, 20, 10)]
    right = termination_right([fixed_in_time(d) for d in days], paris(2026, 6, 1), CAL)
    assert right is not None and right.since == paris(2026, 4, 20, 10)
    assert len(right.incidents) == 4 and right.incidents[0].opened_at == paris(2026, 3, 1, 10)


def test_R5_4_repeat_same_malfunction_only_and_not_force_majeure() -> None:
    """R5.4-repeat: same malfunction only and not force majeure."""
    days = [paris(2026, 1, 5, 10), paris(2026, 1, 12, 10), paris(2026, 1, 19, 10), paris(2026, 1, 26, 10)]
    mixed = [fixed_in_time(d, key) for d, key in zip(days, ["disk-io", "disk-io", "network", "disk-io"], strict=True)]
    assert termination_right(mixed, paris(2026, 3, 1), CAL) is None
    with_fm = [fixed_in_time(d) for d in days[:3]] + [fault(days[3], days[3] + timedelta(hours=1), fm=True)]
    assert termination_right(with_fm, paris(2026, 3, 1), CAL) is None
    future = [fixed_in_time(d) for d in days]
    assert termination_right(future, paris(2026, 1, 20), CAL) is None  # the 4th has not happened yet


def test_R5_4_fix_delay_and_repeat_all_rights_earliest_first() -> None:
    """R5.4-fix-delay, R5.4-repeat: all rights, earliest first."""
    repeat = [fixed_in_time(paris(2026, 2, d, 10), "dns") for d in (2, 3, 4, 5)]
    late = fault(FRIDAY)
    rights = termination_rights([*repeat, late], paris(2026, 3, 1), CAL)
    assert [r.rule for r in rights] == ["R5.4-fix-delay", "R5.4-repeat"]
    assert termination_right([*repeat, late], paris(2026, 3, 1), CAL) == rights[0]


def test_R5_4_fix_delay_incident_records_are_checked() -> None:
    """R5.4-fix-delay: incident records are checked."""
    with pytest.raises(InvalidRequest):
        Incident(FRIDAY, FRIDAY - timedelta(minutes=1), "disk-io")
    with pytest.raises(InvalidRequest):
        Incident(datetime(2026, 1, 9, 10), None, "disk-io")
    with pytest.raises(InvalidRequest):
        Incident(FRIDAY, None, " ")


@settings(max_examples=60, deadline=None)
@given(opened=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)),
       fix_minutes=st.integers(0, 10 * 24 * 60), wait_minutes=st.integers(0, 20 * 24 * 60))
def test_R5_4_fix_delay_property_right_iff_not_fixed_within_48_heures_ouvrees(
        opened: datetime, fix_minutes: int, wait_minutes: int) -> None:
    """R5.4-fix-delay: a single incident gives the right exactly when, at ``now``, its deadline has
    passed and it was not resolved by the deadline."""
    resolved = opened + timedelta(minutes=fix_minutes)
    now = opened + timedelta(minutes=wait_minutes)
    deadline = CAL.add_heures_ouvrees(opened, 48).astimezone(UTC)
    right = termination_right([fault(opened, resolved)], now, CAL)
    expected = now > deadline and resolved > deadline
    assert (right is not None) == expected
