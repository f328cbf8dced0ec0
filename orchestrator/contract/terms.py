"""Subscription terms: their lengths, tacit renewal, non-renewal notice and reversibility notice.

R3-terms, R3-renewal, R3-notice, R13-reversibility.

Dates: a subscription starts on a date (its first day, Europe/Paris). Its terms follow each other
from that date: term k (k = 1, 2, …) ends when the date ``add_months(start, k * months)`` begins
(00:00 Europe/Paris), which is also the first day of term k + 1. Boundaries are always computed
from the start date, never chained, so a subscription started on 31 January with 1-month terms
renews on 28 February, 31 March, 30 April, … ``term_end`` returns that boundary date; the instant
is ``calendar.paris_midnight(date)``.

R3-notice reading: "un préavis de deux (2) mois avant la date d'expiration" — a notice is in time
for a term ending at boundary E if received at the latest at the instant two calendar months
before E begins: ``paris_midnight(add_months(E, -2))`` (clamped: a term ending on 30 April needs
the notice by 28 February 00:00, i.e. on 27 February at the latest). So for a term ending
15 January 2027 (last day 14 January), the notice is in time if received on 14 November 2026 at the
latest.
"""

from __future__ import annotations

from datetime import date, datetime

from orchestrator.contract.calendar import add_months, add_months_at, paris_midnight, to_paris, to_utc
from orchestrator.core.errors import ContractRefusal, InvalidRequest

TERM_MONTHS: tuple[int, ...] = (1, 3, 6, 12, 24)  # R3-terms
NON_RENEWAL_NOTICE_MONTHS = 2  # R3-notice
REVERSIBILITY_NOTICE_MONTHS = 2  # R13-reversibility


def check_term(months: int) -> int:
    """R3-terms: a subscription's term is 1, 3, 6, 12 or 24 months (a month, a quarter, a
    half-year, a year or two years)."""
    if isinstance(months, bool) or months not in TERM_MONTHS:
        raise ContractRefusal(
            "R3-terms", f"a term is one of {', '.join(map(str, TERM_MONTHS))} months, not {months!r}")
    return months


def _start_date(start: date) -> date:
    if isinstance(start, datetime):
        raise InvalidRequest("a subscription starts on a date, not an instant")
    return start


def term_boundary(start: date, months: int, k: int) -> date:
    """R3-renewal: the date the ``k``th term ends (and term k + 1 begins); k = 0 is the start."""
    return add_months(_start_date(start), check_term(months) * k)


def term_index(start: date, months: int, now: datetime) -> int:
    """R3-renewal: which term (1, 2, …) is running on ``now``'s Paris date (1 before the start)."""
    today = to_paris(now).date()
    check_term(months)
    k = max(1, ((today.year - start.year) * 12 + today.month - start.month) // months)
    while k > 1 and term_boundary(start, months, k - 1) > today:
        k -= 1
    while term_boundary(start, months, k) <= today:
        k += 1
    return k


def term_end(start: date, months: int, now: datetime) -> date:
    """R3-renewal: the end of the term running on ``now`` (Paris date) — terms renew tacitly with
    the same length. The date returned is the first day of the next term (the term ends as it
    begins, at 00:00 Europe/Paris); before the start it is the first term's end."""
    return term_boundary(start, months, term_index(start, months, now))


def current_term(start: date, months: int, now: datetime) -> tuple[date, date]:
    """R3-renewal: (first day, end) of the term running on ``now``; end as in ``term_end``."""
    k = term_index(start, months, now)
    return term_boundary(start, months, k - 1), term_boundary(start, months, k)


def notice_deadline(term_end_date: date) -> datetime:
    """R3-notice: the latest instant a non-renewal notice may be received to stop the term ending
    on ``term_end_date``: two calendar months before that date begins."""
    return paris_midnight(add_months(term_end_date, -NON_RENEWAL_NOTICE_MONTHS))


def non_renewal_effective(start: date, months: int, received_at: datetime) -> date:
    """R3-notice: the end of term at which a non-renewal received at ``received_at`` takes effect:
    the end of the current term if received at least two months before it, else the end of the
    first later term at least two months away. The contract ends as that date begins (00:00
    Europe/Paris)."""
    received = to_utc(received_at)
    k = term_index(start, months, received_at)
    while to_utc(notice_deadline(term_boundary(start, months, k))) < received:
        k += 1
    return term_boundary(start, months, k)


def reversibility_effective(received_at: datetime) -> datetime:
    """R13-reversibility: a move to another operator takes effect two months (calendar months,
    same Paris wall-clock time) after the client's registered letter is received; no refund of
    the current contract is due."""
    return add_months_at(received_at, REVERSIBILITY_NOTICE_MONTHS)
