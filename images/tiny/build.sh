#!/bin/bash
#
# images/tiny/build.sh OUT_FILE
#
# Build the "tiny" image: Debian cloud kernel + busybox/dropbear initramfs,
# booted by syslinux from a FAT partition, with a small ext4 partition
# labelled "data" that the guest mounts on /data (the only persistent part).
# It understands the orchestrator's NoCloud seed (see rootfs/init and
# rootfs/usr/lib/tiny/parse-seed.awk) and boots to ssh in a few seconds even
# under TCG.
#
# Build requirements (Debian packages): linux-image-cloud-amd64, busybox-static,
# dropbear-bin, syslinux, syslinux-common, mtools, dosfstools, e2fsprogs,
# fdisk, cpio, kmod, qemu-utils.  No mounts and no loop devices are used.
#
# Environment:
#   TINY_KVER   kernel version to use (default: newest *-cloud-amd64 installed)
set -euo pipefail

usage() { echo "usage: $0 OUT_FILE.qcow2" >&2; exit 2; }
[[ $# -eq 1 ]] || usage
out=$1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/mkdisk.sh
. "$here/../lib/mkdisk.sh"

# Partition sizes (MiB).  The FAT partition holds ~8 MiB of kernel and ~3 MiB
# of initrd; leave room for a bigger kernel.  /data is deliberately small:
# tiny is for tests and demos, and the qcow2 stores unused blocks for free.
BOOT_MIB=24
DATA_MIB=32

# Modules loaded by /init (dependencies are added automatically).
MODULES=(virtio_pci virtio_blk virtio_net virtio_balloon virtio_rng
         virtio_console isofs button evdev)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tiny-build.XXXXXX")
cleanup() { rm -rf --one-file-system "$tmp"; rm -f "$out.tmp"; }
trap cleanup EXIT

# --- kernel -----------------------------------------------------------------
if [[ -z ${TINY_KVER:-} ]]; then
    TINY_KVER=$(find /lib/modules -mindepth 1 -maxdepth 1 -name '*-cloud-amd64' -printf '%f\n' |
                sort -V | tail -n1)
fi
kver=$TINY_KVER
[[ -n $kver && -f /boot/vmlinuz-$kver && -d /lib/modules/$kver ]] || {
    echo "tiny: no usable kernel (install linux-image-cloud-amd64 or set TINY_KVER)" >&2
    exit 1
}

stage=$tmp/initramfs
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,root,data,var/log,lib/x86_64-linux-gnu,lib64}

# --- busybox: one static binary, every applet as a relative symlink ---------
cp /bin/busybox "$stage/bin/busybox"
while read -r applet; do
    # Top-level applets (linuxrc) make no sense here: /init is ours.
    [[ $applet == */* ]] || continue
    [[ -e $stage/$applet || -L $stage/$applet ]] && continue
    # bin/x -> busybox, sbin/x -> ../bin/busybox, usr/bin/x -> ../../bin/busybox
    up=$(dirname "$applet" | sed -e 's#[^/]\+#..#g')
    ln -s "$up/bin/busybox" "$stage/$applet"
done < <("$stage/bin/busybox" --list-full)

# --- dropbear: dynamically linked, so bring its libraries along --------------
for b in /usr/sbin/dropbear /usr/bin/dropbearconvert /usr/bin/dropbearkey; do
    cp "$b" "$stage$b"
    # ldd prints "name => /path (addr)" or "/path (addr)" for the loader.
    ldd "$b" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }'
done | sort -u | while read -r lib; do
    mkdir -p "$stage$(dirname "$lib")"
    cp -L "$lib" "$stage$lib"
done

# --- kernel modules + modules.dep for busybox modprobe -----------------------
for m in "${MODULES[@]}"; do
    # "insmod /lib/modules/.../x.ko" lines for the module and its deps;
    # built-in modules print "builtin x" and need nothing.
    modprobe -S "$kver" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
done | sort -u | while read -r ko; do
    mkdir -p "$stage$(dirname "$ko")"
    cp "$ko" "$stage$ko"
done
for f in modules.order modules.builtin modules.builtin.modinfo; do
    [[ -f /lib/modules/$kver/$f ]] && cp "/lib/modules/$kver/$f" "$stage/lib/modules/$kver/"
done
depmod -b "$stage" "$kver"

# --- our files (init, scripts), device nodes needed before devtmpfs ----------
cp -a "$here/rootfs/." "$stage/"
chmod 0700 "$stage/root"
mknod -m 0600 "$stage/dev/console" c 5 1
mknod -m 0666 "$stage/dev/null" c 1 3

# --- boot partition contents --------------------------------------------------
boot=$tmp/boot
mkdir -p "$boot"
cp "/boot/vmlinuz-$kver" "$boot/vmlinuz"
# Sorted, owner-normalised, no timestamps in gzip: the archive only changes
# when its contents do.
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
    cpio -o -H newc -R 0:0 --quiet) | gzip -9n >"$boot/initrd.gz"

# console=ttyS0 last: it becomes /dev/console (the serial log the orchestrator
# and the tests read); tty0 still shows kernel messages on a VNC display.
# quiet + loglevel=3: printing the full boot log on an emulated UART costs
# seconds under TCG.  memhp_default_state=online: hot-plugged memory is
# usable at once (no udev to online it).
cat >"$boot/syslinux.cfg" <<'EOF'
DEFAULT tiny
PROMPT 0
TIMEOUT 0
LABEL tiny
  KERNEL /vmlinuz
  INITRD /initrd.gz
  APPEND console=tty0 console=ttyS0,115200n8 quiet loglevel=3 panic=10 memhp_default_state=online
EOF

# --- /data partition: starts empty (mkfs adds lost+found) --------------------
data=$tmp/data
mkdir -p "$data"

MKDISK_EXT4_OPTS="-m 0" mkdisk_assemble "$tmp" "$out.tmp" "$boot" "$BOOT_MIB" "$data" data "$DATA_MIB"
mv -f "$out.tmp" "$out"
