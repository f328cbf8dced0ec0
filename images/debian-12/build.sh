#!/bin/bash
#
# images/debian-12/build.sh OUT_FILE
#
# Build a Debian 12 (bookworm) cloud image: debootstrap root filesystem with
# the cloud kernel, cloud-init (NoCloud only), openssh-server, ifupdown/DHCP
# and growpart; booted by syslinux from a FAT partition (images/lib/mkdisk.sh),
# root on the last partition so cloud-init's growpart can grow it to the size
# of the VPS disk.
#
# Runs as root (debootstrap, chroot).  The disk is assembled from files, no
# loop devices and no mounts; debootstrap's own /proc,/sys mounts in the
# chroot happen inside a private mount namespace, so they vanish with it
# even if the build is interrupted.
#
# Environment:
#   DEBIAN_MIRROR   apt mirror (default: the Debian URI of the host's apt
#                   sources, else http://deb.debian.org/debian)
#   DEBIAN12_CACHE  directory to cache the installed root filesystem (tar)
#                   between builds; keyed by the package list (optional)
set -euo pipefail

usage() { echo "usage: $0 OUT_FILE.qcow2" >&2; exit 2; }
[[ $# -eq 1 ]] || usage
out=$(realpath -m "$1")
[[ $(id -u) = 0 ]] || { echo "debian-12: must run as root (debootstrap, chroot)" >&2; exit 1; }

# Re-run inside a private mount namespace (see above).
if [[ -z ${DEBIAN12_IN_NS:-} ]]; then
    # bash "$0": the orchestrator runs recipes as `bash build.sh OUT`.
    DEBIAN12_IN_NS=1 exec unshare --mount --propagation private -- bash "$0" "$@"
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/mkdisk.sh
. "$here/../lib/mkdisk.sh"

SUITE=bookworm
# Virtual disk size is 2 GiB (= min_disk_gib): 1 MiB MBR gap + FAT + root.
BOOT_MIB=128
ROOT_MIB=$((2048 - 1 - BOOT_MIB))
ROOT_LABEL=debian-root

# Package set on top of minbase.  No Recommends: every package is chosen.
PACKAGES=(
    systemd-sysv udev dbus                      # init, device manager, logind/hostnamed
    linux-image-cloud-amd64 initramfs-tools     # kernel for virtual machines
    cloud-init cloud-guest-utils fdisk          # NoCloud seed, growpart (sfdisk)
    openssh-server                              # access
    ifupdown isc-dhcp-client netbase iproute2   # network (cloud-init renders ENI)
    e2fsprogs systemd-timesyncd qemu-guest-agent sudo
    ca-certificates less nano procps iputils-ping
    zstd                                        # initramfs-tools' default compressor
)

# --- find the Debian mirror from the host's apt configuration ----------------
find_mirror() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        # deb822 "URIs: x" or one-line "deb [opts] x suite ..."; skip security.
        uri=$(awk '/^URIs:/ { print $2 } /^deb[ \t]/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; break } }' "$f" |
              grep -E '/debian/?$' | grep -v security | head -n1) || true
        [[ -n $uri ]] && { echo "${uri%/}"; return; }
    done
    echo http://deb.debian.org/debian
}
mirror=${DEBIAN_MIRROR:-$(find_mirror)}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/debian12-build.XXXXXX")
# Unmount whatever debootstrap left mounted under DIR (deepest first).
umount_under() {
    local m
    awk -v d="$1/" 'index($2 "/", d) == 1 { print $2 }' /proc/self/mounts | sort -r |
        while read -r m; do umount -l "$m" || true; done
}
cleanup() {
    umount_under "$tmp"
    # --one-file-system: even if an unmount failed, never delete through it.
    rm -rf --one-file-system "$tmp" 2>/dev/null || true
    rm -f "$out.tmp"
}
trap cleanup EXIT
root=$tmp/rootfs

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }

