"""The fast subset of the benchmarks, in the test command: the create benchmark and the list
benchmark on SQLite, through the very code ``scripts/bench.sh`` runs (bench/create_bench.py,
bench/list_bench.py), with small counts, and their ratio targets checked: each a figure measured
in this run against its floor or peer measured in the same run, in turn with it, so that the load
of the rest of the test run weighs on both sides alike.  The absolute bounds (a first page's p99
under 30 ms) are computed too but checked only by ``scripts/bench.sh``, on a machine that runs
nothing else: here two test processes share the cores with booting guests.  Nothing is written
to docs/ (the benchmarks' ``measure`` returns its result; only ``bench/run.py`` writes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench import create_bench, list_bench
from bench.report import DOC, Result


@pytest.fixture(autouse=True)
def _docs_untouched() -> Iterator[None]:
    before = DOC.read_bytes()
    yield
    assert DOC.read_bytes() == before, "the fast subset wrote to docs/benchmarks.md"


def relative_targets_met(result: Result) -> None:
    assert not result.error, result.error
    relative = [target for target in result.targets if target.relative]
    assert relative, f"{result.key}: no ratio target measured"
    missed = [target.line() for target in relative if not target.met]
    assert not missed, "\n".join(["targets missed:", *missed, *result.lines])


def test_create_through_vpsctl_within_its_target_of_the_libvirt_floor(requires_libvirt: None) -> None:
    """Order -> domain running through the real ``vpsctl serve``, beside overlay + define +
    start of the same definition straight through libvirt-python, 6 rounds in turn: vpsctl at
    most 1.5 x the floor (the median of the rounds' ratios)."""
    result = create_bench.measure(samples=6, peer=False)
    [target] = result.targets
    assert target.what.startswith("create: vpsctl / floor") and target.limit == create_bench.TARGET_FLOOR
    relative_targets_met(result)


def test_list_pages_cost_the_same_whatever_the_size_and_depth() -> None:
    """GET /v1/vps's first page over 100 and 2,000 VPS, and a page half-way down, with the floor
    (a customer with none) in turn, on SQLite: size and depth within 1.5 x."""
    result = list_bench.measure(kinds=["sqlite"], sizes=(100, 2_000), samples=40)
    assert {target.relative for target in result.targets} == {True, False}
    relative_targets_met(result)
