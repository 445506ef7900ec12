# shellcheck shell=bash
# apt family (Debian, Ubuntu): the functions the customization boot of a vendor image calls
# (distros/common/main.sh), which only asks the package tool for what is missing or present.

family_installed() {
  dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2> /dev/null | grep -q '^ii'
}

family_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confold "$@"
}

family_remove() {
  DEBIAN_FRONTEND=noninteractive apt-get purge -y "$@"
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
