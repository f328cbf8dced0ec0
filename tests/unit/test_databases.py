"""The test command's PostgreSQL requirement (tests/databases.py): with ``VPSCTL_TEST_REQUIRE_POSTGRES=1``
and no ``VPSCTL_TEST_POSTGRES_URL``, the PostgreSQL variant of a database test fails, loudly: it is
neither skipped nor an expected failure, so a run without PostgreSQL never passes green.  Runs pytest
on a small test file in a child process; needs no PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CASE = '''
from pathlib import Path

import pytest

from tests.databases import databases, empty_database


@pytest.mark.parametrize("kind", databases())
def test_on_each_database(kind: str, tmp_path: Path) -> None:
    with empty_database(kind, tmp_path) as settings:
        assert settings.state_dir == tmp_path
'''


def run_case(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_case.py").write_text(CASE)
    environ = {key: value for key, value in os.environ.items()
               if key not in ("VPSCTL_TEST_POSTGRES_URL", "VPSCTL_TEST_REQUIRE_POSTGRES", "PYTEST_ADDOPTS")}
    environ.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_case.py")],
                          cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120)


def test_required_postgresql_missing_fails_loudly(tmp_path: Path) -> None:
    run = run_case(tmp_path, VPSCTL_TEST_REQUIRE_POSTGRES="1")
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "1 failed, 1 passed" in out, out  # SQLite runs; the PostgreSQL variant fails
    assert "FAILED test_case.py::test_on_each_database[postgresql]" in out, out
    assert "VPSCTL_TEST_REQUIRE_POSTGRES=1 but no VPSCTL_TEST_POSTGRES_URL" in out, out
    assert "xfail" not in out.lower() and "skipped" not in out.lower(), out


def test_without_the_requirement_only_sqlite_runs(tmp_path: Path) -> None:
    run = run_case(tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "1 passed" in out and "postgresql" not in out, out
