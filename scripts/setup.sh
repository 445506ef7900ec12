#!/usr/bin/env bash
# `make setup`: install what is missing, quickly when everything is already there.
#   - the Debian packages the harness uses on the host
#   - a virtual environment in .venv with the package (azure-image-harness) in editable mode (+ test tools)
#   - Azurite (the Azure Storage emulator) from npm into ./node_modules, for the publish tests
# (Users who pip-install the package instead run `sudo harness doctor --install` for the Debian packages.)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  mmdebstrap qemu-system-x86 qemu-utils ovmf seabios fdisk dosfstools mtools e2fsprogs
  dnsmasq-base iproute2 uidmap debian-archive-keyring initramfs-tools-core zstd
  shellcheck python3-venv nodejs npm ca-certificates
  rpm createrepo-c dnf zypper dracut-core
  chromium
  swtpm sbsigntool xfsprogs btrfs-progs
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null | grep -q '^ii'; then
    missing+=("$pkg")
  fi
done
# node/npm may come from elsewhere (e.g. NodeSource); only install Debian's when absent.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for pkg in "${missing[@]}"; do [[ "$pkg" == nodejs || "$pkg" == npm ]] || filtered+=("$pkg"); done
  missing=("${filtered[@]}")
fi
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

stamp=.venv/.harness-setup
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -x .venv/bin/python || ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  # The distribution was called `harness` before it became `azure-image-harness`: drop an old editable install,
  # so one distribution owns the `harness` package and console script.
  .venv/bin/python -m pip uninstall -q -y harness >/dev/null 2>&1 || true
  .venv/bin/python -m pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
fi

if [[ ! -x node_modules/.bin/azurite-blob ]]; then
  echo "setup: installing Azurite into ./node_modules"
  npm install --no-audit --no-fund --loglevel=error
fi
echo "setup: ok"
