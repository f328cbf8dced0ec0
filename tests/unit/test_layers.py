"""The architecture holds: no import cycle anywhere in ``orchestrator`` and ``api`` (module by
module), and the layers and boundaries of pyproject.toml's import-linter contracts are kept."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]


def strongly_connected(edges: dict[str, set[str]], nodes: list[str]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: every group of modules that import each other in a ring."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                groups.append(sorted(group))
    return groups


def test_the_finder_finds_a_ring() -> None:
    """The cycle finder itself: a -> b -> c -> a is one ring, d alone is none."""
    edges = defaultdict(set, {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    rings = [g for g in strongly_connected(edges, ["a", "b", "c", "d"]) if len(g) > 1]
    assert rings == [["a", "b", "c"]]


def test_no_import_cycle() -> None:
    graph = grimp.build_graph("orchestrator", "api", cache_dir=None)
    modules = sorted(graph.modules)
    edges: dict[str, set[str]] = defaultdict(set)
    for module in modules:
        edges[module] = {m for m in graph.find_modules_directly_imported_by(module) if m != module}
    assert [g for g in strongly_connected(edges, modules) if len(g) > 1] == []


def test_import_contracts_are_kept() -> None:
    run = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout and "5 kept" in run.stdout
