"""Settings in groups: every environment variable keeps its name, every number its bounds, and
the clock's start instant is a setting like the others."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from orchestrator.core import clock
from orchestrator.core.settings import Settings


def test_environment_variables_land_in_their_group(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in {"VPSCTL_STATE_DIR": str(tmp_path), "VPSCTL_JOB_LEASE_SECONDS": "45",
                        "VPSCTL_SMTP_PORT": "2525", "VPSCTL_HOOKS_DIR": "", "VPSCTL_MAX_VCPUS": "8",
                        "VPSCTL_FIX_DELAY_READING": "support_hours", "VPSCTL_MAIL_FROM": "ops <ops@example.test>",
                        "VPSCTL_DATABASE_URL": "sqlite:////tmp/x.db"}.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.state_dir == tmp_path
    assert settings.jobs.lease_seconds == 45.0
    assert settings.smtp.port == 2525
    assert settings.hooks.directory == ""
    assert settings.limits.max_vcpus == 8
    assert settings.contract.fix_delay_reading == "support_hours"
    assert settings.mail.sender == "ops <ops@example.test>"
    assert settings.database == "sqlite:////tmp/x.db"


@pytest.mark.parametrize(("name", "value"), [
    ("VPSCTL_JOB_LEASE_SECONDS", "0"), ("VPSCTL_JOB_LEASE_SECONDS", "86401"), ("VPSCTL_SMTP_PORT", "70000"),
    ("VPSCTL_MAX_VCPUS", "0"), ("VPSCTL_CPU_ALLOCATION_RATIO", "-1"), ("VPSCTL_OUTBOX_MAX_ATTEMPTS", "0"),
    ("VPSCTL_EVIDENCE_MAX_BYTES", "0"), ("VPSCTL_AUTO_DEFAULT_AFTER_DAYS", "-3"), ("VPSCTL_HOOK_MAX_ATTEMPTS", "0"),
    ("VPSCTL_LIVE_RESIZE_HEADROOM", "0.5"), ("VPSCTL_FIX_DELAY_READING", "whenever"),
])
def test_a_value_out_of_bounds_stops_the_start(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_a_heartbeat_slower_than_the_lease_is_refused() -> None:
    with pytest.raises(ValidationError, match="VPSCTL_JOB_HEARTBEAT_SECONDS"):
        Settings(job_lease_seconds=10, job_heartbeat_seconds=10)


def test_code_gives_the_same_names_and_a_typo_is_an_error(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, job_lease_seconds=6, job_heartbeat_seconds=1, smtp_port=2525)
    assert (settings.jobs.lease_seconds, settings.jobs.heartbeat_seconds, settings.smtp.port) == (6, 1, 2525)
    changed = settings.replace(smtp_port=26, hook_max_attempts=2)
    assert (changed.smtp.port, changed.hooks.max_attempts, changed.jobs.lease_seconds) == (26, 2, 6)
    assert settings.smtp.port == 2525  # the original is left as it was
    with pytest.raises(TypeError, match="job_lease_secs"):
        Settings(job_lease_secs=6)


def test_a_child_process_gets_the_same_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, job_lease_seconds=6, job_heartbeat_seconds=1,
                        smtp_password=SecretStr("s3cret"), now=datetime(2026, 5, 13, 8, tzinfo=UTC))
    environment = settings.as_environment()
    assert environment["VPSCTL_SMTP_PASSWORD"] == "s3cret" and environment["VPSCTL_JOB_LEASE_SECONDS"] == "6.0"
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert Settings().model_dump() == settings.model_dump()
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.model_dump())


def test_the_clock_starts_at_the_now_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VPSCTL_NOW", "2026-05-13T10:00:00+02:00")
    settings = Settings()
    assert settings.now == datetime(2026, 5, 13, 8, tzinfo=UTC)
    try:
        clock.start(settings.now)
        assert timedelta(0) <= clock.utcnow() - datetime(2026, 5, 13, 8, tzinfo=UTC) < timedelta(seconds=5)
    finally:
        clock.reset()
    clock.start(None)  # unset: the clock is left alone (the real time here)
    assert abs(clock.utcnow() - datetime.now(UTC)) < timedelta(seconds=5)


def test_an_instant_without_offset_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VPSCTL_NOW", "2026-05-13T10:00:00")
    with pytest.raises(ValidationError):
        Settings()
