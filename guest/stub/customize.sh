#!/bin/sh
# The stub's hook (stub.yaml): runs on the build host with the new root as $1, after the packages are
# installed and guest/stub/rootfs has been copied in; the image builder then writes accounts, host name,
# network and boot files. Every step here was measured under software emulation (TCG);
# docs/architecture.md, "The stub", has the numbers.
set -eu
root=$1

# An empty machine-id: systemd makes a fresh one on every boot of the read-only image.
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"

# Units a disposable, single-purpose system running from a read-only image does not need. Each one
# costs seconds of emulated CPU that the units on the way to the console then wait for.
for unit in \
	systemd-firstboot.service getty@tty1.service \
	apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service \
	fstrim.timer systemd-tmpfiles-clean.timer \
	modprobe@drm.service modprobe@configfs.service modprobe@fuse.service modprobe@efi_pstore.service \
	dev-hugepages.mount dev-mqueue.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
	sys-fs-fuse-connections.mount sys-kernel-config.mount proc-sys-fs-binfmt_misc.automount \
	systemd-binfmt.service systemd-pstore.service systemd-remount-fs.service tmp.mount run-lock.mount \
	systemd-random-seed.service systemd-journal-flush.service systemd-journal-catalog-update.service \
	systemd-udev-load-credentials.service systemd-network-generator.service systemd-modules-load.service \
	kmod-static-nodes.service systemd-sysctl.service systemd-tmpfiles-setup-dev-early.service \
	kexec-load.service kexec.service; do
	ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
mkdir -p "$root/etc/systemd/system-generators"
for generator in \
	systemd-gpt-auto-generator systemd-hibernate-resume-generator systemd-rc-local-generator \
	systemd-run-generator systemd-ssh-generator systemd-system-update-generator systemd-sysv-generator \
	systemd-tpm2-generator; do
	ln -sf /dev/null "$root/etc/systemd/system-generators/$generator"
done
chroot "$root" systemctl enable vmstub-install.service >/dev/null 2>&1

# The autologin console need not wait for the network (systemd-user-sessions is ordered after
# network.target): a copy of Debian's serial-getty@.service without that ordering.
sed 's/^\(After=.*\) systemd-user-sessions\.service/\1/' "$root/usr/lib/systemd/system/serial-getty@.service" \
	> "$root/etc/systemd/system/serial-getty@.service"
if grep -q systemd-user-sessions "$root/etc/systemd/system/serial-getty@.service"; then
	echo "customize: serial-getty@.service changed shape; update the ordering edit" >&2
	exit 1
fi

# Kernel modules uncompressed: xz is slow under emulation (loading xfs took 2 s), and the image's zstd
# compresses plain modules as well (+0.2 MB).
find "$root/usr/lib/modules" -name '*.ko.xz' -exec xz -d {} +
chroot "$root" depmod -a "$(ls "$root/usr/lib/modules" | sort -V | tail -n 1)"

# vmstub's own initramfs instead of initramfs-tools' (which the kernel package pulls in): the image
# builder makes it after this hook, with boot/kernel, boot/initramfs and the config's cmdline.
rm -f "$root"/boot/initrd.img-*

# vmstub's own files (its bundle, the /root/DISTRO.sh install scripts, the banner) are appended to the
# squashed image as /vmstub, so that a change to vmstub alone does not squash the whole system again.
cat > "$root/usr/local/bin/vmstub" <<'WRAPPER'
#!/bin/sh
exec node /vmstub/vmstub.cjs "$@"
WRAPPER
chmod 0755 "$root/usr/local/bin/vmstub"
rm -rf "$root/root" "$root/etc/motd"
ln -s vmstub/root "$root/root"
ln -s ../vmstub/motd "$root/etc/motd"

# systemd's ConditionNeedsUpdate: /etc and /var are as new as /usr, so ldconfig, sysusers and the
# like do not run again on every boot of the read-only image.
touch "$root/etc/.updated" "$root/var/.updated"

# udev's hardware database only names device vendors and models; the stub has no use for it (13 MB).
rm -f "$root/usr/lib/udev/hwdb.bin"

# Package caches and lists are useless in a read-only image.
rm -rf "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* "$root"/var/cache/debconf/*-old
