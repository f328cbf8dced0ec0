#!/usr/bin/env bash
# Regenerate every table of docs/benchmarks.md and its plots (docs/benchmarks-*.png) against a
# real libvirtd (in its own network namespace, as for the tests) and PostgreSQL, each table with
# the date, the commit and the machine read from the system; exit non-zero listing every target
# missed (bench/run.py).  Then the load benchmark, when there is one (bench/load_bench.py).
#   scripts/bench.sh                  every benchmark (long: real guests booting)
#   scripts/bench.sh lists create     some of them (queue fleet lists create operations concurrent load)
#   BENCH_QUICK=1 scripts/bench.sh    small counts: a check that every benchmark runs
#   BENCH_OUT=/tmp/b/benchmarks.md    write the report (and the plots beside it) there instead
#   VPSCTL_VENV=/path/to/venv         use that virtualenv as it is, without installing anything
#   BENCH_TIMEOUT=seconds             bound of each of the two runs (default 7200)
set -euo pipefail
cd "$(dirname "$0")/.."
export VPSCTL_TEST_NETNS=${VPSCTL_TEST_NETNS:-vpsctl-test}
export VPSCTL_IMAGE_CACHE_DIR=${VPSCTL_IMAGE_CACHE_DIR:-/var/cache/vpsctl/images}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -n "${VPSCTL_VENV:-}" ]; then
    python="$VPSCTL_VENV/bin/python"
else
    scripts/install.sh --bench
    python=.venv/bin/python
fi

started_libvirt=0
started_postgres=0
cleanup() {
    [ "$started_libvirt" = 1 ] && scripts/libvirt-host.sh stop "$VPSCTL_TEST_NETNS" >/dev/null 2>&1 || true
    [ "$started_postgres" = 1 ] && scripts/postgres.sh stop || true
}
trap cleanup EXIT
if ! timeout 5 virsh -c qemu:///system version >/dev/null 2>&1; then
    scripts/libvirt-host.sh start "$VPSCTL_TEST_NETNS"
    started_libvirt=1
fi
if [ -z "${VPSCTL_TEST_POSTGRES_URL:-}" ]; then
    pg_lsclusters -h 2>/dev/null | awk '{print $4}' | grep -q online || started_postgres=1
    VPSCTL_TEST_POSTGRES_URL=$(scripts/postgres.sh start)
    export VPSCTL_TEST_POSTGRES_URL
fi
VPSCTL_STATE_DIR=$(mktemp -d) "$python" -m orchestrator.cli image build tiny >/dev/null

# Which to run: the names given (``load`` for the load benchmark), or every one.
names=()
load=1
if [ "$#" -gt 0 ]; then
    load=0
    for name in "$@"; do
        if [ "$name" = load ]; then load=1; else names+=("$name"); fi
    done
fi
status=0
if [ "$#" -eq 0 ] || [ "${#names[@]}" -gt 0 ]; then
    timeout -k 60 "${BENCH_TIMEOUT:-7200}" "$python" -m bench.run "${names[@]}" || status=1
fi
# The load benchmark writes its own section (between <!-- load:begin --> and <!-- load:end -->).
if [ "$load" = 1 ] && [ -f bench/load_bench.py ]; then
    timeout -k 60 "${BENCH_TIMEOUT:-7200}" "$python" -m bench.load_bench || { status=1; echo "bench.load_bench failed" >&2; }
fi
exit "$status"
