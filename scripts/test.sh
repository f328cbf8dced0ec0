#!/usr/bin/env bash
# Set up and run the whole test suite: lint, types, import layers, unit, API and integration tests against a
# real libvirtd + QEMU.  libvirtd runs inside its own network namespace so that guests reach
# nothing but each other and the test run; everything started here is stopped on exit.
#   scripts/test.sh [pytest args]        e.g. scripts/test.sh -k create
#   VPSCTL_TEST_DEBIAN=1 scripts/test.sh also boots the debian-12 image (slow; see README)
set -euo pipefail
cd "$(dirname "$0")/.."
export VPSCTL_TEST_NETNS=${VPSCTL_TEST_NETNS:-vpsctl-test}
export VPSCTL_TEST_REQUIRE_LIBVIRT=1
export VPSCTL_TEST_REQUIRE_ANSIBLE=1  # hooks run the real ansible-playbook (ansible-core, scripts/install.sh)
export VPSCTL_IMAGE_CACHE_DIR=${VPSCTL_IMAGE_CACHE_DIR:-/var/cache/vpsctl/images}

scripts/install.sh --test
.venv/bin/ruff check orchestrator api tests bench
.venv/bin/mypy orchestrator api
.venv/bin/lint-imports --no-cache  # the layers (pyproject.toml, docs/architecture.md)

started=0
cleanup() {
    # The fleet tests' extra hosts stop with them; this is for a run cut short.
    for host in /var/tmp/vpsctl-fleet/vpsctl-h[0-9f]*; do
        [ -d "$host" ] && scripts/extra-host.sh stop "$(basename "$host")" "$host" >/dev/null 2>&1 || true
    done
    # The fault tests' small pools (libvirt mounts them) and private PostgreSQL servers.
    for pool in $(virsh -c qemu:///system pool-list --all --name 2>/dev/null | grep '^vpsctl-full-' || true); do
        virsh -c qemu:///system pool-destroy "$pool" >/dev/null 2>&1 || true
        virsh -c qemu:///system pool-undefine "$pool" >/dev/null 2>&1 || true
    done
    for pg in /var/tmp/vpsctl-pg-*; do
        [ -d "$pg/data" ] && runuser -u postgres -- "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/pg_ctl" \
            -D "$pg/data" -m immediate stop >/dev/null 2>&1 || true
    done
    rm -rf /var/tmp/vpsctl-full-* /var/tmp/vpsctl-pg-*
    [ "$started" = 1 ] && scripts/libvirt-host.sh stop "$VPSCTL_TEST_NETNS" >/dev/null 2>&1 || true
    scripts/postgres.sh stop
}
trap cleanup EXIT
# A real PostgreSQL on loopback for the tests that claim multi-worker safety.
VPSCTL_TEST_POSTGRES_URL=$(scripts/postgres.sh start)
export VPSCTL_TEST_POSTGRES_URL VPSCTL_TEST_REQUIRE_POSTGRES=1
if ! timeout 5 virsh -c qemu:///system version >/dev/null 2>&1; then
    scripts/libvirt-host.sh start "$VPSCTL_TEST_NETNS"
    started=1
elif ! ip netns list | grep -qw "$VPSCTL_TEST_NETNS"; then
    # A libvirtd started otherwise (e.g. by systemd) runs outside the test namespace: its guests
    # would reach the host's networks, and the tests that host listeners in the namespace (the
    # mail block's) could not run.  They are required, so refuse rather than run without them.
    echo "a libvirtd already answers at qemu:///system but network namespace $VPSCTL_TEST_NETNS does not exist:" \
         "stop that libvirtd (scripts/libvirt-host.sh stop, or systemctl stop libvirtd) so that this run" \
         "starts one inside the namespace" >&2
    exit 1
fi

images="tiny"
[ "${VPSCTL_TEST_DEBIAN:-0}" = 1 ] && images="tiny debian-12"
for image in $images; do
    VPSCTL_STATE_DIR=$(mktemp -d) .venv/bin/vpsctl image build "$image" >/dev/null
done

markers="not slow"
[ "${VPSCTL_TEST_DEBIAN:-0}" = 1 ] && markers=""
# Two test processes by default (VPSCTL_TEST_PROCESSES=1: one), one test file each at a time: the
# tests share the one main libvirtd, each touching only its own VPS; each database test works in a
# schema or file of its own; each process starts extra hosts of its own (tests/integration/conftest.py).
count="${VPSCTL_TEST_PROCESSES:-2}"
processes=()
[ "$count" -gt 1 ] && processes=(-n "$count" --dist loadfile)
.venv/bin/pytest -m "$markers" "${processes[@]}" "$@"
