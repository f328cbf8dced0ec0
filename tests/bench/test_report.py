"""How ``scripts/bench.sh`` reports (bench/run.py, bench/report.py): each section replaced
between its markers and nothing else, where it was measured written into it, the targets with
their verdicts, and a non-zero exit naming every target missed or benchmark that did not finish."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from bench import report, run
from bench.report import Figure, Machine, Result, Target

WHERE = Machine(date="2026-01-02 03:04 UTC", commit="0123456789ab", dirty=True, cores=2, cpu="Some CPU",
                memory_gib=24.0, kernel="6.1.0", accel="TCG", libvirt="9.0.0", qemu="7.2.22")


def test_a_target_is_met_at_its_limit_and_missed_above_it() -> None:
    assert Target("r", 1.5, 1.5).met
    assert not Target("r", 1.51, 1.5).met
    assert Target("r", 1.51, 1.5).line().endswith("MISSED")
    assert Target("n", 0, 0, unit="jobs", relative=False).line() == "n: 0 jobs, target at most 0 jobs: met"


def test_the_machine_line_says_commit_changes_accel_and_versions() -> None:
    line = WHERE.describe()
    for part in ("2026-01-02 03:04 UTC", "commit 0123456789ab (uncommitted changes)", "2 cores (Some CPU)",
                 "24 GiB", "Linux 6.1.0", "TCG", "libvirt 9.0.0", "QEMU 7.2.22"):
        assert part in line


def test_a_section_is_rewritten_between_its_markers_only(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\nintro\n\n<!-- bench:x:begin -->\nold figures\n<!-- bench:x:end -->\n\n"
                   "<!-- load:begin -->\nload section\n<!-- load:end -->\n")
    result = Result("x", "X", ["| a | b |"], [Target("x: ours / floor", 2.0, 1.5)],
                    [Figure("x", "X grows", "n", "s", {"ours": [(1, 1.0), (10, 2.0)]})])
    report.write(result, WHERE, out)
    text = out.read_text()
    assert "old figures" not in text and "intro" in text and "load section" in text
    assert "## X" in text and WHERE.describe() in text and "| a | b |" in text
    assert "- x: ours / floor: 2.00x, target at most 1.50x: MISSED" in text
    assert "![X grows](benchmarks-x.png)" in text and (tmp_path / "benchmarks-x.png").stat().st_size > 0
    report.write(Result("y", "Y", ["y"]), WHERE, out)  # a section without markers yet goes at the end
    assert out.read_text().rstrip().endswith("<!-- bench:y:end -->")


def test_the_run_fails_naming_each_target_missed_and_each_benchmark_that_stopped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def module(name: str, measure: object) -> str:
        fake = types.ModuleType(name)
        fake.KEY, fake.HEADING, fake.measure = name.rsplit(".", 1)[-1], name, measure  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, name, fake)
        return name

    def broken() -> Result:
        raise RuntimeError("libvirtd went away")

    monkeypatch.setattr(run, "machine", lambda: WHERE)
    monkeypatch.setenv("BENCH_OUT", str(tmp_path / "benchmarks.md"))
    monkeypatch.setattr(run, "BENCHMARKS", {
        "good": module("fakebench.good", lambda: Result("good", "Good", [], [Target("good: a / b", 1.0, 1.5)])),
        "slow": module("fakebench.slow", lambda: Result("slow", "Slow", [], [Target("slow: a / b", 3.0, 1.5)])),
        "broken": module("fakebench.broken", broken)})
    assert run.main(["good"]) == 0
    assert run.main([]) == 1
    errors = capsys.readouterr().err
    assert "slow: a / b: 3.00x, target at most 1.50x: MISSED" in errors
    assert "broken: did not finish: RuntimeError: libvirtd went away" in errors
    assert "good: a / b" not in errors
    text = (tmp_path / "benchmarks.md").read_text()
    assert "**Not measured in this run**" in text and text.count("<!-- bench:") == 6
    assert run.main(["nonesuch"]) == 2
