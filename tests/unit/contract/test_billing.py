"""Money: R8.1-setup-fee, R8.2-rent, R8.3-ht, R8.4-syntec, R8.5-payment-methods, R8.6-billing,
R8.7-default, R6.4-blacklist-fee. Exact Decimal results."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.contract.billing import (
    Invoice,
    Line,
    allowed_payment_methods,
    blacklist_fee,
    check_payment_method,
    invoice_totals,
    late_interest_line,
    late_payment_lines,
    late_penalty_line,
    payment_incident_fee,
    rent_schedule,
    revised_rent,
    setup_fee_line,
    to_cents,
    vat,
)
from orchestrator.contract.rates import LEGAL_INTEREST_RATES_FR, VAT_STANDARD_FR, rate_in_force
from orchestrator.core.errors import ContractRefusal, InvalidRequest


def test_R8_3_ht_cents_round_half_up() -> None:
    """R8.3-ht: cents round half up."""
    assert to_cents(D("0.005")) == D("0.01")
    assert to_cents(D("2.675")) == D("2.68")
    assert to_cents(D("1.234")) == D("1.23")
    assert str(to_cents(D("7"))) == "7.00"


def test_R8_1_setup_fee_line() -> None:
    """R8.1-setup-fee: line."""
    assert setup_fee_line(D("49")) == Line("R8.1-setup-fee", "setup fee", D("49.00"))
    with pytest.raises(InvalidRequest, match="float"):
        setup_fee_line(49.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        setup_fee_line(D("-1"))


def test_R8_2_rent_and_R8_6_billing_monthly_schedule_first_invoice_at_order() -> None:
    """R8.2-rent, R8.6-billing: monthly schedule first invoice at order."""
    invoices = rent_schedule(date(2026, 1, 20), date(2026, 1, 31), "monthly", D("29.90"), date(2026, 5, 1),
                             setup_fee=D("49"))
    assert [i.issued_on for i in invoices] == [date(2026, 1, 20), date(2026, 2, 28), date(2026, 3, 31),
                                               date(2026, 4, 30)]
    assert [i.period for i in invoices] == [
        (date(2026, 1, 31), date(2026, 2, 28)), (date(2026, 2, 28), date(2026, 3, 31)),
        (date(2026, 3, 31), date(2026, 4, 30)), (date(2026, 4, 30), date(2026, 5, 31))]
    first = invoices[0]
    assert [line.rule for line in first.lines] == ["R8.1-setup-fee", "R8.2-rent"]
    assert first.total_ht == D("78.90")
    # R8.2-rent: the last period began before the end and is invoiced in full, no pro rata
    assert invoices[-1].total_ht == D("29.90")
    assert len(rent_schedule(date(2026, 1, 20), date(2026, 1, 31), "monthly", D("29.90"), date(2026, 4, 30))) == 3


@pytest.mark.parametrize(("period", "issued", "amount"), [
    ("quarterly", [date(2025, 12, 15), date(2026, 4, 1), date(2026, 7, 1), date(2026, 10, 1)], D("89.70")),
    ("half-yearly", [date(2025, 12, 15), date(2026, 7, 1)], D("179.40")),
    ("yearly", [date(2025, 12, 15)], D("358.80")),
])
def test_R8_6_billing_periods(period: str, issued: list[date], amount: D) -> None:
    """R8.6-billing: periods."""
    invoices = rent_schedule(date(2025, 12, 15), date(2026, 1, 1), period, amount, date(2027, 1, 1))  # type: ignore[arg-type]
    assert [i.issued_on for i in invoices] == issued
    assert {i.total_ht for i in invoices} == {amount}
    assert sum((i.total_ht for i in invoices), D(0)) == D("358.80")


def test_R8_6_billing_schedule_bad_arguments() -> None:
    """R8.6-billing: schedule bad arguments."""
    with pytest.raises(InvalidRequest):
        rent_schedule(date(2026, 2, 1), date(2026, 1, 1), "monthly", D("10"), date(2027, 1, 1))
    with pytest.raises(InvalidRequest):
        rent_schedule(date(2026, 1, 1), date(2026, 1, 1), "weekly", D("10"), date(2027, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        rent_schedule(date(2026, 1, 1), date(2026, 1, 1), "monthly", D("10"), date(2026, 1, 1))


def test_R8_3_ht_vat_rate_in_force_on_the_day() -> None:
    """R8.3-ht: VAT rate in force on the day."""
    assert rate_in_force(VAT_STANDARD_FR, date(2013, 12, 31)) == D("19.6")
    assert rate_in_force(VAT_STANDARD_FR, date(2014, 1, 1)) == D("20.0")
    assert vat(D("100.00"), date(2013, 12, 31)) == D("19.60")
    assert vat(D("29.90"), date(2026, 5, 14)) == D("5.98")
    change = ((date(2014, 1, 1), D("20")), (date(2027, 1, 1), D("21")))  # a change of tax law
    assert vat(D("100.00"), date(2026, 12, 31), change) == D("20.00")
    assert vat(D("100.00"), date(2027, 1, 1), change) == D("21.00")
    with pytest.raises(InvalidRequest):
        rate_in_force(VAT_STANDARD_FR, date(1990, 1, 1))
    with pytest.raises(InvalidRequest):
        rate_in_force(tuple(reversed(change)), date(2027, 1, 1))


def test_R8_3_ht_invoice_totals_vat_only_on_taxable_lines() -> None:
    """R8.3-ht: invoice totals VAT only on taxable lines."""
    invoice = Invoice(date(2026, 2, 1), (Line("R8.2-rent", "rent", D("29.90")), payment_incident_fee(1),
                                         blacklist_fee(1)))
    assert invoice_totals(invoice) == (D("264.90"), D("45.98"), D("310.88"))


def test_R8_4_syntec_revision() -> None:
    """R8.4-syntec: revision."""
    assert revised_rent(D("100.00"), D("324.6"), D("310.1")) == D("104.68")
    assert revised_rent(D("29.90"), D("310.1"), D("310.1")) == D("29.90")
    assert revised_rent(D("1000.00"), D("300"), D("310.1")) == D("967.43")  # the index may fall
    for bad in (D("0"), D("-1"), 310):
        with pytest.raises(InvalidRequest):
            revised_rent(D("100.00"), D("324.6"), bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("country", "currency", "methods"), [
    ("FR", "EUR", ("cheque", "card", "paypal", "transfer")),
    ("fr", "usd", ("cheque", "card", "paypal", "transfer")),
    ("RE", "EUR", ("cheque", "card", "paypal", "transfer")),  # La Réunion is French territory
    ("DE", "EUR", ("transfer", "card", "paypal")),
    ("BE", "eur", ("transfer", "card", "paypal")),
    ("US", "USD", ("paypal",)),
    ("CH", "CHF", ("paypal",)),
])
def test_R8_5_payment_methods(country: str, currency: str, methods: tuple[str, ...]) -> None:
    """R8.5-payment-methods: which methods a bank country and currency allow."""
    assert allowed_payment_methods(country, currency) == methods


def test_R8_5_payment_methods_refusal_and_bad_codes() -> None:
    """R8.5-payment-methods: refusal and bad codes."""
    check_payment_method("transfer", "DE", "EUR")
    with pytest.raises(ContractRefusal) as refused:
        check_payment_method("cheque", "DE", "EUR")
    assert refused.value.rule == "R8.5-payment-methods"
    with pytest.raises(ContractRefusal):
        check_payment_method("card", "GB", "GBP")
    for country, currency in (("France", "EUR"), ("FR", "EURO"), ("F1", "EUR")):
        with pytest.raises(InvalidRequest):
            allowed_payment_methods(country, currency)


def test_R8_6_billing_and_R8_7_default_late_interest_example() -> None:
    """R8.6-billing, R8.7-default: 1 200.00 due 15 January 2026, paid 1 March 2026: 45 days at the
    legal rate of 2.62 %."""
    interest, penalty = late_payment_lines(D("1200.00"), date(2026, 1, 15), date(2026, 3, 1))
    assert interest.rule == "R8.6-billing" and interest.amount == D("5.81")  # 1200 * 1.5 * 2.62 % * 45 / 365
    assert penalty.rule == "R8.7-default" and penalty.amount == D("3.88")  # 1200 * 2.62 % * 45 / 365
    assert not interest.taxable and not penalty.taxable


def test_R8_6_billing_and_R8_7_default_each_day_at_its_half_year_rate() -> None:
    """R8.6-billing, R8.7-default: 1 000.00 due 1 December 2025, paid 31 January 2026: 30 days at
    2.76 %, 31 days at 2.62 %."""
    interest, penalty = late_payment_lines(D("1000.00"), date(2025, 12, 1), date(2026, 1, 31))
    assert penalty.amount == D("4.49")  # (1000 * 0.0276 * 30 + 1000 * 0.0262 * 31) / 365 = 4.4937
    assert interest.amount == D("6.74")  # * 1.5 = 6.7405


def test_R8_7_default_penalty_only_beyond_fifteen_days() -> None:
    """R8.7-default: penalty only beyond fifteen days."""
    due = date(2026, 3, 1)
    assert late_penalty_line(D("1000.00"), due, due + timedelta(days=15)).amount == D("0.00")
    assert late_interest_line(D("1000.00"), due, due + timedelta(days=15)).amount == D("1.62")
    assert late_penalty_line(D("1000.00"), due, due + timedelta(days=16)).amount == D("1.15")
    assert late_interest_line(D("1000.00"), due, due).amount == D("0.00")
    assert late_interest_line(D("1000.00"), due, due - timedelta(days=3)).amount == D("0.00")  # paid early


def test_R8_6_billing_unpublished_legal_rate_is_refused() -> None:
    """R8.6-billing: unpublished legal rate is refused."""
    with pytest.raises(InvalidRequest, match="no rate published"):
        late_interest_line(D("1000.00"), date(2026, 6, 1), date(2026, 7, 15))
    assert rate_in_force(LEGAL_INTEREST_RATES_FR, date(2026, 6, 30), 6) == D("2.62")


def test_R8_7_default_payment_incidents_and_R6_4_blacklist_fee() -> None:
    """R8.7-default, R6.4-blacklist-fee: 35 EUR per payment incident, 200 EUR HT per complaint."""
    assert payment_incident_fee(2) == Line("R8.7-default", payment_incident_fee(2).label, D("70.00"), taxable=False)
    assert payment_incident_fee(0).amount == D("0.00")
    fee = blacklist_fee(3)
    assert fee.rule == "R6.4-blacklist-fee" and fee.amount == D("600.00") and fee.taxable
    for bad in (-1, True, 1.0):
        with pytest.raises(InvalidRequest):
            blacklist_fee(bad)  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(cents=st.integers(0, 10**8), due=st.dates(min_value=date(2020, 1, 1), max_value=date(2026, 1, 1)),
       d1=st.integers(0, 180), d2=st.integers(0, 180))
def test_R8_6_billing_and_R8_7_default_property_interest(cents: int, due: date, d1: int, d2: int) -> None:
    """R8.6-billing, R8.7-default: interest never decreases with the delay, 8.7 is zero up to 15
    days and never above 8.6, every amount is in cents."""
    amount = D(cents) / 100
    short, long_ = sorted((d1, d2))
    i_short, p_short = late_payment_lines(amount, due, due + timedelta(days=short))
    i_long, p_long = late_payment_lines(amount, due, due + timedelta(days=long_))
    assert D(0) <= i_short.amount <= i_long.amount
    assert p_short.amount <= p_long.amount or short <= 15
    assert p_long.amount <= i_long.amount
    if long_ <= 15:
        assert p_long.amount == 0
    for line in (i_short, p_short, i_long, p_long):
        assert line.amount == line.amount.quantize(D("0.01"))
