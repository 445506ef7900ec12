# shellcheck shell=bash
# zypper family (SLES, openSUSE Leap): the functions the customization boot of a vendor image calls
# (distros/common/main.sh). Package installs use the image's repositories (SLES: the user's registration).

family_installed() {
  rpm -q "$1" > /dev/null 2>&1
}

family_install() {
  zypper --non-interactive install --no-recommends "$@"
}

family_remove() {
  zypper --non-interactive remove "$@"
}

family_regenerate_initramfs() {
  # reads the /etc/dracut.conf.d drop-in (the Hyper-V drivers, image-checks A6); --no-hostonly because this
  # boot runs on QEMU's devices, not Azure's
  dracut --force --no-hostonly --regenerate-all
}

family_apply_cmdline() {
  # SUSE's GRUB menu comes from GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub (image-checks A9)
  grub2-mkconfig -o /boot/grub2/grub.cfg
}

family_clean() {
  zypper --non-interactive clean --all
}

family_list_packages() {
  rpm -qa --qf '%{NAME}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\t%{ARCH}\n' | grep -v '^gpg-pubkey' | sort
}

family_default_kernel() {
  readlink /boot/vmlinuz | sed 's|^vmlinuz-||'
}