# --- root filesystem: debootstrap (or the cache) -------------------------------
# Bump CACHE_VERSION when the cached part of the recipe changes.
CACHE_VERSION=2
cache_key=$(printf '%s\n' "$CACHE_VERSION" "$SUITE" "$mirror" "${PACKAGES[@]}" |
            sha256sum | cut -c1-16)
cache_file=${DEBIAN12_CACHE:+$DEBIAN12_CACHE/debian-12-rootfs-$cache_key.tar}
mkdir -p "$root"
if [[ -n $cache_file && -f $cache_file ]]; then
    tar -C "$root" --numeric-owner --xattrs --xattrs-include='*' -xpf "$cache_file"
else
    # debootstrap only lays down the minimal base: its resolver ignores
    # virtual packages (cloud-init's python3-cryptography needs one), so the
    # real package set is installed by apt in the chroot below.
    if ! debootstrap --variant=minbase --components=main \
            "$SUITE" "$root" "$mirror" >"$tmp/debootstrap.log" 2>&1; then
        tail -n 30 "$tmp/debootstrap.log" >&2
        [[ -f $root/debootstrap/debootstrap.log ]] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
        echo "debian-12: debootstrap failed" >&2
        exit 1
    fi
    # Debootstrap may leave /proc, /sys (and in containers bind-mounted
    # device nodes) mounted: the tree is archived and copied below.
    umount_under "$root"

    # Security and point-release updates on top of the release, then the
    # image's packages.
    cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    rm -f "$root/etc/apt/sources.list"
    # No docs/translations: for what the next apt runs install, and for what
    # debootstrap already installed.
    install -D -m 0644 "$here/files/01-vps-nodoc" "$root/etc/dpkg/dpkg.cfg.d/01-vps-nodoc"
    find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$root/usr/share/man" "$root/usr/share/info" "$root/usr/share/lintian" \
        -mindepth 1 -delete 2>/dev/null || true
    find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias \
        -exec rm -rf {} +
    # Package scripts must not start services inside the build chroot.
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 755 "$root/usr/sbin/policy-rc.d"
    {
        in_root apt-get -q update
        in_root apt-get -q -y -o Dpkg::Options::=--force-confold dist-upgrade
        in_root apt-get -q -y --no-install-recommends install "${PACKAGES[@]}"
    } >"$tmp/apt.log" 2>&1 || { tail -n 30 "$tmp/apt.log" >&2; echo "debian-12: apt failed" >&2; exit 1; }
    in_root apt-get -q clean
    if [[ -n $cache_file ]]; then
        mkdir -p "$DEBIAN12_CACHE"
        tar -C "$root" --numeric-owner --xattrs --xattrs-include='*' -cf "$cache_file.tmp" .
        mv -f "$cache_file.tmp" "$cache_file"
    fi
fi

kver=$(cd "$root/boot" && find . -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -n1)
[[ -n $kver ]] || { echo "debian-12: no kernel in the root filesystem" >&2; exit 1; }

# Identifiers are fixed now so that fstab and the kernel command line can
# name the filesystems before they exist.
root_uuid=$(cat /proc/sys/kernel/random/uuid)
fat_volid=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
fat_uuid=$(echo "${fat_volid:0:4}-${fat_volid:4:4}" | tr 'a-f' 'A-F')

# --- configuration ---------------------------------------------------------------
# fstab: the FAT partition is mounted so that kernel updates reach it (hook
# below); nofail: a missing/corrupt boot partition must not block the boot.
cat >"$root/etc/fstab" <<EOF
# <file system>  <mount point>  <type>  <options>  <dump>  <pass>
UUID=$root_uuid  /  ext4  defaults,errors=remount-ro  0  1
UUID=$fat_uuid  /boot/syslinux  vfat  defaults,nofail,umask=0077  0  2
EOF
mkdir -p "$root/boot/syslinux"
# Same place as on the tiny image, for data that tests and users keep.
mkdir -p "$root/data"

echo debian >"$root/etc/hostname"
cat >"$root/etc/hosts" <<'EOF'
127.0.0.1	localhost
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
EOF

