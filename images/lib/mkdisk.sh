# shellcheck shell=bash
#
# images/lib/mkdisk.sh - assemble a BIOS-bootable qcow2 disk image without
# loop devices or mounts.  Sourced by the image recipes (images/*/build.sh).
#
# Layout (MBR/dos label, 512-byte sectors):
#
#   0 .. 1 MiB    MBR with syslinux's mbr.bin boot code + partition table
#   p1            FAT (bootable flag), syslinux + kernel + initrd + syslinux.cfg
#   p2            ext4, built with `mkfs.ext4 -d DIR`; it is the LAST partition
#                 so that a guest can grow it (growpart) when its overlay
#                 disk is bigger than the image.
#
# Every filesystem is built in its own file and then copied into the raw
# disk at its offset: no root-only kernel facilities (loop, mount) are needed,
# which keeps the build usable in containers and on CI builders.
#
# Chain of trust at boot: SeaBIOS -> mbr.bin (jumps to the active partition's
# boot sector) -> syslinux VBR -> ldlinux.sys/.c32 -> syslinux.cfg -> kernel.

# Defaults can be overridden by the caller before calling mkdisk_assemble.
: "${MKDISK_SYSLINUX_MBR:=/usr/lib/syslinux/mbr/mbr.bin}"
# Compressed qcow2 clusters make the image (which is uploaded to every host)
# 2-3x smaller; as a read-only backing file the decompression cost is small.
: "${MKDISK_COMPRESS:=1}"
# Extra mkfs.ext4 options (e.g. "-m 0" for a pure data filesystem).
: "${MKDISK_EXT4_OPTS:=}"
# Optional fixed identifiers (callers generate them so they can reference
# them in fstab / kernel command line before the disk exists).
: "${MKDISK_FAT_VOLID:=}"     # 8 hex digits, e.g. 1a2b3c4d
: "${MKDISK_EXT4_UUID:=}"     # RFC 4122 UUID

# mkdisk_assemble WORKDIR OUT_QCOW2 BOOT_DIR BOOT_MIB ROOT_DIR ROOT_LABEL ROOT_MIB
#
#   WORKDIR     scratch directory (the caller cleans it up)
#   OUT_QCOW2   qcow2 file to write (overwritten; callers write to a .tmp name
#               and rename it themselves for atomicity)
#   BOOT_DIR    files copied to the root of the FAT partition; must contain a
#               syslinux.cfg referring to them
#   BOOT_MIB    size of the FAT partition in MiB
#   ROOT_DIR    directory tree copied into the ext4 partition (ownership and
#               modes are preserved, so run as root for system trees)
#   ROOT_LABEL  ext4 volume label
#   ROOT_MIB    size of the ext4 partition in MiB
mkdisk_assemble() {
    local work=$1 out=$2 boot_dir=$3 boot_mib=$4 root_dir=$5 root_label=$6 root_mib=$7
    local sector=512 mib=$((1024 * 1024))
    # Partitions are 1 MiB aligned: good for the qcow2 cluster size and for
    # any host block size.
    local p1_start=$((mib / sector))
    local p1_sectors=$((boot_mib * mib / sector))
    local p2_start=$((p1_start + p1_sectors))
    local p2_sectors=$((root_mib * mib / sector))
    local total_bytes=$(((p2_start + p2_sectors) * sector))
    local raw="$work/disk.raw" fat="$work/boot.fat" ext="$work/root.ext4"
    local f

    [[ -f $boot_dir/syslinux.cfg ]] || { echo "mkdisk: $boot_dir/syslinux.cfg missing" >&2; return 1; }
    [[ -d $root_dir ]] || { echo "mkdisk: $root_dir is not a directory" >&2; return 1; }

    # --- FAT boot partition -------------------------------------------------
    # -h: the hidden-sectors field must equal the partition offset, otherwise
    # the syslinux boot sector would look for ldlinux.sys at the wrong LBA.
    rm -f "$fat"
    local fat_opts=(-C -n BOOT -h "$p1_start")
    [[ -n $MKDISK_FAT_VOLID ]] && fat_opts+=(-i "$MKDISK_FAT_VOLID")
    mkfs.vfat "${fat_opts[@]}" "$fat" $((boot_mib * 1024)) >/dev/null
    # mtools refuses images whose size is not a "standard" floppy/disk
    # geometry unless told not to check.
    export MTOOLS_SKIP_CHECK=1
    for f in "$boot_dir"/*; do
        mcopy -Q -o -i "$fat" -s "$f" ::/
    done
    # The mtools flavour of the installer works on a plain file: it writes
    # the boot sector and ldlinux.sys/ldlinux.c32 into the filesystem image.
    syslinux --install "$fat"

    # --- ext4 root/data partition -----------------------------------------
    rm -f "$ext"
    truncate -s $((root_mib * mib)) "$ext"
    local ext_opts=(-q -F -t ext4 -L "$root_label" -d "$root_dir")
    [[ -n $MKDISK_EXT4_UUID ]] && ext_opts+=(-U "$MKDISK_EXT4_UUID")
    # shellcheck disable=SC2206  # word splitting of the options is wanted
    ext_opts+=($MKDISK_EXT4_OPTS)
    mkfs.ext4 "${ext_opts[@]}" "$ext"

    # --- raw disk: partition table, boot code, partitions --------------------
    rm -f "$raw"
    truncate -s "$total_bytes" "$raw"
    # type c = W95 FAT32 (LBA); syslinux's mbr.bin only cares about the
    # active flag, Linux does not care about the type at all.
    sfdisk --quiet --no-reread --no-tell-kernel "$raw" <<EOF
label: dos
unit: sectors

start=$p1_start, size=$p1_sectors, type=c, bootable
start=$p2_start, size=$p2_sectors, type=83
EOF
    # Only the 440 bytes of boot code: keep the disk signature and the
    # partition table sfdisk just wrote.
    dd if="$MKDISK_SYSLINUX_MBR" of="$raw" bs=440 count=1 conv=notrunc status=none
    dd if="$fat" of="$raw" bs=1M seek=$((p1_start * sector / mib)) conv=notrunc,sparse status=none
    dd if="$ext" of="$raw" bs=1M seek=$((p2_start * sector / mib)) conv=notrunc,sparse status=none
    rm -f "$fat" "$ext"

    # --- qcow2 ------------------------------------------------------------
    local conv_opts=(-q -f raw -O qcow2 -o cluster_size=65536)
    [[ $MKDISK_COMPRESS = 1 ]] && conv_opts+=(-c)
    qemu-img convert "${conv_opts[@]}" "$raw" "$out"
    rm -f "$raw"
}
