"""Terms: R3-terms, R3-renewal, R3-notice, R13-reversibility."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.contract.calendar import PARIS, add_months, paris_midnight
from orchestrator.contract.terms import (
    TERM_MONTHS,
    check_term,
    current_term,
    non_renewal_effective,
    notice_deadline,
    reversibility_effective,
    term_boundary,
    term_end,
)
from orchestrator.core.errors import ContractRefusal, InvalidRequest


def paris(y: int, m: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, s, tzinfo=PARIS)


@pytest.mark.parametrize("months", TERM_MONTHS)
def test_R3_terms_allowed_lengths(months: int) -> None:
    """R3-terms: allowed lengths."""
    assert check_term(months) == months


@pytest.mark.parametrize("months", [0, 2, 4, 18, 36, -1, True])
def test_R3_terms_other_lengths_are_refused(months: int) -> None:
    """R3-terms: other lengths are refused."""
    with pytest.raises(ContractRefusal) as refused:
        check_term(months)
    assert refused.value.rule == "R3-terms"
    with pytest.raises(ContractRefusal):
        term_end(date(2026, 1, 15), months, paris(2026, 2, 1))


def test_R3_renewal_yearly_term_renews_tacitly() -> None:
    """R3-renewal: yearly term renews tacitly."""
    start = date(2026, 1, 15)
    assert term_end(start, 12, paris(2026, 6, 1)) == date(2027, 1, 15)
    assert term_end(start, 12, paris(2027, 1, 14, 23, 59)) == date(2027, 1, 15)
    assert term_end(start, 12, paris(2027, 1, 15)) == date(2028, 1, 15)  # renewed for the same length
    # evaluated in Paris: 14 January 23:30 UTC is already 15 January in Paris
    assert term_end(start, 12, datetime(2027, 1, 14, 23, 30, tzinfo=UTC)) == date(2028, 1, 15)
    assert term_end(start, 12, paris(2025, 12, 1)) == date(2027, 1, 15)  # before the start: the first term
    assert current_term(start, 12, paris(2031, 3, 1)) == (date(2031, 1, 15), date(2032, 1, 15))


def test_R3_renewal_month_ends_are_clamped_from_the_start_date() -> None:
    """R3-renewal: month ends are clamped from the start date."""
    start = date(2026, 1, 31)
    assert [term_boundary(start, 1, k) for k in range(1, 5)] == [
        date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30), date(2026, 5, 31)]
    assert term_end(start, 1, paris(2026, 3, 1)) == date(2026, 3, 31)
    assert term_end(date(2026, 11, 30), 3, paris(2027, 3, 1)) == date(2027, 5, 30)
    assert term_end(date(2024, 2, 29), 12, paris(2025, 3, 1)) == date(2026, 2, 28)
    assert term_end(date(2026, 8, 31), 6, paris(2026, 9, 1)) == date(2027, 2, 28)


def test_R3_renewal_start_is_a_date() -> None:
    """R3-renewal: start is a date."""
    with pytest.raises(InvalidRequest):
        term_end(paris(2026, 1, 15), 12, paris(2026, 2, 1))


def test_R3_notice_two_months_before_the_end_of_term() -> None:
    """R3-notice: A yearly term ending 15 January 2027 (its last day is the 14th): the notice must arrive by
    14 November 2026 (midnight that ends it included)."""
    start = date(2026, 1, 15)
    assert notice_deadline(date(2027, 1, 15)) == paris(2026, 11, 15)
    assert non_renewal_effective(start, 12, paris(2026, 3, 1)) == date(2027, 1, 15)
    assert non_renewal_effective(start, 12, paris(2026, 11, 14, 23, 59)) == date(2027, 1, 15)
    assert non_renewal_effective(start, 12, paris(2026, 11, 15)) == date(2027, 1, 15)  # exactly two months
    assert non_renewal_effective(start, 12, paris(2026, 11, 15, 0, 0, 1)) == date(2028, 1, 15)
    assert non_renewal_effective(start, 12, datetime(2026, 11, 14, 23, 30, tzinfo=UTC)) == date(2028, 1, 15)


def test_R3_notice_short_terms_skip_to_the_first_term_two_months_away() -> None:
    """R3-notice: short terms skip to the first term two months away."""
    start = date(2026, 1, 31)
    # monthly terms end 28 Feb, 31 Mar, 30 Apr: the first one at least two months after 10 Feb
    assert non_renewal_effective(start, 1, paris(2026, 2, 10)) == date(2026, 4, 30)
    assert non_renewal_effective(start, 1, paris(2026, 2, 28)) == date(2026, 4, 30)  # clamped deadline 28 Feb
    assert non_renewal_effective(start, 1, paris(2026, 2, 28, 9)) == date(2026, 5, 31)
    # quarterly from 1 Jan: terms end 1 Apr, 1 Jul
    assert non_renewal_effective(date(2026, 1, 1), 3, paris(2026, 1, 31)) == date(2026, 4, 1)
    assert non_renewal_effective(date(2026, 1, 1), 3, paris(2026, 2, 2)) == date(2026, 7, 1)
    # two-year term
    assert non_renewal_effective(date(2026, 3, 1), 24, paris(2028, 1, 2)) == date(2030, 3, 1)


def test_R13_reversibility_two_months_notice() -> None:
    """R13-reversibility: two months notice."""
    assert reversibility_effective(paris(2026, 12, 31, 10)) == paris(2027, 2, 28, 10)
    moved = reversibility_effective(paris(2026, 8, 25, 10))
    assert moved == paris(2026, 10, 25, 10) and moved.utcoffset() == timedelta(hours=1)  # winter time again


@settings(max_examples=150, deadline=None)
@given(start=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
       months=st.sampled_from(TERM_MONTHS),
       received=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)))
def test_R3_renewal_and_R3_notice_property(start: date, months: int, received: datetime) -> None:
    """R3-renewal, R3-notice: R3-renewal: the current term contains today; R3-notice: the effective end is a term
    boundary, in time for the notice, and the earliest such boundary not before the current term's end."""
    today = received.astimezone(PARIS).date()
    first, end = current_term(start, months, received)
    assert end == term_end(start, months, received)
    assert today < end
    assert first <= today or first == start
    effective = non_renewal_effective(start, months, received)
    assert effective >= end
    assert received <= paris_midnight(add_months(effective, -2))
    assert (effective - end).days < 31 * (months + 3)
    if effective > end:
        k = next(k for k in range(1, 1000) if term_boundary(start, months, k) == effective)
        previous = term_boundary(start, months, k - 1)
        assert received > paris_midnight(add_months(previous, -2))
