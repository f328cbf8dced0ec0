"""``vpsctl customer`` and ``vpsctl token`` (orchestrator/cli): customers are created explicitly, a
customer token names one that exists, tokens expire and are listed (never the token or its hash)
and revoked.  Run through typer's CliRunner on a SQLite database of their own."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlmodel import Session, select
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.core.auth import authenticate
from orchestrator.core.clock import utcnow
from orchestrator.core.db import make_engine
from orchestrator.core.errors import Unauthorized
from orchestrator.core.models import ApiToken, Customer
from orchestrator.core.settings import Settings, get_settings

Vpsctl = Callable[..., Result]


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The command line's settings point at a state directory of the test's own."""
    state = tmp_path / "state"
    monkeypatch.setenv("VPSCTL_STATE_DIR", str(state))
    monkeypatch.delenv("VPSCTL_DATABASE_URL", raising=False)
    monkeypatch.delenv("VPSCTL_TOKEN_DAYS", raising=False)
    monkeypatch.delenv("VPSCTL_NOW", raising=False)
    umask = os.umask(0o022)  # the command sets its own; put the test process's back afterwards
    get_settings.cache_clear()
    yield state
    get_settings.cache_clear()
    os.umask(umask)


@pytest.fixture
def vpsctl(state: Path) -> Vpsctl:
    runner = CliRunner()

    def run(*args: str) -> Result:
        get_settings.cache_clear()  # each command reads the environment afresh, as a new process would
        return runner.invoke(app, list(args))

    return run


def records(state: Path, model: Any) -> list[Any]:
    engine = make_engine(Settings(state_dir=state))
    try:
        with Session(engine, expire_on_commit=False) as session:
            return list(session.exec(select(model)).all())
    finally:
        engine.dispose()


def test_a_customer_token_is_for_a_customer_created_first(vpsctl: Vpsctl, state: Path) -> None:
    made = vpsctl("customer", "create", "dave", "--email", "dave@example.test", "--language", "en")
    assert made.exit_code == 0, made.output
    assert made.stdout.strip() == "customer 1: dave <dave@example.test> (en)"
    issued = vpsctl("token", "create", "--role", "customer", "--customer", "dave", "--label", "laptop",
                    "--days", "7")
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.splitlines()[-1]
    assert token.startswith("vps_") and "expires" in issued.stderr and token not in issued.stderr
    [record] = records(state, ApiToken)
    [dave] = records(state, Customer)
    assert (record.customer_id, record.label, record.token_hash) == (dave.id, "laptop",
                                                                   hashlib.sha256(token.encode()).hexdigest())
    assert timedelta(days=7) - timedelta(minutes=1) < record.expires_at - utcnow() <= timedelta(days=7)
    listing = vpsctl("customer", "list")
    assert listing.exit_code == 0 and "dave@example.test" in listing.stdout


def test_token_create_for_an_unknown_customer_fails_and_creates_nothing(vpsctl: Vpsctl, state: Path) -> None:
    refused = vpsctl("token", "create", "--role", "customer", "--customer", "nobody")
    assert refused.exit_code == 1, refused.output
    assert "no customer named 'nobody'" in refused.stderr and "vpsctl customer create" in refused.stderr
    assert refused.stdout == ""
    assert records(state, Customer) == [] and records(state, ApiToken) == []


def test_customer_create_refuses_bad_input_and_a_name_taken(vpsctl: Vpsctl, state: Path) -> None:
    assert vpsctl("customer", "create", "dave", "--email", "dave@example.test", "--language", "fr").exit_code == 0
    for args, words in [
        (("dave", "--email", "other@example.test", "--language", "fr"), "exists already"),
        (("eve", "--email", "eve", "--language", "fr"), "not an email address"),
        (("eve", "--email", "eve@example.test", "--language", "de"), "language is one of fr, en"),
    ]:
        refused = vpsctl("customer", "create", *args)
        assert refused.exit_code == 1 and words in refused.stderr, refused.output
    assert [c.name for c in records(state, Customer)] == ["dave"]


def test_staff_tokens_expire_after_the_days_setting(vpsctl: Vpsctl, state: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    assert vpsctl("token", "create", "--role", "support").exit_code == 0
    monkeypatch.setenv("VPSCTL_TOKEN_DAYS", "30")
    assert vpsctl("token", "create", "--role", "support", "--label", "short").exit_code == 0
    lifetimes = {r.label: r.expires_at - r.created_at for r in records(state, ApiToken)}
    assert lifetimes == {"support": timedelta(days=90), "short": timedelta(days=30)}
    assert vpsctl("token", "create", "--role", "support", "--days", "0").exit_code == 2  # a usage error


def test_token_list_shows_what_and_when_never_the_token_or_its_hash(vpsctl: Vpsctl) -> None:
    vpsctl("customer", "create", "dave", "--email", "dave@example.test", "--language", "en")
    tokens = [vpsctl("token", "create", *args).stdout.splitlines()[-1] for args in (
        ("--role", "support", "--label", "desk"),
        ("--role", "customer", "--customer", "dave", "--label", "dave-ci"),
        ("--role", "automation", "--label", "cmdb", "--scope", "vps:read", "--scope", "hosts:read"))]
    listing = vpsctl("token", "list")
    assert listing.exit_code == 0, listing.output
    for secret in tokens + [hashlib.sha256(t.encode()).hexdigest() for t in tokens]:
        assert secret not in listing.stdout
    for words in ("desk", "support", "dave-ci", "dave", "cmdb", "automation", "hosts:read vps:read", "active"):
        assert words in listing.stdout
    only_dave = vpsctl("token", "list", "--customer", "dave")
    assert "dave-ci" in only_dave.stdout and "desk" not in only_dave.stdout and "cmdb" not in only_dave.stdout


def test_token_revoke_refuses_the_token_at_once(vpsctl: Vpsctl, state: Path) -> None:
    token = vpsctl("token", "create", "--role", "support", "--label", "desk").stdout.splitlines()[-1]
    revoked = vpsctl("token", "revoke", "1")
    assert revoked.exit_code == 0, revoked.output
    assert revoked.stdout.startswith("token 1 revoked at ")
    assert "revoked" in vpsctl("token", "list").stdout
    engine = make_engine(Settings(state_dir=state))
    try:
        with Session(engine) as session, pytest.raises(Unauthorized, match="revoked"):
            authenticate(session, token)
    finally:
        engine.dispose()
    again = vpsctl("token", "revoke", "1")
    assert again.exit_code == 1 and "revoked already" in again.stderr
    missing = vpsctl("token", "revoke", "99")
    assert missing.exit_code == 1 and "no token 99" in missing.stderr


def test_an_automation_token_needs_known_scopes(vpsctl: Vpsctl, state: Path) -> None:
    for args, words in [
        (("--role", "automation"), "at least one scope"),
        (("--role", "automation", "--scope", "everything"), "unknown scope 'everything'"),
        (("--role", "support", "--scope", "vps:read"), "only automation tokens carry scopes"),
    ]:
        refused = vpsctl("token", "create", *args)
        assert refused.exit_code == 1 and words in refused.stderr, refused.output
    assert records(state, ApiToken) == []
    made = vpsctl("token", "create", "--role", "automation", "--scope", "billing:write", "--scope", "billing:read")
    assert made.exit_code == 0, made.output
    assert [r.scopes for r in records(state, ApiToken)] == [["billing:read", "billing:write"]]
