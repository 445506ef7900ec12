# shellcheck shell=bash
# The customization program's main part. harness/builder/customize.py puts the variables, the libraries, the
# family's functions and the declared settings in front of it; cloud-init's runcmd starts it in a transient
# unit ordered after cloud-final, so cloud-init has finished writing its state before the seal removes it.

HARNESS_OUT=/run/harness/out

harness_log() {
  echo "harness-customize: $*" > /dev/kmsg 2> /dev/null || true
  echo "harness-customize: $*"
}

harness_digest() {
  cat "$@" 2> /dev/null | cksum
}

# Installs what is missing and removes what is present, so an image that has everything needs no
# archive access; the family's functions only run its package tool.
harness_install_missing() {
  local missing=() package
  for package in "$@"; do
    family_installed "$package" || missing+=("$package")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    family_install "${missing[@]}"
  fi
}

harness_remove_present() {
  local present=() package
  for package in "$@"; do
    if family_installed "$package"; then
      present+=("$package")
    fi
  done
  if [ "${#present[@]}" -gt 0 ]; then
    family_remove "${present[@]}"
  fi
}

harness_remove_swap() {
  swapoff -a || true
  if [ -f /etc/fstab ]; then
    awk '$1 ~ /^#/ || $3 != "swap"' /etc/fstab > /etc/fstab.harness-tmp
    harness_replace /etc/fstab /etc/fstab.harness-tmp
  fi
  rm -f /swapfile /swap.img
}

harness_units() {
  local unit
  for unit in "${HARNESS_ENABLE_UNITS[@]}"; do
    if systemctl cat "$unit" > /dev/null 2>&1; then
      systemctl enable "$unit"
    fi
  done
  for unit in "${HARNESS_DISABLE_UNITS[@]}"; do
    if systemctl cat "$unit" > /dev/null 2>&1; then
      systemctl disable "$unit"
    fi
  done
}

harness_customize() {
  local initramfs_before boot_before
  cloud-init status --wait > /dev/null 2>&1 || true
  initramfs_before=$(harness_digest "${HARNESS_INITRAMFS_FILES[@]}")
  boot_before=$(harness_digest "${HARNESS_BOOT_FILES[@]}")
  harness_log "packages"
  # the boot has no route out: package tools reach their mirrors through the harness's proxy
  export http_proxy="$HARNESS_PROXY" https_proxy="$HARNESS_PROXY" HTTP_PROXY="$HARNESS_PROXY" HTTPS_PROXY="$HARNESS_PROXY"
  harness_remove_present "${HARNESS_REMOVE_PACKAGES[@]}"
  harness_install_missing "${HARNESS_PACKAGES[@]}"
  harness_log "declared settings"
  harness_apply_settings
  harness_remove_swap
  harness_units
  # a kernel the packages step installed built its initramfs with the configuration as it was then; only a
  # changed configuration needs the initramfs built again
  if [ "$(harness_digest "${HARNESS_INITRAMFS_FILES[@]}")" != "$initramfs_before" ]; then
    harness_log "regenerating the initramfs"
    family_regenerate_initramfs
  fi
  if [ "$(harness_digest "${HARNESS_BOOT_FILES[@]}")" != "$boot_before" ]; then
    harness_log "applying the kernel command line"
    family_apply_cmdline
  fi
}

harness_collect_facts() {
  family_list_packages > "$HARNESS_OUT/packages.tsv"
  family_default_kernel > "$HARNESS_OUT/kernel"
  findmnt -no UUID / > "$HARNESS_OUT/root-uuid"
  cp /etc/os-release "$HARNESS_OUT/os-release"
}

harness_write_facts() {
  local tries=0
  while [ ! -b "$HARNESS_FACTS_DEVICE" ] && [ "$tries" -lt 40 ]; do
    sleep 0.5
    tries=$((tries + 1))
  done
  tar -C "$HARNESS_OUT" -cf "$HARNESS_FACTS_DEVICE" .
  sync
}

harness_main() {
  local status seal_status
  mkdir -p "$HARNESS_OUT"
  harness_log "started"
  (set -euo pipefail; harness_customize) > "$HARNESS_OUT/customize.log" 2>&1
  status=$?
  echo "$status" > "$HARNESS_OUT/status"
  harness_log "customization status=$status; sealing"
  (set -uo pipefail; harness_collect_facts) >> "$HARNESS_OUT/customize.log" 2>&1
  (set -euo pipefail; harness_seal) > "$HARNESS_OUT/seal.log" 2>&1
  seal_status=$?
  echo "$seal_status" > "$HARNESS_OUT/seal-status"
  harness_write_facts
  harness_log "finished status=$status seal=$seal_status"
  systemctl poweroff --no-block || poweroff -f
}

harness_main
