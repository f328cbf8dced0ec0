"""Email templates: every template renders in French and English with a realistic context; a
missing value is an error (StrictUndefined); deadlines count from the sending instant and are shown
in Paris time with their offset.  R9-delivery, R6.2-notice, R5.5-cutoff, R5.5-reconnect,
R8.7-default, R5.4-notice."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import jinja2
import pytest

from orchestrator.contract.calendar import BusinessCalendar, to_utc
from orchestrator.contract.deadlines import erasure_not_before, reinstall_not_before, termination_for_nonpayment_at
from orchestrator.core.errors import InvalidRequest
from orchestrator.notify import templates
from orchestrator.notify.templates import (
    LANGUAGES,
    SPECS,
    clean_subject,
    decode_context,
    encode_context,
    format_duration,
    format_eur,
    format_mib,
    format_paris,
    normalize_language,
    render,
    split_template_source,
)
from tests.unit.notify.samples import FINGERPRINT, FINGERPRINT_RSA, VPS_ID, contexts

# Wednesday 13 May 2026, 10:00:17 in Paris (the day before Ascension).
SENT = datetime(2026, 5, 13, 8, 0, 17, tzinfo=UTC)
RULE_ID = re.compile(r"\bR\d+(\.\d+)?-[a-z]")


def test_every_template_has_a_sample_context() -> None:
    assert set(contexts()) == set(SPECS)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", sorted(SPECS))
def test_renders_in_every_language(name: str, language: str) -> None:
    email = render(name, contexts()[name], language=language, sent_at=SENT, company_name="Hébergement Provençal",
                   customer_name="ACME SARL")
    assert email.language == language
    assert email.subject and "\n" not in email.subject and "{" not in email.subject
    assert "{{" not in email.body and "{%" not in email.body and "{#" not in email.body
    assert not RULE_ID.search(email.subject + email.body), "rule IDs belong in template comments, not in emails"
    assert email.body.endswith("Hébergement Provençal\n")
    assert ("Bonjour ACME SARL," if language == "fr" else "Hello ACME SARL,") in email.body
    assert email.subject not in email.body.splitlines()[0]
    for key in ("vps_name", "vps_id", "invoice_ref", "os"):
        if key in contexts()[name]:
            assert contexts()[name][key] in email.body, key


@pytest.mark.parametrize("name", sorted(SPECS))
def test_each_template_cites_its_rule_in_a_comment(name: str) -> None:
    for language in LANGUAGES:
        source = templates.template_path(name, language).read_text(encoding="utf-8")
        comments = " ".join(re.findall(r"\{#(.*?)#\}", source, flags=re.S))
        assert SPECS[name].rules[0] in comments, (name, language)
        assert SPECS[name].rules[0] not in re.sub(r"\{#.*?#\}", "", source, flags=re.S)


def test_french_is_the_default_and_the_fallback() -> None:
    assert normalize_language(None) == "fr"
    assert normalize_language("") == "fr"
    assert normalize_language("de") == "fr"
    assert normalize_language("en-GB") == "en"
    assert normalize_language("EN_us") == "en"
    assert normalize_language("fr-CA") == "fr"
    email = render("reconnect_notice", contexts()["reconnect_notice"], language="de", sent_at=SENT)
    assert email.language == "fr"
    assert email.subject == "Connexion réseau rétablie pour votre VPS web-prod-1"


def test_subject_is_the_first_line_of_the_file() -> None:
    assert split_template_source("Sujet {{ x }}\n{# R0 #}\nCorps\n") == ("Sujet {{ x }}", "{# R0 #}\nCorps\n")
    assert clean_subject("  Votre VPS\n a\tété   livré ") == "Votre VPS a été livré"
    email = render("delivery_report", contexts()["delivery_report"], language="fr", sent_at=SENT)
    assert email.subject == "Procès-verbal de mise à disposition de votre VPS web-prod-1"
    assert not email.body.startswith("Procès-verbal de mise à disposition de votre VPS")
    assert email.body.startswith("Bonjour,\n")


def test_a_value_with_a_newline_cannot_add_a_header() -> None:
    context = contexts()["reconnect_notice"] | {"vps_name": "web\nBcc: victim@example.com"}
    email = render("reconnect_notice", context, language="en", sent_at=SENT)
    assert email.subject == "Network connection of your VPS web Bcc: victim@example.com restored"


def test_delivery_report_says_what_when_where_and_the_fingerprints() -> None:
    """R9-delivery: what was delivered, when, how to reach it, the SSH host key fingerprints."""
    fr = render("delivery_report", contexts()["delivery_report"], language="fr", sent_at=SENT).body
    for text in ("web-prod-1", VPS_ID, "Debian 12 (bookworm)", "debian-12", "Processeurs virtuels  : 2",
                 "Mémoire               : 4 Gio", "Disque                : 40 Gio", "Marseille",
                 "mercredi 13 mai 2026 à 09:58 (heure de Paris, UTC+02:00)", "ssh root@192.0.2.45",
                 "ssh root@2001:db8:150::45", f"ssh-ed25519  {FINGERPRINT}", f"ssh-rsa  {FINGERPRINT_RSA}",
                 "Vérifiez qu'elle est identique", "procès-verbal de mise à disposition"):
        assert text in fr, text
    en = render("delivery_report", contexts()["delivery_report"], language="en", sent_at=SENT).body
    for text in ("Memory          : 4 GiB", "ssh root@192.0.2.45", FINGERPRINT, FINGERPRINT_RSA,
                 "Wednesday 13 May 2026 at 09:58 (Paris time, UTC+02:00)", "Check that it is identical"):
        assert text in en, text


def test_delivery_report_without_addresses_yet() -> None:
    context = contexts()["delivery_report"] | {"addresses": []}
    body = render("delivery_report", context, language="fr", sent_at=SENT).body
    assert "Aucune adresse IP n'est encore attribuée" in body
    assert "ssh root@" not in body


def test_compromise_notice_deadline_counts_from_the_sending() -> None:
    """R6.2-notice: Wednesday 13 May 2026 10:00 (Ascension is Thursday 14) + 3 jours ouvrés ->
    not before Tuesday 19 May 2026 10:00, shown in Paris time with its offset."""
    fr = render("compromise_notice", contexts()["compromise_notice"], language="fr", sent_at=SENT).body
    assert "pas avant le :\n\n  mardi 19 mai 2026 à 10:00 (heure de Paris, UTC+02:00)" in fr
    assert "trois jours ouvrés" in fr
    assert "(49,00 € HT)" in fr and "(120,00 € HT)" in fr
    assert "accord" in fr and "par écrit" in fr
    assert "la connexion réseau de ce serveur a été coupée" in fr
    en = render("compromise_notice", contexts()["compromise_notice"], language="en", sent_at=SENT).body
    assert "Tuesday 19 May 2026 at 10:00 (Paris time, UTC+02:00)" in en
    assert "(€49.00 before tax)" in en


def test_compromise_notice_without_options() -> None:
    context = {k: v for k, v in contexts()["compromise_notice"].items()
               if k in ("vps_name", "vps_id", "os", "details")}
    body = render("compromise_notice", context, language="fr", sent_at=SENT).body
    assert "HT)" not in body
    assert "coupée" not in body
    assert "Elle est facturée à part\net ne commence qu'à réception de votre paiement" in body


def test_deadline_shown_is_never_later_than_the_one_enforced() -> None:
    """Shown to the minute, truncated: 10:00:59 is shown as 10:00, and the reinstall is refused
    until 10:00:59 three jours ouvrés later (R6.2-notice)."""
    sent = datetime(2026, 1, 7, 9, 0, 59, tzinfo=UTC)  # Wednesday 7 January 2026, 10:00:59 in Paris (winter)
    body = render("compromise_notice", contexts()["compromise_notice"], language="fr", sent_at=sent).body
    assert "lundi 12 janvier 2026 à 10:00 (heure de Paris, UTC+01:00)" in body
    enforced = reinstall_not_before(sent, BusinessCalendar())
    shown = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
    assert to_utc(shown) <= to_utc(enforced)


def test_compromise_deadline_follows_the_calendar_given() -> None:
    """Alsace-Moselle: Good Friday (3 April 2026) is a public holiday too."""
    sent = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)  # Wednesday 1 April 2026 10:00 Paris
    metro = render("compromise_notice", contexts()["compromise_notice"], language="en", sent_at=sent).body
    alsace = render("compromise_notice", contexts()["compromise_notice"], language="en", sent_at=sent,
                    calendar=BusinessCalendar("Alsace-Moselle")).body
    assert "Tuesday 7 April 2026 at 10:00" in metro  # Thu 2, Fri 3, (Easter Monday 6), Tue 7
    assert "Wednesday 8 April 2026 at 10:00" in alsace  # Thu 2, (Good Friday 3), (Easter Monday 6), Tue 7, Wed 8


def test_payment_formal_notice_erasure_and_termination() -> None:
    """R8.7-default: erasure not before five days after the notice; R10-nonpayment: termination
    fifteen days after it."""
    fr = render("payment_formal_notice", contexts()["payment_formal_notice"], language="fr", sent_at=SENT).body
    assert "lundi 18 mai 2026 à 10:00 (heure de Paris, UTC+02:00)" in fr
    assert "jeudi 28 mai 2026 à 10:00 (heure de Paris, UTC+02:00)" in fr
    assert "1 234,50 €" in fr and "1er avril 2026" in fr
    assert "votre prélèvement a été rejeté." in fr
    assert "Le service a été interrompu" in fr
    assert "Services concernés : web-prod-1, db-prod-1." in fr
    assert "Frais d'incident de paiement : 35,00 €." in fr
    assert to_utc(erasure_not_before(SENT)) == datetime(2026, 5, 18, 8, 0, 17, tzinfo=UTC)
    assert to_utc(termination_for_nonpayment_at(SENT)) == datetime(2026, 5, 28, 8, 0, 17, tzinfo=UTC)
    en = render("payment_formal_notice", contexts()["payment_formal_notice"], language="en", sent_at=SENT).body
    assert "€1,234.50" in en and "Monday 18 May 2026 at 10:00" in en and "Thursday 28 May 2026 at 10:00" in en


def test_payment_formal_notice_minimal() -> None:
    context = {"invoice_ref": "F-1", "amount_due_eur": Decimal("80"), "due_date": date(2026, 3, 1)}
    fr = render("payment_formal_notice", context, language="fr", sent_at=SENT).body
    assert "reste impayée à ce jour.\n" in fr
    assert "Le service peut être interrompu" in fr
    assert "Frais d'incident" not in fr and "Services concernés" not in fr


@pytest.mark.parametrize(("reason", "fr_text"), [
    ("hacked", "le serveur a été piraté"),
    ("security_update_missing", "une mise à jour de sécurité"),
    ("dangerous_application", "une application jugée dangereuse"),
    ("abuse", "un usage abusif"),
    ("something else entirely", "something else entirely"),
])
def test_cutoff_notice_gives_the_reason(reason: str, fr_text: str) -> None:
    """R5.5-cutoff: the cut-off records its reason, and the client is told it."""
    context = contexts()["cutoff_notice"] | {"reason": reason}
    body = render("cutoff_notice", context, language="fr", sent_at=SENT).body
    assert f"Motif   : {fr_text}" in body
    assert "mercredi 13 mai 2026 à 10:05 (heure de Paris, UTC+02:00)" in body


def test_interruption_and_maintenance_times() -> None:
    """R5.4-notice, R5.4-duration."""
    body = render("interruption_notice", contexts()["interruption_notice"], language="fr", sent_at=SENT).body
    assert "mercredi 20 mai 2026 à 02:00 (heure de Paris, UTC+02:00)" in body
    assert "mercredi 20 mai 2026 à 05:30 (heure de Paris, UTC+02:00)" in body
    assert "Durée prévue: 3 h 30 min" in body
    body = render("maintenance_notice", contexts()["maintenance_notice"], language="en", sent_at=SENT).body
    assert "Start       : Wednesday 20 May 2026 at 04:00 (Paris time, UTC+02:00)" in body
    assert "Expected end: Wednesday 20 May 2026 at 04:45 (Paris time, UTC+02:00)" in body
    assert "45 min at most" in body


def test_missing_required_value_is_refused() -> None:
    context = contexts()["delivery_report"]
    del context["host_keys"]
    with pytest.raises(InvalidRequest, match="needs host_keys"):
        render("delivery_report", context, sent_at=SENT)


def test_strict_undefined_catches_a_missing_nested_value() -> None:
    context = contexts()["delivery_report"] | {"host_keys": [{"type": "ssh-ed25519"}]}
    with pytest.raises(InvalidRequest, match="fingerprint"):
        render("delivery_report", context, sent_at=SENT)


def test_strict_undefined_is_on() -> None:
    _subject, body = templates._compiled("en", "reconnect_notice")
    with pytest.raises(jinja2.UndefinedError):
        body.render({})


def test_unknown_template_unknown_values_and_computed_values_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="unknown email template"):
        render("no_such_template", {}, sent_at=SENT)
    with pytest.raises(InvalidRequest, match="does not use vps_nmae"):
        render("reconnect_notice", contexts()["reconnect_notice"] | {"vps_nmae": "x"}, sent_at=SENT)
    with pytest.raises(InvalidRequest, match="reinstall_not_before are computed"):
        render("compromise_notice", contexts()["compromise_notice"] | {"reinstall_not_before": SENT}, sent_at=SENT)
    with pytest.raises(InvalidRequest, match="sent_at are computed"):
        render("reconnect_notice", contexts()["reconnect_notice"] | {"sent_at": SENT}, sent_at=SENT)


def test_a_value_of_the_wrong_kind_is_refused() -> None:
    context = contexts()["reconnect_notice"] | {"reconnected_at": "2026-05-15"}
    with pytest.raises(InvalidRequest, match="needs a datetime"):
        render("reconnect_notice", context, sent_at=SENT)


def test_context_round_trips_through_json() -> None:
    import json

    context = contexts()["payment_formal_notice"] | {"due_date": date(2026, 4, 1)}
    stored = json.loads(json.dumps(encode_context(context)))
    assert decode_context(stored) == context | {"vps_names": ["web-prod-1", "db-prod-1"]}
    when = datetime(2026, 5, 13, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))
    assert decode_context(encode_context({"t": when}))["t"] == when
    with pytest.raises(InvalidRequest, match="naive datetime"):
        encode_context({"t": datetime(2026, 5, 13, 10, 0)})
    with pytest.raises(InvalidRequest, match="cannot be stored"):
        encode_context({"x": object()})


def test_formats() -> None:
    assert format_paris(datetime(2026, 5, 1, 6, 30, tzinfo=UTC), "fr") == \
        "vendredi 1er mai 2026 à 08:30 (heure de Paris, UTC+02:00)"
    assert format_paris(datetime(2026, 12, 25, 23, 15, 59, tzinfo=UTC), "en") == \
        "Saturday 26 December 2026 at 00:15 (Paris time, UTC+01:00)"
    assert format_mib(2048, "fr") == "2 Gio"
    assert format_mib(1536, "en") == "1536 MiB"
    assert format_mib(512, "fr") == "512 Mio"
    assert format_eur("1234567.891", "fr") == "1 234 567,89 €"
    assert format_eur(35, "en") == "€35.00"
    assert format_duration(45, "fr") == "45 min"
    assert format_duration(60, "en") == "1 h"
    assert format_duration(210, "fr") == "3 h 30 min"
    assert format_duration(125, "fr") == "2 h 05 min"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_cutoff_reason_of_the_operation_has_a_text(language: str) -> None:
    """R5.5-cutoff: each reason code the cut-off operation accepts reads as a sentence."""
    from orchestrator.operations.cutoff import REASONS

    for reason in REASONS:
        body = render("cutoff_notice", contexts()["cutoff_notice"] | {"reason": reason}, language=language,
                      sent_at=SENT).body
        line = next(line for line in body.splitlines() if line.strip().startswith(("Motif", "Reason")))
        assert not line.rstrip().endswith(f": {reason}"), (reason, line)
