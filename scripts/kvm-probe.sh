#!/usr/bin/env bash
# Does hardware virtualisation actually run a guest here?  /dev/kvm can exist while KVM guests
# hang (broken nested virtualisation): firmware still runs, the kernel never gets far, and
# libvirt then pays ~48 s of re-probing on every domain start.  So we boot a real kernel under
# KVM with no root filesystem: it panics and, with -no-reboot, QEMU exits by itself.  A KVM that
# works does that in about a second; one that hangs does not within the timeout.
# Exit 0: KVM works.  Exit 1: use TCG (domain type 'qemu').
set -u
[ -c /dev/kvm ] || exit 1
qemu=$(command -v qemu-system-x86_64) || exit 1
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | head -n 1)
[ -n "$kernel" ] || exit 1
exec timeout -s KILL "${KVM_PROBE_TIMEOUT:-10}" "$qemu" -accel kvm -machine pc -m 128 -nodefaults \
    -display none -no-reboot -kernel "$kernel" -append "console=ttyS0 panic=-1" \
    -serial null >/dev/null 2>&1
