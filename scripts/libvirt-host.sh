#!/usr/bin/env bash
# Start or stop the local libvirtd (and virtlogd) without systemd.
#
#   scripts/libvirt-host.sh start [NETNS]   start unless already answering
#   scripts/libvirt-host.sh stop  [NETNS]   stop what `start` started (and the guests)
#
# NETNS: run the daemon inside that network namespace (created if missing, loopback only), so
# its bridges, DHCP server and guests live there and reach no other network.  Tests use this.
# If KVM does not really work (scripts/kvm-probe.sh), /dev/kvm is hidden from the daemon in a
# private mount namespace so libvirt reports only TCG and does not re-probe on every start.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
action=${1:-start}
netns=${2:-${VPSCTL_HOST_NETNS:-}}
pidfile=/run/libvirtd.pid

answering() { timeout 10 virsh -c qemu:///system version >/dev/null 2>&1; }

in_ns() {
    if [ -n "$netns" ]; then ip netns exec "$netns" "$@"; else "$@"; fi
}

case "$action" in
start)
    if answering; then echo "libvirtd already running"; exit 0; fi
    if [ -n "$netns" ] && ip netns list | grep -qw "$netns" && [ -z "$(ip netns pids "$netns")" ]; then
        # Left over by a daemon that was killed: its bridges and rules would be in the way.
        ip netns delete "$netns"
    fi
    if [ -n "$netns" ] && ! ip netns list | grep -qw "$netns"; then
        ip netns add "$netns"
        ip -n "$netns" link set lo up
    fi
    hide_kvm=""
    if ! "$here/kvm-probe.sh"; then
        # Cover /dev/kvm with a file that the QEMU user (libvirt-qemu) may not open.  libvirt
        # then finds KVM unusable, caches capabilities without it and keeps that cache; with
        # /dev/null over it instead, KVM looks usable but never probes as such, and libvirt
        # re-probes QEMU (15-50 s) on every define and start.
        # QEMU's per-domain /dev namespace would try to copy that mount into each guest's
        # /dev and fail, so this daemon (only) runs guests without it: qemu.conf is overlaid
        # inside the daemon's private mount namespace, the host's file is untouched.
        hide_kvm="touch /run/vpsctl-no-kvm; chmod 000 /run/vpsctl-no-kvm;
                  mount --bind /run/vpsctl-no-kvm /dev/kvm 2>/dev/null || true;
                  cp /etc/libvirt/qemu.conf /run/vpsctl-qemu.conf;
                  echo 'namespaces = [ ]' >> /run/vpsctl-qemu.conf;
                  mount --bind /run/vpsctl-qemu.conf /etc/libvirt/qemu.conf;"
        echo "KVM does not run guests here: hiding /dev/kvm from libvirtd (TCG emulation)"
    fi
    # The mail block's nwfilter rules (tcp, tcp-ipv6) are iptables and ip6tables rules on bridged
    # traffic: they need br_netfilter, and bridged frames passed to both (per network namespace).
    modprobe br_netfilter 2>/dev/null || true
    in_ns sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1 2>/dev/null || true
    mkdir -p /run/libvirt /var/log/libvirt
    # Stale pid/socket files from a killed daemon make libvirtd refuse to start.
    if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then rm -f "$pidfile"; fi
    in_ns unshare -m --propagation private sh -c \
        "$hide_kvm pgrep -x virtlogd >/dev/null || virtlogd -d; exec libvirtd -d -p $pidfile"
    for _ in $(seq 1 60); do
        answering && { echo "libvirtd running${netns:+ in netns $netns}"; exit 0; }
        sleep 0.5
    done
    echo "libvirtd did not answer" >&2
    exit 1
    ;;
stop)
    if answering; then
        for dom in $(virsh -c qemu:///system list --name 2>/dev/null); do
            virsh -c qemu:///system destroy "$dom" >/dev/null 2>&1 || true
        done
    fi
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    pkill -x libvirtd 2>/dev/null || true
    pkill -x virtlogd 2>/dev/null || true
    for _ in $(seq 1 20); do pgrep -x libvirtd >/dev/null || break; sleep 0.5; done
    pkill -f 'dnsmasq --conf-file=/var/lib/libvirt/dnsmasq/' 2>/dev/null || true
    if [ -n "$netns" ] && ip netns list | grep -qw "$netns"; then
        ip netns pids "$netns" | xargs -r kill 2>/dev/null || true
        sleep 0.5
        ip netns delete "$netns"
    fi
    echo "libvirtd stopped"
    ;;
*)
    echo "usage: $0 start|stop [NETNS]" >&2; exit 2 ;;
esac
