# shellcheck shell=bash
# dnf family (CentOS Stream, Oracle Linux, RHEL): the functions the customization boot of a vendor image calls
# (distros/common/main.sh). Package installs use the image's own repositories (RHEL: the user's entitlement).

family_installed() {
  rpm -q "$1" > /dev/null 2>&1
}

family_install() {
  dnf -y install --setopt=install_weak_deps=False "$@"
}

family_remove() {
  dnf -y remove "$@"
}

family_regenerate_initramfs() {
  # reads the /etc/dracut.conf.d drop-in (the Hyper-V drivers, image-checks A6); --no-hostonly because this
  # boot runs on QEMU's devices, not Azure's
  dracut --force --no-hostonly --regenerate-all
}

family_apply_cmdline() {
  # every Boot Loader Spec entry (and the template for later kernels) gets the recipe's parameters
  grubby --update-kernel=ALL --remove-args="$HARNESS_REMOVE_CMDLINE" --args="$HARNESS_CMDLINE"
}

family_clean() {
  dnf clean all
  rm -rf /var/cache/dnf/*
}

family_list_packages() {
  rpm -qa --qf '%{NAME}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\t%{ARCH}\n' | grep -v '^gpg-pubkey' | sort
}

family_default_kernel() {
  grubby --default-kernel | sed 's|^/boot/vmlinuz-||'
}
