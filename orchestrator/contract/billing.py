"""Money the contract defines: setup fee, rent schedule, VAT, SYNTEC revision, payment methods,
late interest and penalties.

R8.1-setup-fee, R8.2-rent, R8.3-ht, R8.4-syntec, R8.5-payment-methods, R8.6-billing,
R8.7-default, R6.4-blacklist-fee. Money is ``decimal.Decimal`` euros, never float, rounded to the
cent half-up once per line. Amounts are before tax (HT); a line says whether VAT applies to it:
late interest and penalties are damages, outside the scope of VAT; fees and rent are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, get_args

from orchestrator.contract.calendar import add_months
from orchestrator.contract.rates import (
    LEGAL_INTEREST_RATES_FR,
    LEGAL_RATE_HALF_YEAR_MONTHS,
    VAT_STANDARD_FR,
    DatedRates,
    rate_in_force,
)
from orchestrator.core.errors import ContractRefusal, InvalidRequest

CENT = Decimal("0.01")
BillingPeriod = Literal["monthly", "quarterly", "half-yearly", "yearly"]
PERIOD_MONTHS: dict[str, int] = {"monthly": 1, "quarterly": 3, "half-yearly": 6, "yearly": 12}  # R8.6-billing
LATE_INTEREST_FACTOR = Decimal("1.5")  # R8.6-billing: 1.5 * the legal rate
PENALTY_AFTER_DAYS = 15  # R8.7-default: when the delay exceeds 15 days
PAYMENT_INCIDENT_FEE = Decimal("35.00")  # R8.7-default
BLACKLIST_FEE = Decimal("200.00")  # R6.4-blacklist-fee, HT
DAYS_PER_YEAR = 365

PaymentMethod = Literal["cheque", "card", "paypal", "transfer"]
PAYMENT_METHODS: tuple[str, ...] = get_args(PaymentMethod)
# R8.5-payment-methods: "le territoire national français" — metropolitan France and overseas.
FRENCH_TERRITORY = frozenset({"FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF", "NC", "PF", "WF", "TF"})


def to_cents(x: Decimal) -> Decimal:
    """R8.3-ht: ``x`` euros rounded to the cent, half up."""
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def _money(x: Decimal, what: str) -> Decimal:
    if not isinstance(x, Decimal) or not x.is_finite() or x < 0:
        raise InvalidRequest(f"{what} must be a Decimal amount >= 0 (never a float), not {x!r}")
    return x


def _count(n: int, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InvalidRequest(f"{what} must be a whole number >= 0, not {n!r}")
    return n


def _day(d: date, what: str) -> date:
    if isinstance(d, datetime) or not isinstance(d, date):
        raise InvalidRequest(f"{what} must be a date (Europe/Paris), not {d!r}")
    return d


@dataclass(frozen=True)
class Line:
    """R8.3-ht: one invoice line: the rule it comes from, what it is, euros HT (cents), whether
    VAT applies."""

    rule: str
    label: str
    amount: Decimal
    taxable: bool = True


@dataclass(frozen=True)
class Invoice:
    """R8.6-billing: an invoice issued on a date; ``period`` is the rent period [start, end)."""

    issued_on: date
    lines: tuple[Line, ...]
    period: tuple[date, date] | None = None

    @property
    def total_ht(self) -> Decimal:
        """R8.3-ht: the invoice's total before tax."""
        return sum((line.amount for line in self.lines), Decimal("0.00"))


def setup_fee_line(fee: Decimal) -> Line:
    """R8.1-setup-fee: the setup fee, invoiced when the contract is signed (payable at order)."""
    return Line("R8.1-setup-fee", "setup fee", to_cents(_money(fee, "the setup fee")))


