#!/usr/bin/env bash
# Run the benchmarks against a real libvirtd (started in its own network namespace, as for the
# tests) and write the results to docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export VPSCTL_TEST_NETNS=${VPSCTL_TEST_NETNS:-vpsctl-test}
export VPSCTL_IMAGE_CACHE_DIR=${VPSCTL_IMAGE_CACHE_DIR:-/var/cache/vpsctl/images}
scripts/install.sh --test
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends virtinst >/dev/null
started=0
trap '[ "$started" = 1 ] && scripts/libvirt-host.sh stop "$VPSCTL_TEST_NETNS" >/dev/null 2>&1 || true' EXIT
if ! timeout 5 virsh -c qemu:///system version >/dev/null 2>&1; then
    scripts/libvirt-host.sh start "$VPSCTL_TEST_NETNS"
    started=1
fi
VPSCTL_STATE_DIR=$(mktemp -d) .venv/bin/vpsctl image build tiny >/dev/null
for bench in bench/*_bench.py; do .venv/bin/python -m "bench.$(basename "$bench" .py)"; done
