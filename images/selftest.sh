#!/bin/bash
#
# images/selftest.sh IMAGE_QCOW2 [TIMEOUT_SECONDS]
#
# Boot an image the way the orchestrator will use it and check that it is
# reachable by ssh with the keys from a NoCloud seed:
#   - root disk: a throwaway qcow2 overlay on IMAGE (bigger than the image,
#     like a VPS disk), virtio;
#   - seed: cloud-localds ISO (label cidata) attached as a virtio DISK, with a
#     fresh client key in ssh_authorized_keys and a fresh ed25519 host key in
#     ssh_keys; ssh must present exactly that host key;
#   - network: QEMU user mode, restricted (the guest cannot reach anything
#     but the host forward), ssh forwarded from 127.0.0.1:random port;
#   - TCG only (no KVM here), serial console to a log file;
#   - finally ACPI power button (system_powerdown, what `virsh shutdown`
#     sends) and the guest must power itself off.
# Exits non-zero on any failure and prints the end of the console log.
#
# Environment: SELFTEST_MEM (MiB, default 256), SELFTEST_SMP (default 1),
# SELFTEST_MACHINE (default pc), SELFTEST_KEEP=1 keeps the work directory.
set -euo pipefail

usage() { echo "usage: $0 IMAGE_QCOW2 [TIMEOUT_SECONDS]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
image=$(realpath "$1")
timeout=${2:-300}
mem=${SELFTEST_MEM:-256}
smp=${SELFTEST_SMP:-1}
machine=${SELFTEST_MACHINE:-pc}
[[ -f $image ]] || { echo "selftest: $image not found" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/selftest.XXXXXX")
qemu_pid=""
cleanup() {
    if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then
        kill "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
    fi
    if [[ ${SELFTEST_KEEP:-0} = 1 ]]; then
        echo "selftest: work directory kept: $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT

fail() {
    echo "selftest: FAIL: $*" >&2
    if [[ -s $tmp/console.log ]]; then
        echo "---- last lines of the serial console ----" >&2
        tail -n 40 "$tmp/console.log" | tr -d '\r' >&2
        echo "------------------------------------------" >&2
    fi
    exit 1
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# --- keys and seed ------------------------------------------------------------
ssh-keygen -q -t ed25519 -N '' -C selftest-client -f "$tmp/client"
ssh-keygen -q -t ed25519 -N '' -C selftest-host -f "$tmp/hostkey"
name=selftest-$RANDOM

cat >"$tmp/meta-data" <<EOF
instance-id: iid-$name
local-hostname: $name
EOF
# Same format as the orchestrator writes (see images/README.md).
{
    echo "#cloud-config"
    echo "hostname: $name"
    echo "disable_root: false"
    echo "ssh_pwauth: false"
    echo "ssh_authorized_keys:"
    echo "  - $(cat "$tmp/client.pub")"
    echo "ssh_keys:"
    echo "  ed25519_private: |"
    sed 's/^/    /' "$tmp/hostkey"
    echo "  ed25519_public: $(cat "$tmp/hostkey.pub")"
} >"$tmp/user-data"
cloud-localds "$tmp/seed.img" "$tmp/user-data" "$tmp/meta-data"

# --- root disk: overlay bigger than the image ---------------------------------
virt=$(qemu-img info --output=json "$image" | awk -F'[:,]' '/"virtual-size"/ { gsub(/ /, "", $2); print $2; exit }')
gib=$((1024 * 1024 * 1024))
size=$((virt < gib ? gib : (virt + gib - 1) / gib * gib + gib))
qemu-img create -q -f qcow2 -b "$image" -F qcow2 "$tmp/overlay.qcow2" "$size"

# --- free local port -----------------------------------------------------------
port=""
for _ in $(seq 50); do
    p=$(shuf -i 20000-60999 -n 1)
    # A refused connection means nobody listens there.
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[[ -n $port ]] || fail "no free port found"

printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1-2 "$tmp/hostkey.pub")" >"$tmp/known_hosts"
ssh_opts=(-o StrictHostKeyChecking=yes -o UserKnownHostsFile="$tmp/known_hosts"
          -o GlobalKnownHostsFile=/dev/null -o BatchMode=yes -o IdentitiesOnly=yes
          -o ConnectTimeout=10 -o LogLevel=ERROR -i "$tmp/client" -p "$port")

# --- boot ----------------------------------------------------------------------
start=$(now)
qemu-system-x86_64 -accel tcg -machine "$machine" -m "$mem" -smp "$smp" \
    -nographic -no-reboot \
    -serial "file:$tmp/console.log" \
    -monitor "unix:$tmp/monitor.sock,server=on,wait=off" \
    -drive "file=$tmp/overlay.qcow2,if=virtio,format=qcow2" \
    -drive "file=$tmp/seed.img,if=virtio,format=raw,readonly=on" \
    -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$port-:22" \
    -device virtio-net-pci,netdev=n0 \
    </dev/null >"$tmp/qemu.out" 2>&1 &
qemu_pid=$!
echo "selftest: booting $(basename "$image") (tcg, ${mem} MiB, ${smp} vCPU, ssh on 127.0.0.1:$port)"

deadline=$(($(date +%s) + timeout))
while :; do
    kill -0 "$qemu_pid" 2>/dev/null || fail "qemu exited during boot: $(cat "$tmp/qemu.out")"
    [[ $(date +%s) -lt $deadline ]] || fail "no ssh after ${timeout}s"
    if ssh "${ssh_opts[@]}" root@127.0.0.1 true </dev/null 2>"$tmp/ssh.err"; then
        break
    fi
    # A host key mismatch is a hard failure, not a "not up yet".
    if grep -q 'REMOTE HOST IDENTIFICATION HAS CHANGED\|Host key verification failed' "$tmp/ssh.err"; then
        fail "wrong ssh host key: $(cat "$tmp/ssh.err")"
    fi
    sleep 1
done
boot_time=$(elapsed "$start" "$(now)")

out=$(ssh "${ssh_opts[@]}" root@127.0.0.1 \
    'hostname; cat /proc/meminfo | head -1; cat /sys/block/vda/size; ls /data' </dev/null) ||
    fail "ssh command failed"
printf "  guest: %s\n" "${out//$'\n'/$'\n  guest: '}"
[[ $(echo "$out" | head -n1) = "$name" ]] || fail "hostname is not $name"
[[ $(echo "$out" | sed -n 3p) = $((size / 512)) ]] || fail "vda is not $size bytes"
echo "selftest: boot to ssh: ${boot_time}s"

# --- ACPI shutdown -------------------------------------------------------------
down_start=$(now)
echo system_powerdown | socat - "UNIX-CONNECT:$tmp/monitor.sock" >/dev/null
down_deadline=$(($(date +%s) + 120))
while kill -0 "$qemu_pid" 2>/dev/null; do
    [[ $(date +%s) -lt $down_deadline ]] || fail "guest did not power off within 120s of system_powerdown"
    sleep 0.2
done
wait "$qemu_pid" || fail "qemu exited with an error: $(cat "$tmp/qemu.out")"
qemu_pid=""
echo "selftest: powered off $(elapsed "$down_start" "$(now)")s after system_powerdown"
echo "selftest: PASS"