def rent_schedule(ordered_on: date, start: date, period: BillingPeriod, rent_per_period: Decimal, until: date,
                  setup_fee: Decimal | None = None) -> list[Invoice]:
    """R8.2-rent, R8.6-billing, R8.1-setup-fee: the rent invoices of a subscription starting on
    ``start`` and ending when ``until`` begins: one invoice per billing period (1, 3, 6 or 12
    months from ``start``, clamped like every month count), issued on the period's first day, the
    first one at order (``ordered_on``, with the setup fee if any). The rent is fixed and not
    divisible: every period begun before ``until`` is invoiced in full, with no pro rata."""
    if period not in PERIOD_MONTHS:
        raise InvalidRequest(f"unknown billing period {period!r} (one of {', '.join(PERIOD_MONTHS)})")
    ordered_on, start, until = _day(ordered_on, "ordered_on"), _day(start, "start"), _day(until, "until")
    if ordered_on > start:
        raise InvalidRequest("the order comes on or before the subscription's start")
    if until <= start:
        raise InvalidRequest("a subscription ends after it starts")
    rent = to_cents(_money(rent_per_period, "the rent"))
    months = PERIOD_MONTHS[period]
    invoices: list[Invoice] = []
    k = 0
    while (begins := add_months(start, k * months)) < until:
        ends = add_months(start, (k + 1) * months)
        lines = [Line("R8.2-rent", f"{period} rent {begins.isoformat()} - {(ends - timedelta(days=1)).isoformat()}",
                      rent)]
        if k == 0 and setup_fee is not None:
            lines.insert(0, setup_fee_line(setup_fee))
        invoices.append(Invoice(ordered_on if k == 0 else begins, tuple(lines), (begins, ends)))
        k += 1
    return invoices


def vat(amount_ht: Decimal, on: date, rates: DatedRates = VAT_STANDARD_FR) -> Decimal:
    """R8.3-ht: the VAT on ``amount_ht`` at the rate in force on ``on`` (prices are before tax;
    a new rate applies from the day it takes effect), rounded to the cent."""
    return to_cents(_money(amount_ht, "the amount") * rate_in_force(rates, _day(on, "on")) / 100)


def invoice_totals(invoice: Invoice, rates: DatedRates = VAT_STANDARD_FR) -> tuple[Decimal, Decimal, Decimal]:
    """R8.3-ht: (total HT, VAT, total TTC) of ``invoice``; VAT on its taxable lines at the rate in
    force on its issue date."""
    taxable = sum((line.amount for line in invoice.lines if line.taxable), Decimal("0.00"))
    tax = vat(taxable, invoice.issued_on, rates)
    return invoice.total_ht, tax, invoice.total_ht + tax


def revised_rent(current: Decimal, latest_index: Decimal, contract_index: Decimal) -> Decimal:
    """R8.4-syntec: at a term, revised = current * latest published SYNTEC index / contract index,
    rounded to the cent."""
    _money(current, "the current rent")
    for name, index in (("latest index", latest_index), ("contract index", contract_index)):
        if not isinstance(index, Decimal) or not index.is_finite() or index <= 0:
            raise InvalidRequest(f"the {name} must be a Decimal > 0, not {index!r}")
    return to_cents(current * latest_index / contract_index)


def allowed_payment_methods(bank_country: str, currency: str) -> tuple[str, ...]:
    """R8.5-payment-methods: a client whose bank is in France (ISO country code, overseas
    included) pays by cheque, card, PayPal or transfer; outside France, in euros by transfer,
    card or PayPal, and in any other currency by PayPal only."""
    country, cur = bank_country.strip().upper(), currency.strip().upper()
    if len(country) != 2 or not country.isalpha():
        raise InvalidRequest(f"a bank country is an ISO 3166 alpha-2 code, not {bank_country!r}")
    if len(cur) != 3 or not cur.isalpha():
        raise InvalidRequest(f"a currency is an ISO 4217 code, not {currency!r}")
    if country in FRENCH_TERRITORY:
        return ("cheque", "card", "paypal", "transfer")
    if cur == "EUR":
        return ("transfer", "card", "paypal")
    return ("paypal",)


def check_payment_method(method: str, bank_country: str, currency: str) -> None:
    """R8.5-payment-methods: refuse a payment method the contract does not allow this client."""
    allowed = allowed_payment_methods(bank_country, currency)
    if method not in allowed:
        raise ContractRefusal(
            "R8.5-payment-methods",
            f"{method!r} is not accepted from a bank in {bank_country.upper()} paying in {currency.upper()} "
            f"(accepted: {', '.join(allowed)})")


