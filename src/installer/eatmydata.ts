/**
 * mmdebstrap hooks that run the bootstrap's dpkg under eatmydata: dpkg fsyncs every file it unpacks,
 * which costs minutes under emulation; the install syncs once at the end instead (and the disk is
 * unmounted before anything boots from it).
 *
 * mmdebstrap ships such hooks, but they need dpkg-architecture and only understand mirrors whose
 * strongest hash is SHA256. These fetch eatmydata from the target's own mirror (so it matches the
 * target's C library), verified by apt like every other package, take the library's path from the
 * package itself, and step aside when the mirror has no eatmydata.
 */

/** Run once the essential packages are unpacked, before dpkg first runs: divert dpkg to a wrapper. */
export const EATMYDATA_EXTRACT_HOOK = `#!/bin/sh
set -eu
root="$1"
arch=$(head -n1 "$root/var/lib/dpkg/arch" 2>/dev/null || dpkg --print-architecture)
work=$(mktemp -d "$root/tmp/vmstub-eatmydata.XXXXXX")
printf 'Dir "%s";\\nApt::Architecture "%s";\\nApt::Architectures "%s";\\n' "$root" "$arch" "$arch" >"$work/apt.conf"
if ! (cd "$work" && APT_CONFIG="$work/apt.conf" apt-get -q download eatmydata libeatmydata1); then
  # Only a speed-up: a mirror without eatmydata installs as well, just slower.
  echo "vmstub: eatmydata is not on this mirror; dpkg keeps its fsyncs" >&2
  rm -rf "$work"
  exit 0
fi
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/files"; done
cp "$work/files/usr/bin/eatmydata" "$root/usr/bin/eatmydata"
for lib in "$work"/files/usr/lib/*/libeatmydata.so*; do
  dest="$root\${lib#"$work/files"}"
  mkdir -p "\${dest%/*}"
  cp -P "$lib" "$dest"
done
rm -rf "$work"
mv "$root/usr/bin/dpkg" "$root/usr/bin/dpkg.distrib"
printf '#!/bin/sh\\nexec /usr/bin/eatmydata /usr/bin/dpkg.distrib "$@"\\n' >"$root/usr/bin/dpkg"
chmod 0755 "$root/usr/bin/dpkg"
printf '/usr/bin/dpkg\\n/usr/bin/dpkg.distrib\\n:\\n' >>"$root/var/lib/dpkg/diversions"
`;

/** Run after the last package: dpkg as it was, eatmydata gone unless asked for, everything on disk. */
export const EATMYDATA_CUSTOMIZE_HOOK = `#!/bin/sh
set -eu
root="$1"
installed() { chroot "$root" dpkg-query -W -f='\${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
[ -e "$root/usr/bin/dpkg.distrib" ] || exit 0
rm "$root/usr/bin/dpkg"
chroot "$root" dpkg-divert --local --rename --remove /usr/bin/dpkg
installed eatmydata || rm -f "$root/usr/bin/eatmydata"
installed libeatmydata1 || rm -f "$root"/usr/lib/*/libeatmydata.so*
sync -f "$root/"
`;
