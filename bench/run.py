"""Run the benchmarks, write their sections of docs/benchmarks.md (between their markers) and
their plots, and exit non-zero listing every target missed (or benchmark that did not finish).

    python -m bench.run                  # every benchmark (scripts/bench.sh)
    python -m bench.run lists create     # some of them
    BENCH_QUICK=1 python -m bench.run    # small counts: a check that they run
    BENCH_OUT=/tmp/b/benchmarks.md ...   # write the report (and its plots) elsewhere
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import traceback
from pathlib import Path

from bench.report import DOC, Result, machine, write

# In the order they run: the quick ones first, the long ones on real guests last.
BENCHMARKS = {
    "queue": "bench.queue_bench",
    "fleet": "bench.fleet_bench",
    "lists": "bench.list_bench",
    "create": "bench.create_bench",
    "operations": "bench.ops_bench",
    "concurrent": "bench.concurrent_bench",
}


def main(names: list[str] | None = None) -> int:
    names = names or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    out = Path(os.environ.get("BENCH_OUT") or DOC)
    where = machine()
    print(where.describe(), flush=True)
    missed: list[str] = []
    for name in names:
        module = importlib.import_module(BENCHMARKS[name])
        print(f"\n== {name} ({BENCHMARKS[name]})", flush=True)
        began = time.monotonic()
        try:
            result: Result = module.measure()
        except Exception as exc:
            traceback.print_exc()
            result = Result(module.KEY, module.HEADING, [], error=f"{type(exc).__name__}: {exc}")
        write(result, where, out)
        print("\n".join(result.lines))
        for target in result.targets:
            print(f"  target: {target.line()}")
        print(f"  ({time.monotonic() - began:.0f} s)", flush=True)
        missed += result.missed
    print(f"\nwrote {out}")
    if missed:
        print(f"{len(missed)} target(s) missed:", file=sys.stderr)
        for line in missed:
            print(f"  - {line}", file=sys.stderr)
        return 1
    print("every target met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
