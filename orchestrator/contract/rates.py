"""Dated rates the contract refers to: VAT (R8.3-ht) and the French legal interest rate (R8.6-billing,
R8.7-default). Data, not code: add a row when a new rate is published (Journal officiel).

Rates are percentages as published ("2,62 %" is ``Decimal("2.62")``). A table is a tuple of
(effective_from, percent) rows, in date order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

from orchestrator.contract.calendar import add_months
from orchestrator.core.errors import InvalidRequest

DatedRates = Sequence[tuple[date, Decimal]]

# R8.3-ht: French standard VAT rate (CGI art. 278).
VAT_STANDARD_FR: tuple[tuple[date, Decimal], ...] = (
    (date(1995, 8, 1), Decimal("20.6")),
    (date(2000, 4, 1), Decimal("19.6")),
    (date(2014, 1, 1), Decimal("20.0")),
)

# R8.6-billing, R8.7-default: "taux de l'intérêt légal", fixed for each half-year by an arrêté
# (Code monétaire et financier L313-2, D313-1-A). The column used is "tous les autres cas": the
# creditor here is the provider, a company, not a natural person acting outside any trade.
LEGAL_RATE_HALF_YEAR_MONTHS = 6
LEGAL_INTEREST_RATES_FR: tuple[tuple[date, Decimal], ...] = (
    (date(2020, 1, 1), Decimal("0.87")),
    (date(2020, 7, 1), Decimal("0.84")),
    (date(2021, 1, 1), Decimal("0.79")),
    (date(2021, 7, 1), Decimal("0.76")),
    (date(2022, 1, 1), Decimal("0.76")),
    (date(2022, 7, 1), Decimal("0.77")),
    (date(2023, 1, 1), Decimal("2.06")),
    (date(2023, 7, 1), Decimal("4.22")),
    (date(2024, 1, 1), Decimal("5.07")),
    (date(2024, 7, 1), Decimal("4.92")),
    (date(2025, 1, 1), Decimal("3.71")),
    (date(2025, 7, 1), Decimal("2.76")),
    (date(2026, 1, 1), Decimal("2.62")),  # arrêté du 15 décembre 2025, JORF 26 décembre 2025
)


def rate_in_force(table: DatedRates, on: date, valid_for_months: int | None = None) -> Decimal:
    """R8.3-ht, R8.6-billing, R8.7-default: the percentage in force on ``on`` (a new rate applies
    from the day it takes effect). With ``valid_for_months`` (6 for the half-yearly legal rate), a
    row covers only that many months, so a date past the last published period is refused rather
    than given a stale rate."""
    if isinstance(on, datetime):
        raise InvalidRequest("rates are looked up by date, not by instant")
    found: tuple[date, Decimal] | None = None
    for effective_from, percent in table:
        if found is not None and effective_from <= found[0]:
            raise InvalidRequest("a rate table must be in strictly increasing date order")
        if effective_from <= on:
            found = (effective_from, percent)
    if found is None:
        raise InvalidRequest(f"no rate in force on {on.isoformat()} in the table")
    if valid_for_months is not None and on >= add_months(found[0], valid_for_months):
        raise InvalidRequest(f"no rate published yet for {on.isoformat()} (the last one starts "
                             f"{found[0].isoformat()}): add it to the table")
    return found[1]
