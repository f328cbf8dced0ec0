#!/usr/bin/env bash
# A second (third, ...) hypervisor host on this machine, for the fleet tests: a libvirtd with its
# own network namespace and its own mount namespace, so it has its own /etc/libvirt (no domain,
# network or pool of another daemon), /run/libvirt (its socket), /var/lib/libvirt (its storage
# pools, its guests' disks), and an sshd for qemu+ssh:// (root login by key only).
#
#   scripts/extra-host.sh start NAME DIR [SSH_PORT]   prints "qemu+unix:///system?socket=..."
#   scripts/extra-host.sh bare  NAME DIR SSH_PORT     the namespaces and sshd, no libvirtd yet (for
#                                                     a playbook to prepare: vpsctl host prepare)
#   scripts/extra-host.sh stop  NAME DIR
#   scripts/extra-host.sh rekey NAME DIR SSH_PORT     a new SSH host key, sshd restarted with it
#   scripts/extra-host.sh down  NAME DIR              the host fails (every process of it killed)
#   scripts/extra-host.sh up    NAME DIR [SSH_PORT]   it comes back (libvirtd, sshd started again)
#   scripts/extra-host.sh kill-libvirtd  NAME DIR     libvirtd alone crashes (SIGKILL): its guests,
#                                                     virtlogd, dnsmasq and sshd keep running
#   scripts/extra-host.sh start-libvirtd NAME DIR     libvirtd started again (it finds its running
#                                                     guests in the /run it left)
#
# NAME is the network namespace (created here, loopback only, deleted by stop); DIR a folder
# for the host's files.  With SSH_PORT, an sshd listens inside NAME on that port, reached from
# the machine through a veth pair (10.251.N.1 here, 10.251.N.2 in NAME; N from the port) whose
# far end only this test run uses; DIR/ssh_host_ed25519_key.pub is its host key, DIR/client_key
# the key root logs in with.  /dev/kvm is hidden from the daemon when KVM does not work
# (scripts/kvm-probe.sh), as for the main host (scripts/libvirt-host.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
action=${1:?usage: $0 start|stop NAME DIR [SSH_PORT]}
name=${2:?NAME}
dir=${3:?DIR}
ssh_port=${4:-}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
socket="$dir/run/libvirt-sock"
uri="qemu+unix:///system?socket=$socket"
veth="veth-${name#vpsctl-}"  # the machine's end of the wire to the namespace (15 characters at most)
veth=${veth:0:15}

answering() { timeout 10 virsh -c "$uri" version >/dev/null 2>&1; }