# Network: cloud-init renders /etc/network/interfaces.d/50-cloud-init from
# the seed's network-config, or a DHCP fallback; ifupdown must read it.
cat >"$root/etc/network/interfaces" <<'EOF'
# Interfaces are configured by cloud-init in /etc/network/interfaces.d/.
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback
EOF

# C.UTF-8 is built into libc: no locales package, and cloud-init finds the
# locale it is configured with already set (nothing to generate at boot).
echo LANG=C.UTF-8 >"$root/etc/default/locale"

# Servers boot to multi-user; e2scrub only matters with LVM snapshots and
# costs seconds at every boot.
in_root systemctl set-default multi-user.target >/dev/null 2>&1
in_root systemctl disable e2scrub_reap.service e2scrub_all.timer >/dev/null 2>&1

install -D -m 0644 "$here/files/90-vps.cfg" "$root/etc/cloud/cloud.cfg.d/90-vps.cfg"
install -D -m 0644 "$here/files/ssh-hostkey-fallback.conf" \
    "$root/etc/systemd/system/ssh.service.d/hostkey-fallback.conf"
install -D -m 0644 "$here/files/80-vps-hotplug.rules" "$root/etc/udev/rules.d/80-vps-hotplug.rules"
# A disk grown live: root partition and filesystem grown at once (no reboot).
install -D -m 0644 "$here/files/81-vps-growroot.rules" "$root/etc/udev/rules.d/81-vps-growroot.rules"
install -D -m 0644 "$here/files/vps-growroot.service" "$root/etc/systemd/system/vps-growroot.service"
install -D -m 0755 "$here/files/vps-growroot" "$root/usr/local/sbin/vps-growroot"
install -D -m 0755 "$here/files/syslinux-kernel-hook" "$root/etc/kernel/postinst.d/zz-syslinux"
install -D -m 0755 "$here/files/syslinux-kernel-hook" "$root/etc/initramfs/post-update.d/zz-syslinux"

# The initramfs must find the root disk whatever the host's hardware was at
# build time: force the virtio drivers in (MODULES=most already has most).
cat >>"$root/etc/initramfs-tools/modules" <<'EOF'
virtio_pci
virtio_blk
virtio_net
virtio_scsi
EOF
{
    in_root update-initramfs -u -k "$kver"
} >"$tmp/initramfs.log" 2>&1 || { cat "$tmp/initramfs.log" >&2; exit 1; }

# --- cleanup: nothing machine-specific, nothing re-downloadable -------------------
rm -f "$root/usr/sbin/policy-rc.d"
rm -f "$root"/etc/ssh/ssh_host_*
# Empty (not missing): systemd creates a new machine-id on first boot.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
ln -s /etc/machine-id "$root/var/lib/dbus/machine-id"
# debootstrap copied the build host's resolver config.
: >"$root/etc/resolv.conf"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
rm -rf "$root"/var/lib/cloud/* "$root"/tmp/* "$root"/var/tmp/* "$root"/root/.bash_history
rm -f "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old
find "$root/var/log" -type f -exec truncate -s 0 {} +
rm -rf "$root/debootstrap"

# --- boot partition -----------------------------------------------------------------
boot=$tmp/boot
mkdir -p "$boot"
cp "$root/boot/vmlinuz-$kver" "$boot/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$boot/initrd.img"
# console=ttyS0 last: /dev/console is the serial port (what the orchestrator
# logs); net.ifnames=0: the NIC is eth0 whatever the machine type.
cat >"$boot/syslinux.cfg" <<EOF
DEFAULT debian
PROMPT 0
TIMEOUT 0
LABEL debian
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND root=UUID=$root_uuid ro console=tty0 console=ttyS0,115200n8 net.ifnames=0 quiet
EOF

MKDISK_FAT_VOLID=$fat_volid MKDISK_EXT4_UUID=$root_uuid \
    mkdisk_assemble "$tmp" "$out.tmp" "$boot" "$BOOT_MIB" "$root" "$ROOT_LABEL" "$ROOT_MIB"
mv -f "$out.tmp" "$out"
