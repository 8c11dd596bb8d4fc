#!/bin/sh
# Builds the initramfs of the stub and of every system image vmstub builds (its boot/initramfs): busybox,
# initramfs/init, and the few modules it needs to mount the image, taken from the image's root ROOT and
# decompressed. Usage: make-initramfs.sh ROOT OUTPUT [BUSYBOX] (a static busybox where ROOT has none)
set -eu
root=$1
out=$2
busybox=${3:-$root/usr/bin/busybox}
here=$(cd "$(dirname "$0")" && pwd)
version=$(ls "$root/usr/lib/modules" | sort -V | tail -n 1)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/etc" "$stage/lib/modules"
cp "$busybox" "$stage/bin/busybox"
cp "$here/initramfs/init" "$stage/init"
chmod 0755 "$stage/init" "$stage/bin/busybox"
: > "$stage/etc/modules-order"
# virtio_pci first: a module in older kernels (Debian 12), built in later ones (then skipped).
for module in virtio_pci virtio_blk squashfs overlay; do
	chroot "$root" modprobe --show-depends -S "$version" "$module" | while read -r kind path _; do
		[ "$kind" = insmod ] || continue
		name=$(basename "$path")
		plain=${name%.xz}
		plain=${plain%.zst}
		plain=${plain%.gz}
		grep -qx "$plain" "$stage/etc/modules-order" && continue
		case "$name" in
		*.xz) xz -dc "$root$path" > "$stage/lib/modules/$plain" ;;
		*.zst) zstd -qdc "$root$path" > "$stage/lib/modules/$plain" ;;
		*.gz) gzip -dc "$root$path" > "$stage/lib/modules/$plain" ;;
		*) cp "$root$path" "$stage/lib/modules/$plain" ;;
		esac
		echo "$plain" >> "$stage/etc/modules-order"
	done
done
[ -s "$stage/etc/modules-order" ] || { echo "make-initramfs: no modules found for $version" >&2; exit 1; }
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +; fi
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) | zstd -q -19 -T0 > "$out"