def _legal_interest(amount: Decimal, due_on: date, paid_on: date, rates: DatedRates) -> tuple[Decimal, int]:
    """Σ amount * legal rate / 365 over each day after ``due_on`` up to ``paid_on`` (each day at the
    rate in force on it; a segment never crosses a half-year or a row of the table), unrounded; and
    the number of days."""
    amount, due_on, paid_on = _money(amount, "the amount"), _day(due_on, "due_on"), _day(paid_on, "paid_on")
    days = max(0, (paid_on - due_on).days)
    total = Decimal(0)
    day = due_on + timedelta(days=1)
    while day <= paid_on:  # one segment per half-year crossed
        percent = rate_in_force(rates, day, LEGAL_RATE_HALF_YEAR_MONTHS)
        next_change = min([d for d, _ in rates if d > day] + [_next_half_year(day)])
        segment_end = min(paid_on, next_change - timedelta(days=1))
        total += amount * percent * ((segment_end - day).days + 1) / (100 * DAYS_PER_YEAR)
        day = segment_end + timedelta(days=1)
    return total, days


def _next_half_year(d: date) -> date:
    return date(d.year, 7, 1) if d.month < 7 else date(d.year + 1, 1, 1)


def late_interest_line(amount: Decimal, due_on: date, paid_on: date,
                       rates: DatedRates = LEGAL_INTEREST_RATES_FR) -> Line:
    """R8.6-billing: late-payment interest at 1.5 * the legal interest rate from the due date:
    amount * 1.5 * rate * days / 365, each day at the legal rate of its half-year; ``paid_on``
    is the payment date (or the date of the computation for an unpaid amount)."""
    interest, days = _legal_interest(amount, due_on, paid_on, rates)
    return Line("R8.6-billing", f"late interest, 1.5 * legal rate, {days} days from {due_on.isoformat()}",
                to_cents(interest * LATE_INTEREST_FACTOR), taxable=False)


def late_penalty_line(amount: Decimal, due_on: date, paid_on: date,
                      rates: DatedRates = LEGAL_INTEREST_RATES_FR) -> Line:
    """R8.7-default: late-payment penalties at the legal rate, due only when the delay exceeds
    15 days; then counted from the due date (amount * rate * days / 365, each day at the rate of
    its half-year). A delay of 15 days or less gives a 0.00 line."""
    interest, days = _legal_interest(amount, due_on, paid_on, rates)
    if days <= PENALTY_AFTER_DAYS:
        return Line("R8.7-default", f"late penalty: none, delay of {days} days is not over {PENALTY_AFTER_DAYS}",
                    Decimal("0.00"), taxable=False)
    return Line("R8.7-default", f"late penalty, legal rate, {days} days from {due_on.isoformat()}",
                to_cents(interest), taxable=False)


def late_payment_lines(amount: Decimal, due_on: date, paid_on: date,
                       rates: DatedRates = LEGAL_INTEREST_RATES_FR) -> tuple[Line, Line]:
    """R8.6-billing, R8.7-default: both late-payment lines, computed separately (which of them is
    invoiced is a setting of the caller)."""
    return late_interest_line(amount, due_on, paid_on, rates), late_penalty_line(amount, due_on, paid_on, rates)


def payment_incident_fee(incidents: int) -> Line:
    """R8.7-default: 35 € per payment incident (rejected direct debit, bounced cheque)."""
    n = _count(incidents, "the number of payment incidents")
    return Line("R8.7-default", f"{n} payment incident(s) * {PAYMENT_INCIDENT_FEE} €", PAYMENT_INCIDENT_FEE * n,
                taxable=False)


def blacklist_fee(complaints: int) -> Line:
    """R6.4-blacklist-fee: 200 € HT per complaint when the client's spam got one of the provider's
    IP addresses or domains blacklisted."""
    n = _count(complaints, "the number of complaints")
    return Line("R6.4-blacklist-fee", f"{n} blacklisting complaint(s) * {BLACKLIST_FEE} € HT", BLACKLIST_FEE * n)
