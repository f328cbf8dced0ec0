"""Email templates: jinja2 text files in ``orchestrator/notify/email/<language>/<name>.txt.j2``.

The first line of a template file is the subject, the rest is the body.  Both are rendered with
``StrictUndefined`` (a missing value is an error, never an empty string) and without autoescape
(plain text, not HTML).  Every notice exists in French (the default and the fallback) and English.

Each template has a :class:`TemplateSpec`: the context values it needs, the optional ones with
their defaults, and the values *derived from the sending instant*.  R6.2-notice and R8.7-default
count their deadlines from the actual sending of the email, so those deadlines are not given by
the caller: they are computed from ``sent_at`` each time the message is rendered (a preview when
queued, the real thing when sent).

Times are shown in Europe/Paris with their UTC offset (every contract time is read in Paris),
truncated to the minute: a deadline shown is never later than the deadline enforced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from orchestrator.contract.calendar import BusinessCalendar, to_paris
from orchestrator.contract.deadlines import (
    erasure_not_before,
    reinstall_not_before,
    termination_for_nonpayment_at,
)
from orchestrator.core.clock import utcnow
from orchestrator.core.errors import InvalidRequest

TEMPLATES_DIR = Path(__file__).resolve().parent / "email"
LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"
SUFFIX = ".txt.j2"

# Values every template receives; a caller's context may not set them.
COMMON_KEYS = ("company_name", "customer_name", "sent_at", "language")

Derive = Callable[[datetime, BusinessCalendar], dict[str, datetime]]


@dataclass(frozen=True)
class TemplateSpec:
    name: str
    rules: tuple[str, ...]
    required: tuple[str, ...]
    optional: Mapping[str, Any] = field(default_factory=dict)
    derive: Derive | None = None
    derived_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class RenderedEmail:
    template: str
    language: str
    subject: str
    body: str


def _compromise_deadlines(sent_at: datetime, cal: BusinessCalendar) -> dict[str, datetime]:
    # R6.2-notice: not before three jours ouvrés after the email announcing the reinstall.
    return {"reinstall_not_before": reinstall_not_before(sent_at, cal)}


def _payment_deadlines(sent_at: datetime, _cal: BusinessCalendar) -> dict[str, datetime]:
    # R8.7-default: erasure five days after the formal notice; R10-nonpayment: termination fifteen.
    return {"erasure_not_before": erasure_not_before(sent_at), "termination_at": termination_for_nonpayment_at(sent_at)}


SPECS: dict[str, TemplateSpec] = {
    spec.name: spec
    for spec in (
        TemplateSpec(
            "delivery_report",
            ("R9-delivery",),
            required=("vps_name", "vps_id", "image", "os", "vcpus", "memory_mib", "disk_gib", "addresses",
                      "host_keys", "delivered_at"),
            optional={"site": "", "ssh_user": "root"},
        ),
        TemplateSpec(
            "compromise_notice",
            ("R6.2-notice", "R6.2-backup", "R6.2-transfer", "R6.2-reinstall"),
            required=("vps_name", "vps_id", "os", "details"),
            optional={"detected_at": None, "cut_off": False, "backup_price_eur": None, "transfer_price_eur": None},
            derive=_compromise_deadlines,
            derived_keys=("reinstall_not_before",),
        ),
        TemplateSpec(
            "cutoff_notice",
            ("R5.5-cutoff",),
            required=("vps_name", "vps_id", "reason", "cut_off_at"),
            optional={"details": ""},
        ),
        TemplateSpec(
            "reconnect_notice",
            ("R5.5-reconnect",),
            required=("vps_name", "vps_id", "reconnected_at"),
            optional={"corrective_measures": ""},
        ),
        TemplateSpec(
            "payment_formal_notice",
            ("R8.7-default", "R10-nonpayment"),
            required=("invoice_ref", "amount_due_eur", "due_date"),
            optional={"vps_names": [], "rejected_payment": False, "service_interrupted": False,
                      "incident_fee_eur": None},
            derive=_payment_deadlines,
            derived_keys=("erasure_not_before", "termination_at"),
        ),
        TemplateSpec(
            "non_renewal_ack",
            ("R3-notice",),
            required=("subscription_id", "received_at", "channel", "ends_on"),
            optional={"vps_name": ""},
        ),
        TemplateSpec(
            "reversibility_ack",
            ("R13-reversibility",),
            required=("subscription_id", "received_at", "effective_at"),
            optional={"exported_vps": []},
        ),
        TemplateSpec(
            "termination_notice",
            ("R10-after", "R10-nonpayment", "R3-notice", "R13-reversibility", "R10-breach"),
            required=("subscription_id", "vps_name", "reason", "terminated_at"),
            optional={"data_erased": False, "kept_backups_erased": 0},
        ),
        TemplateSpec(
            "interruption_notice",
            ("R5.4-notice",),
            required=("vps_name", "vps_id", "starts_at", "ends_at", "reason"),
        ),
        TemplateSpec(
            "incident_notice",
            ("R5.4-fix-delay", "R5.3-force-majeure", "R12-suspend"),
            required=("vps_name", "vps_id", "malfunction", "opened_at"),
            optional={"description": "", "fix_deadline": None, "force_majeure": False},
        ),
        TemplateSpec(
            "termination_right_notice",
            ("R5.4-fix-delay", "R5.4-repeat"),
            required=("vps_name", "vps_id", "malfunction", "opened_at"),
            optional={"right": "fix_delay", "fix_deadline": None, "description": "", "occurrences": 0,
                      "first_opened_at": None},
        ),
        TemplateSpec(
            "restored_elsewhere",
            ("R5.2-keep-running",),
            required=("vps_name", "vps_id", "backup_taken_at"),
            optional={"site": "", "data_disks": [], "host_key_fingerprints": []},
        ),
        TemplateSpec(
            "maintenance_notice",
            ("R5.4-duration", "R5.4-frequency", "R5.4-hours"),
            required=("vps_name", "vps_id", "starts_at", "duration_minutes"),
            optional={"description": ""},
        ),
        TemplateSpec(
            "order_form",
            ("R5.1-change-order", "R8.3-ht", "R8.2-rent"),
            required=("number", "order_id", "vps_name", "vps_id", "current", "new", "rent_ht"),
            optional={"fee_ht": None, "billing_period": None, "note": "", "request_note": ""},
        ),
        TemplateSpec(
            "change_order_refused",
            ("R5.1-change-order",),
            required=("vps_name", "vps_id", "current", "new", "reason"),
        ),
    )
}


def get_spec(template: str) -> TemplateSpec:
    try:
        return SPECS[template]
    except KeyError:
        raise InvalidRequest(f"unknown email template {template!r} (one of {', '.join(sorted(SPECS))})") from None


def normalize_language(language: str | None) -> str:
    """'fr', 'fr-FR', 'EN_gb' -> 'fr' / 'en'; anything else falls back to French."""
    code = (language or "").strip().replace("_", "-").split("-")[0].casefold()
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


# --- context stored as JSON ----------------------------------------------------------------------

_DT, _D = "__datetime__", "__date__"


def encode_context(value: Any) -> Any:
    """A context made storable in a JSON column: aware datetimes and dates become tagged ISO
    strings (naive datetimes are refused), tuples become lists, Decimals become strings."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidRequest(f"naive datetime {value.isoformat()} in an email context")
        return {_DT: value.astimezone(UTC).isoformat()}
    if isinstance(value, date):
        return {_D: value.isoformat()}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidRequest(f"email context keys must be strings, not {key!r}")
            out[key] = encode_context(item)
        return out
    if isinstance(value, list | tuple):
        return [encode_context(item) for item in value]
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise InvalidRequest(f"a {type(value).__name__} cannot be stored in an email context")


