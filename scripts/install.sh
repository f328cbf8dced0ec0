#!/usr/bin/env bash
# Install what vpsctl needs on Debian 12: libvirt + QEMU, image-building tools, a virtualenv.
#   scripts/install.sh          runtime only
#   scripts/install.sh --test   plus the test and lint tools
#   scripts/install.sh --bench  plus what scripts/bench.sh needs (matplotlib, virt-install)
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
[ "${1:-}" = "--test" ] && extras="[test,postgres]"
[ "${1:-}" = "--bench" ] && extras="[test,postgres,bench]"
test_packages=()
[ "${1:-}" = "--test" ] && test_packages=(postgresql openssh-server)
[ "${1:-}" = "--bench" ] && test_packages=(postgresql openssh-server virtinst)

if [ "$(id -u)" -ne 0 ]; then
    echo "run as root (or with sudo): it installs Debian packages and starts libvirtd" >&2
    exit 1
fi

packages=(
    # hypervisor; libvirt's nwfilters (clean-traffic isolates the guests) are in
    # libvirt-daemon-config-nwfilter and run as ebtables, iptables and ip6tables rules (iptables)
    libvirt-daemon-system libvirt-daemon-config-nwfilter libvirt-clients qemu-system-x86 qemu-utils dnsmasq-base
    iptables iproute2
    # building libvirt-python
    libvirt-dev pkg-config gcc python3-dev python3-venv
    # guest images, built from Debian packages (images/)
    linux-image-cloud-amd64 busybox-static dropbear-bin syslinux syslinux-common extlinux mtools
    dosfstools e2fsprogs fdisk cpio kmod debootstrap genisoimage cloud-image-utils
    # reaching guests inside a network namespace; ssh client for checks
    netcat-openbsd openssh-client procps
    # Ansible hooks at lifecycle events (orchestrator/workflows/hooks.py runs ansible-playbook through ansible-runner)
    ansible-core
    "${test_packages[@]}"
)
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
log=$(mktemp)
if ! { .venv/bin/pip install -q --disable-pip-version-check -U pip wheel setuptools &&
       .venv/bin/pip install -q --disable-pip-version-check -e ".${extras}"; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    exit 1
fi
rm -f "$log"
.venv/bin/python -c "import libvirt, fastapi, sqlmodel, paramiko, ansible_runner"
echo "installed: .venv/bin/vpsctl"
