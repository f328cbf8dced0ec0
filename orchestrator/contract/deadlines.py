"""The contract's deadlines, counted with the conventions of ``calendar`` (all times Europe/Paris).

R6.2-notice, R8.7-default, R10-nonpayment, R5.4-fix-delay, R8.6-billing. Every function is pure:
"now" is a parameter, never read from a clock.
"""

from __future__ import annotations

from datetime import datetime

from orchestrator.contract.calendar import BusinessCalendar, Reading, add_days, add_months_at, to_paris, to_utc
from orchestrator.core.errors import ContractRefusal

REINSTALL_NOTICE_JOURS_OUVRES = 3  # R6.2-notice
ERASURE_NOTICE_DAYS = 5  # R8.7-default
NONPAYMENT_NOTICE_DAYS = 15  # R10-nonpayment
FIX_DELAY_HEURES_OUVREES = 48  # R5.4-fix-delay
GUARANTEE_SILENCE_JOURS_OUVRES = 5  # R8.6-billing
BILLING_CHANGE_NOTICE_MONTHS = 1  # R8.6-billing


def reinstall_not_before(notice_sent_at: datetime, cal: BusinessCalendar) -> datetime:
    """R6.2-notice: a hacked VPS is not reinstalled before three jours ouvrés after the email
    announcing it (same Paris wall-clock time on the 3rd jour ouvré), unless the client agreed
    in writing."""
    return cal.add_jours_ouvres(notice_sent_at, REINSTALL_NOTICE_JOURS_OUVRES)


def check_reinstall(notice_sent_at: datetime, now: datetime, cal: BusinessCalendar, *,
                    client_agreed_in_writing: bool = False) -> None:
    """R6.2-notice: refuse a reinstall of a hacked VPS before its deadline, unless the client's
    written agreement is recorded."""
    not_before = reinstall_not_before(notice_sent_at, cal)
    if not client_agreed_in_writing and to_utc(now) < to_utc(not_before):
        raise ContractRefusal(
            "R6.2-notice",
            f"the reinstall may not run before {not_before.isoformat()} (three jours ouvrés after the "
            f"notice of {to_paris(notice_sent_at).isoformat()}) without the client's written agreement",
        )


def erasure_not_before(notice_sent_at: datetime) -> datetime:
    """R8.7-default: after an interruption for non-payment, the server's data may be erased five
    days (calendar days, same Paris wall-clock time) after the formal notice sent by email."""
    return add_days(notice_sent_at, ERASURE_NOTICE_DAYS)


def check_erasure(notice_sent_at: datetime, now: datetime) -> None:
    """R8.7-default: refuse to erase a defaulting client's data before five days after the formal
    notice."""
    not_before = erasure_not_before(notice_sent_at)
    if to_utc(now) < to_utc(not_before):
        raise ContractRefusal(
            "R8.7-default",
            f"data may not be erased before {not_before.isoformat()} (five days after the formal notice "
            f"of {to_paris(notice_sent_at).isoformat()})",
        )


def termination_for_nonpayment_at(notice_sent_at: datetime) -> datetime:
    """R10-nonpayment: the contract ends by right 15 days (calendar days, same Paris wall-clock
    time) after a formal notice to pay that had no effect."""
    return add_days(notice_sent_at, NONPAYMENT_NOTICE_DAYS)


def fix_deadline(opened_at: datetime, cal: BusinessCalendar, reading: Reading = "around_the_clock") -> datetime:
    """R5.4-fix-delay: the provider has 48 heures ouvrées from the incident to find a solution
    (default reading: around the clock on jours ouvrés; "support_hours": R4-support-hours)."""
    return cal.add_heures_ouvrees(opened_at, FIX_DELAY_HEURES_OUVREES, reading)


def guarantee_refusal_at(asked_at: datetime, cal: BusinessCalendar) -> datetime:
    """R8.6-billing: silence on a request for a financial guarantee counts as refusal once more
    than five jours ouvrés have passed since the request; this is the end of the fifth jour ouvré
    count (same Paris wall-clock time): the client's silence is a refusal strictly after it."""
    return cal.add_jours_ouvres(asked_at, GUARANTEE_SILENCE_JOURS_OUVRES)


def guarantee_refused(asked_at: datetime, now: datetime, cal: BusinessCalendar, *, answered: bool = False) -> bool:
    """R8.6-billing: whether the client's silence on a guarantee request now counts as a refusal
    (which allows the provider to terminate)."""
    return not answered and to_utc(now) > to_utc(guarantee_refusal_at(asked_at, cal))


def billing_change_effective(notice_at: datetime) -> datetime:
    """R8.6-billing: a change of billing method or period takes effect one month (calendar month,
    same Paris wall-clock time, clamped to the month's end) after its notice."""
    return add_months_at(notice_at, BILLING_CHANGE_NOTICE_MONTHS)