def decode_context(value: Any) -> Any:
    """The inverse of :func:`encode_context`."""
    if isinstance(value, dict):
        if len(value) == 1 and _DT in value:
            return datetime.fromisoformat(value[_DT])
        if len(value) == 1 and _D in value:
            return date.fromisoformat(value[_D])
        return {key: decode_context(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode_context(item) for item in value]
    return value


# --- filters ------------------------------------------------------------------------------------

_DAYS = {
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
_MONTHS = {
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
}


def _aware(value: Any, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{what} needs a datetime, not {type(value).__name__} {value!r}")
    return value


def _long_date(d: date, language: str) -> str:
    month = _MONTHS[language][d.month - 1]
    if language == "fr":
        return f"{'1er' if d.day == 1 else d.day} {month} {d.year}"
    return f"{d.day} {month} {d.year}"


def _offset(p: datetime) -> str:
    delta = p.utcoffset() or timedelta(0)
    minutes = int(delta.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def format_paris(value: datetime, language: str) -> str:
    """'mardi 19 mai 2026 à 10:00 (heure de Paris, UTC+02:00)' /
    'Tuesday 19 May 2026 at 10:00 (Paris time, UTC+02:00)', truncated to the minute."""
    p = to_paris(_aware(value, "paris")).replace(second=0, microsecond=0)
    day = f"{_DAYS[language][p.weekday()]} {_long_date(p.date(), language)}"
    if language == "fr":
        return f"{day} à {p:%H:%M} (heure de Paris, {_offset(p)})"
    return f"{day} at {p:%H:%M} (Paris time, {_offset(p)})"


def format_date(value: date, language: str) -> str:
    """A calendar date ('15 avril 2026' / '15 April 2026'); a datetime is read in Paris."""
    if isinstance(value, datetime):
        value = to_paris(value).date()
    if not isinstance(value, date):
        raise TypeError(f"long_date needs a date, not {type(value).__name__} {value!r}")
    return _long_date(value, language)


def format_mib(value: int, language: str) -> str:
    n = int(value)
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} {'Gio' if language == 'fr' else 'GiB'}"
    return f"{n} {'Mio' if language == 'fr' else 'MiB'}"


def format_gib(value: int, language: str) -> str:
    return f"{int(value)} {'Gio' if language == 'fr' else 'GiB'}"


def format_eur(value: Any, language: str) -> str:
    """'1 234,50 €' / '€1,234.50'."""
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise TypeError(f"eur needs an amount, not {value!r}") from None
    text = f"{amount:,.2f}"
    if language == "fr":
        return text.replace(",", " ").replace(".", ",") + " €"
    return f"€{text}"


def format_duration(minutes: float, language: str) -> str:
    """'1 h 30 min', '45 min', '3 h'."""
    total = round(minutes)
    hours, rest = divmod(total, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h {rest:02d} min" if rest else f"{hours} h"


def minutes_between(start: datetime, end: datetime) -> float:
    return (_aware(end, "minutes_between") - _aware(start, "minutes_between")).total_seconds() / 60


def plus_minutes(start: datetime, minutes: float) -> datetime:
    return _aware(start, "plus_minutes") + timedelta(minutes=float(minutes))


@lru_cache(maxsize=len(LANGUAGES))
def _environment(language: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR / language),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 (plain-text email: nothing is read as HTML)
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        paris=lambda v: format_paris(v, language),
        long_date=lambda v: format_date(v, language),
        mib=lambda v: format_mib(v, language),
        gib=lambda v: format_gib(v, language),
        eur=lambda v: format_eur(v, language),
        duration=lambda v: format_duration(v, language),
        minutes_until=minutes_between,
        plus_minutes=plus_minutes,
    )
    return env


def split_template_source(source: str) -> tuple[str, str]:
    """A template file's first line (the subject) and the rest (the body)."""
    subject, _, body = source.partition("\n")
    return subject, body


def clean_subject(text: str) -> str:
    """One header-safe line: every run of whitespace (newlines included) becomes one space."""
    return " ".join(text.split())


@lru_cache(maxsize=64)
def _compiled(language: str, template: str) -> tuple[jinja2.Template, jinja2.Template]:
    env = _environment(language)
    assert env.loader is not None
    source, _filename, _uptodate = env.loader.get_source(env, template + SUFFIX)
    subject, body = split_template_source(source)
    return env.from_string(subject), env.from_string(body)


def template_path(template: str, language: str) -> Path:
    return TEMPLATES_DIR / normalize_language(language) / f"{template}{SUFFIX}"


def build_context(template: str, context: Mapping[str, Any], *, sent_at: datetime,
                  calendar: BusinessCalendar | None = None, company_name: str = "vpsctl hosting",
                  customer_name: str = "", language: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    """The full set of values a template sees: the caller's context checked against the spec,
    the optional values' defaults, the common values and the deadlines derived from ``sent_at``."""
    spec = get_spec(template)
    reserved = set(COMMON_KEYS) | set(spec.derived_keys)
    clash = sorted(reserved & set(context))
    if clash:
        raise InvalidRequest(f"email template {template!r}: {', '.join(clash)} are computed, not given")
    missing = [key for key in spec.required if key not in context]
    if missing:
        raise InvalidRequest(f"email template {template!r} needs {', '.join(missing)}")
    unknown = sorted(set(context) - set(spec.required) - set(spec.optional))
    if unknown:
        raise InvalidRequest(f"email template {template!r} does not use {', '.join(unknown)}")
    values: dict[str, Any] = {key: decode_context(encode_context(default)) for key, default in spec.optional.items()}
    values.update(context)
    values.update(company_name=company_name, customer_name=customer_name, sent_at=sent_at, language=language)
    if spec.derive is not None:
        values.update(spec.derive(sent_at, calendar or BusinessCalendar()))
    return values


def render(template: str, context: Mapping[str, Any], *, language: str | None = DEFAULT_LANGUAGE,
           sent_at: datetime | None = None, calendar: BusinessCalendar | None = None,
           company_name: str = "vpsctl hosting", customer_name: str = "") -> RenderedEmail:
    """Render ``template`` in ``language`` (fallback: French).  ``sent_at`` is the sending instant
    (default: now) from which the derived deadlines count.  A missing or unknown value, or a value
    of the wrong kind, raises InvalidRequest."""
    lang = normalize_language(language)
    when = sent_at or utcnow()
    values = build_context(template, context, sent_at=when, calendar=calendar, company_name=company_name,
                           customer_name=customer_name, language=lang)
    try:
        subject_template, body_template = _compiled(lang, template)
        subject = clean_subject(subject_template.render(values))
        body = body_template.render(values).lstrip("\n").rstrip() + "\n"
    except (jinja2.TemplateError, TypeError, ValueError) as exc:
        raise InvalidRequest(f"email template {template!r} ({lang}): {exc}") from exc
    if not subject:
        raise InvalidRequest(f"email template {template!r} ({lang}) renders an empty subject")
    return RenderedEmail(template=template, language=lang, subject=subject, body=body)