stop_host() {
    if answering; then
        for dom in $(virsh -c "$uri" list --name 2>/dev/null); do
            virsh -c "$uri" destroy "$dom" >/dev/null 2>&1 || true
        done
    fi
    for pidfile in "$dir/libvirtd.pid" "$dir/virtlogd.pid" "$dir/sshd.pid"; do
        [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
    done
    if ip netns list | grep -qw "$name"; then
        ip netns pids "$name" | xargs -r kill 2>/dev/null || true
        sleep 0.5
        ip netns pids "$name" | xargs -r kill -9 2>/dev/null || true
        ip netns delete "$name"
    fi
    ip link delete "$veth" 2>/dev/null || true
}

start_libvirtd() {
    hide_kvm=""
    [ -e "$dir/no-kvm" ] && hide_kvm="mount --bind $dir/no-kvm /dev/kvm 2>/dev/null || true;"
    ip netns exec "$name" unshare -m --propagation private sh -c "
        mount --bind $dir/etc /etc/libvirt && mount --bind $dir/run /run/libvirt &&
        mount --bind $dir/lib /var/lib/libvirt && $hide_kvm
        { [ -f $dir/virtlogd.pid ] && kill -0 \$(cat $dir/virtlogd.pid) 2>/dev/null || virtlogd -d -p $dir/virtlogd.pid; }
        exec libvirtd -d -p $dir/libvirtd.pid"
    for _ in $(seq 1 60); do answering && break; sleep 0.5; done
    answering || { echo "libvirtd of $name did not answer" >&2; exit 1; }
}

start_sshd() {
    n=$(( ssh_port % 250 + 1 ))
    mkdir -p /run/sshd
    # libvirt's client runs "nc -U socket" (or virt-ssh-helper) on the far side: the default
    # socket path must be this host's, so sshd runs inside the mount namespace too (its
    # /etc/libvirt and /var/lib/libvirt as well, and a /run of its own for the daemons' pid
    # files: a playbook run over SSH prepares this host and starts its libvirtd).
    ip netns exec "$name" unshare -m --propagation private sh -c "
        mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -p /run/sshd /run/libvirt &&
        mount --bind $dir/etc /etc/libvirt && mount --bind $dir/run /run/libvirt &&
        mount --bind $dir/lib /var/lib/libvirt &&
        exec /usr/sbin/sshd -p $ssh_port -o ListenAddress=10.251.$n.2 -o PidFile=$dir/sshd.pid \
            -h $dir/ssh_host_ed25519_key -o AuthorizedKeysFile=$dir/authorized_keys \
            -o PasswordAuthentication=no -o PermitRootLogin=prohibit-password -o StrictModes=no"
}

case "$action" in
start|bare)
    stop_host
    # A new host each time: the state a daemon keeps in /run and /var/lib (pools it had, guests)
    # would come back without their definitions.
    rm -rf "$dir/etc" "$dir/run" "$dir/lib" "$dir/log"
    mkdir -p "$dir/etc" "$dir/run" "$dir/lib" "$dir/log"
    # A private /etc/libvirt: the machine's configuration without any domain, network or pool.
    cp -a /etc/libvirt/. "$dir/etc/"
    rm -rf "$dir/etc/qemu/"*.xml "$dir/etc/qemu/networks/"*.xml "$dir/etc/qemu/networks/autostart" \
           "$dir/etc/qemu/autostart" "$dir/etc/storage/"*.xml "$dir/etc/storage/autostart" \
           2>/dev/null || true
    rm -f "$dir/no-kvm"
    ip netns add "$name"
    ip -n "$name" link set lo up
    modprobe br_netfilter 2>/dev/null || true
    ip netns exec "$name" sysctl -qw net.bridge.bridge-nf-call-iptables=1 \
        net.bridge.bridge-nf-call-ip6tables=1 2>/dev/null || true
    if [ "$action" = start ]; then
        if ! "$here/kvm-probe.sh" >/dev/null 2>&1; then
            touch "$dir/no-kvm"; chmod 000 "$dir/no-kvm"
            echo 'namespaces = [ ]' >> "$dir/etc/qemu.conf"
        fi
        start_libvirtd
    fi
    if [ -n "$ssh_port" ]; then
        n=$(( ssh_port % 250 + 1 ))
        ip link add "$veth" type veth peer name eth0 netns "$name"
        ip addr add "10.251.$n.1/30" dev "$veth"
        ip link set "$veth" up
        ip -n "$name" addr add "10.251.$n.2/30" dev eth0
        ip -n "$name" link set eth0 up
        [ -f "$dir/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N "" -f "$dir/ssh_host_ed25519_key"
        [ -f "$dir/client_key" ] || ssh-keygen -q -t ed25519 -N "" -C "vpsctl@fleet-test" -f "$dir/client_key"
        cp "$dir/client_key.pub" "$dir/authorized_keys"
        start_sshd
    fi
    if [ "$action" = start ]; then echo "$uri"; else echo "host $name: bare (no libvirtd), sshd on port $ssh_port"; fi
    ;;
down)
    # The host fails: every process of it (libvirtd, its guests' QEMU, dnsmasq, sshd) killed at
    # once; its disks and definitions stay, as on a machine that lost power.
    ip netns pids "$name" | xargs -r kill -9 2>/dev/null || true
    for _ in $(seq 1 50); do [ -z "$(ip netns pids "$name")" ] && break; sleep 0.1; done
    rm -f "$dir/libvirtd.pid" "$dir/virtlogd.pid" "$dir/sshd.pid"
    # What a power loss takes too: the bridges and taps the daemon had made (not the wires to the
    # machine and to the other hosts).
    for link in $(ip -n "$name" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1); do
        case "$link" in lo|eth0|mig0) ;; *) ip -n "$name" link delete "$link" 2>/dev/null || true ;; esac
    done
    echo "host $name is down"
    ;;
up)
    # Back after a failure: /run starts empty (a tmpfs on a real machine), the rest as it was.
    find "$dir/run" -mindepth 1 -delete 2>/dev/null || true
    start_libvirtd
    [ -n "$ssh_port" ] && start_sshd
    echo "host $name is up"
    ;;
kill-libvirtd)
    pid=$(cat "$dir/libvirtd.pid" 2>/dev/null || true)
    [ -n "$pid" ] || { echo "no libvirtd of $name running" >&2; exit 1; }
    kill -9 "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    ! kill -0 "$pid" 2>/dev/null || { echo "libvirtd of $name did not die" >&2; exit 1; }
    rm -f "$dir/libvirtd.pid"
    echo "libvirtd of $name killed (pid $pid)"
    ;;
start-libvirtd)
    start_libvirtd
    echo "libvirtd of $name started"
    ;;
rekey)
    # The host's SSH key changes (a reinstalled host, or another machine answering at its address).
    [ -n "$ssh_port" ] || { echo "rekey: SSH_PORT" >&2; exit 2; }
    [ -f "$dir/sshd.pid" ] && kill "$(cat "$dir/sshd.pid")" 2>/dev/null || true
    for _ in $(seq 1 20); do [ -f "$dir/sshd.pid" ] || break; sleep 0.1; done
    rm -f "$dir/sshd.pid" "$dir/ssh_host_ed25519_key" "$dir/ssh_host_ed25519_key.pub"
    ssh-keygen -q -t ed25519 -N "" -f "$dir/ssh_host_ed25519_key"
    start_sshd
    echo "host $name presents a new SSH host key"
    ;;
stop)
    stop_host
    echo "host $name stopped"
    ;;
*)
    echo "usage: $0 start|bare|stop|down|up|kill-libvirtd|start-libvirtd|rekey NAME DIR [SSH_PORT]" >&2; exit 2 ;;
esac
