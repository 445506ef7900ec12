# shellcheck shell=bash
# apt family (Debian, Ubuntu): the functions the customization boot of a vendor image calls
# (distros/common/main.sh). Packages already installed are left alone, so an image that has everything
# needs no archive access.

family_installed() {
  dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2> /dev/null | grep -q '^ii'
}

family_install_packages() {
  local missing=() package
  for package in "$@"; do
    family_installed "$package" || missing+=("$package")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confold "${missing[@]}"
  fi
}

family_remove_packages() {
  local present=() package
  for package in "$@"; do
    if family_installed "$package"; then
      present+=("$package")
    fi
  done
  if [ "${#present[@]}" -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get purge -y "${present[@]}"
  fi
}

family_regenerate_initramfs() {
  # reads /etc/initramfs-tools/modules (the Hyper-V drivers, image-checks A6)
  update-initramfs -u -k all
}

family_apply_cmdline() {
  # grub-mkconfig reads GRUB_CMDLINE_LINUX from /etc/default/grub (image-checks A9)
  update-grub
}

family_clean() {
  apt-get clean
  rm -rf /var/lib/apt/lists/*
}

family_list_packages() {
  dpkg-query -W -f='${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n' \
    | awk -F '\t' '$1 ~ /^ii/ { print $2 "\t" $3 "\t" $4 }'
}

family_default_kernel() {
  local kernel
  for kernel in /boot/vmlinuz-*; do
    echo "${kernel#/boot/vmlinuz-}"
  done | sort -V | tail -n 1
}
