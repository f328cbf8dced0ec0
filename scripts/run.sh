#!/usr/bin/env bash
# Set up everything on a fresh Debian 12 machine and run the control plane on its embedded
# default: SQLite in /var/lib/vpsctl, an in-process worker, the local libvirtd as first host.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
scripts/libvirt-host.sh start "${VPSCTL_HOST_NETNS:-}"
if [ -n "${VPSCTL_HOST_NETNS:-}" ] && [ -z "${VPSCTL_GUEST_PROXY_COMMAND:-}" ]; then
    # Guests live in that namespace: reach their SSH port through it.
    export VPSCTL_GUEST_PROXY_COMMAND="ip netns exec $VPSCTL_HOST_NETNS nc -w 10 %h %p"
fi
for image in ${VPSCTL_BUILD_IMAGES:-tiny debian-12}; do
    echo "image $image (cached after the first build)..."
    .venv/bin/vpsctl image build "$image"
done
exec .venv/bin/vpsctl serve "$@"
