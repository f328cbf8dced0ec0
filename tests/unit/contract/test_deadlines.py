"""Deadlines: R6.2-notice, R8.7-default, R10-nonpayment, R5.4-fix-delay, R8.6-billing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.contract.calendar import PARIS, BusinessCalendar, add_days
from orchestrator.contract.deadlines import (
    billing_change_effective,
    check_erasure,
    check_reinstall,
    erasure_not_before,
    fix_deadline,
    guarantee_refusal_at,
    guarantee_refused,
    reinstall_not_before,
    termination_for_nonpayment_at,
)
from orchestrator.core.errors import ContractRefusal

METRO = BusinessCalendar()
ALSACE = BusinessCalendar("Alsace-Moselle")


def paris(y: int, m: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, s, tzinfo=PARIS)


def test_R6_2_notice_rules_example() -> None:
    """R6.2-notice: RULES.md: notice Wednesday 13 May 2026 10:00 -> not before Tuesday 19 May 2026 10:00."""
    assert reinstall_not_before(paris(2026, 5, 13, 10), METRO) == paris(2026, 5, 19, 10)
    # the same notice stored in UTC
    assert reinstall_not_before(datetime(2026, 5, 13, 8, tzinfo=UTC), METRO) == paris(2026, 5, 19, 10)


def test_R6_2_notice_reinstall_refused_before_the_deadline_without_written_agreement() -> None:
    """R6.2-notice: reinstall refused before the deadline without written agreement."""
    sent = paris(2026, 5, 13, 10)
    with pytest.raises(ContractRefusal) as refused:
        check_reinstall(sent, paris(2026, 5, 19, 9, 59), METRO)
    assert refused.value.rule == "R6.2-notice"
    assert "2026-05-19T10:00:00+02:00" in refused.value.detail
    check_reinstall(sent, paris(2026, 5, 19, 10), METRO)
    check_reinstall(sent, paris(2026, 5, 14, 10), METRO, client_agreed_in_writing=True)


def test_R6_2_notice_over_whit_monday_and_easter_in_alsace() -> None:
    """R6.2-notice: over Whit Monday and Easter in Alsace-Moselle."""
    assert reinstall_not_before(paris(2026, 5, 22, 16), METRO) == paris(2026, 5, 28, 16)
    assert reinstall_not_before(paris(2026, 4, 1, 9), METRO) == paris(2026, 4, 7, 9)  # Easter Monday
    assert reinstall_not_before(paris(2026, 4, 1, 9), ALSACE) == paris(2026, 4, 8, 9)  # + Good Friday


def test_R8_7_default_erasure_five_plain_days_after_the_notice() -> None:
    """R8.7-default: erasure five plain days after the notice."""
    assert erasure_not_before(paris(2026, 5, 13, 10)) == paris(2026, 5, 18, 10)  # holidays do not matter
    across_dst = erasure_not_before(paris(2026, 3, 27, 18))
    assert across_dst == paris(2026, 4, 1, 18) and across_dst.utcoffset() == timedelta(hours=2)


def test_R8_7_default_erasure_refused_before_five_days() -> None:
    """R8.7-default: erasure refused before five days."""
    sent = paris(2026, 3, 27, 18)
    with pytest.raises(ContractRefusal) as refused:
        check_erasure(sent, datetime(2026, 4, 1, 15, 59, tzinfo=UTC))  # 17:59 in Paris
    assert refused.value.rule == "R8.7-default"
    check_erasure(sent, datetime(2026, 4, 1, 16, 0, tzinfo=UTC))


def test_R10_nonpayment_fifteen_days_after_the_formal_notice() -> None:
    """R10-nonpayment: fifteen days after the formal notice."""
    end = termination_for_nonpayment_at(paris(2026, 10, 16, 12))
    assert end == paris(2026, 10, 31, 12) and end.utcoffset() == timedelta(hours=1)  # back to winter time
    assert termination_for_nonpayment_at(paris(2026, 12, 20, 9)) == paris(2027, 1, 4, 9)


def test_R5_4_fix_delay_deadline_in_both_readings() -> None:
    """R5.4-fix-delay: deadline in both readings."""
    opened = paris(2026, 1, 9, 10)  # a Friday
    assert fix_deadline(opened, METRO) == paris(2026, 1, 13, 10)
    assert fix_deadline(opened, METRO, "support_hours") == paris(2026, 1, 19, 10)
    assert fix_deadline(paris(2026, 5, 13, 10), METRO) == paris(2026, 5, 18, 10)  # over Ascension


def test_R8_6_billing_guarantee_silence_is_a_refusal_after_five_jours_ouvres() -> None:
    """R8.6-billing: guarantee silence is a refusal after five jours ouvrés."""
    asked = paris(2026, 12, 23, 11)  # Wednesday; Christmas is Friday 25
    assert guarantee_refusal_at(asked, METRO) == paris(2026, 12, 31, 11)
    assert not guarantee_refused(asked, paris(2026, 12, 31, 11), METRO)  # "plus de cinq": not yet
    assert guarantee_refused(asked, paris(2026, 12, 31, 11, 0, 1), METRO)
    assert not guarantee_refused(asked, paris(2027, 1, 15), METRO, answered=True)


def test_R8_6_billing_guarantee_alsace_moselle_26_december() -> None:
    """R8.6-billing: guarantee Alsace-Moselle 26 December."""
    asked = paris(2025, 12, 22, 9)  # Monday
    assert guarantee_refusal_at(asked, METRO) == paris(2025, 12, 30, 9)
    assert guarantee_refusal_at(asked, ALSACE) == paris(2025, 12, 31, 9)


def test_R8_6_billing_change_of_billing_method_takes_one_month() -> None:
    """R8.6-billing: change of billing method takes one month."""
    assert billing_change_effective(paris(2026, 1, 31, 10)) == paris(2026, 2, 28, 10)
    assert billing_change_effective(paris(2026, 3, 15, 10)) == paris(2026, 4, 15, 10)
    assert billing_change_effective(paris(2026, 3, 15, 10)).utcoffset() == timedelta(hours=2)


instants = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31),
                        timezones=st.just(UTC))


@settings(max_examples=100, deadline=None)
@given(t=instants, cal=st.sampled_from([METRO, ALSACE]))
def test_R6_2_notice_and_R8_6_billing_property_deadlines_fall_on_jours_ouvres(
        t: datetime, cal: BusinessCalendar) -> None:
    """R6.2-notice, R8.6-billing: deadlines in jours ouvrés fall on a jour ouvré and never before
    the same count of calendar days; plain-day deadlines (R8.7-default, R10-nonpayment) come
    strictly in order."""
    reinstall = reinstall_not_before(t, cal)
    refusal = guarantee_refusal_at(t, cal)
    assert cal.is_jour_ouvre(reinstall) and cal.is_jour_ouvre(refusal)
    assert reinstall.astimezone(UTC) >= add_days(t, 3).astimezone(UTC)
    assert refusal.astimezone(UTC) >= add_days(t, 5).astimezone(UTC)
    assert t < erasure_not_before(t) < termination_for_nonpayment_at(t)
