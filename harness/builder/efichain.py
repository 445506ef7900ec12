"""The UEFI boot chain on the ESP: the distro's own signed chain when the image has it, GRUB made by
grub-mkimage otherwise.

Signed (Trusted Launch): EFI/BOOT/BOOTX64.EFI is shim (signed with Microsoft's UEFI CA), next to it the
distro's signed GRUB (grubx64.efi, which shim verifies with the distro's CA embedded in it) and MokManager;
the signed GRUB reads EFI/<vendor>/grub.cfg (its built-in prefix) or EFI/BOOT/grub.cfg, a stub that finds
the root file system by UUID and hands over to /boot/grub/grub.cfg; GRUB then has shim verify the kernel.
Everything comes from the image's own packages, nothing is re-signed. No fbx64.efi or BOOTX64.CSV: shim would
start the fallback, which creates boot entries and resets the VM on every fresh variable store.
Unsigned: the image has no signed chain (grub-mkimage's image boots with Secure Boot off only).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from harness import authenticode
from harness.builder.guestroot import GuestRoot
from harness.errors import BuildError
from harness.shellsyntax import parse_assignments

ESP_BOOT = "/EFI/BOOT"
LOADER = f"{ESP_BOOT}/BOOTX64.EFI"
STUB = "grub.cfg"


@dataclass(frozen=True)
class SignedChain:
    """Where a family's packages put the signed binaries in the root (first existing candidate wins)."""

    shim: tuple[str, ...]
    grub: tuple[str, ...]
    mok_manager: tuple[str, ...]


@dataclass(frozen=True)
class EspPlan:
    """The ESP's files (ESP path -> host file) and the binaries the manifest describes."""

    files: dict[str, Path]
    signed: bool
    vendor: str = ""


def _matches(root: GuestRoot, candidate: str) -> list[str]:
    """Guest paths matching a candidate; `*` may appear in any component after the first."""
    parts = candidate.split("/")
    wild = next((i for i, part in enumerate(parts) if "*" in part), None)
    if wild is None:
        return [candidate]
    return list(root.glob("/".join(parts[:wild]) or "/", "/".join(parts[wild:])))


def _first(root: GuestRoot, candidates: tuple[str, ...]) -> tuple[str, Path] | None:
    """(guest path, host path) of the first candidate that exists in the image as a file."""
    for candidate in candidates:
        for match in _matches(root, candidate):
            host = root.path(match)
            if host.is_file():
                return match, host
    return None


def vendor_of(root: GuestRoot, shim_path: str = "") -> str:
    """The distro's EFI folder name: where its package put shim (/boot/efi/EFI/<vendor>/, the rpm families),
    else its os-release ID (debian, ubuntu)."""
    parts = shim_path.split("/")
    if shim_path.startswith("/boot/efi/EFI/") and len(parts) > 5 and parts[4].upper() != "BOOT":
        return parts[4]
    release = parse_assignments(root.read_text("/etc/os-release") or root.read_text("/usr/lib/os-release") or "")
    vendor = release.get("ID", "").strip().lower()
    if not vendor or not vendor.replace("-", "").isalnum():
        raise BuildError(f"the image's os-release ID {vendor!r} cannot name an EFI folder", "check /etc/os-release")
    return vendor


def plan_esp(root: GuestRoot, chain: SignedChain | None, unsigned_loader: Path, stub: Path) -> EspPlan:
    """The signed chain when the image carries shim and a signed GRUB; else the unsigned GRUB image."""
    shim = _first(root, chain.shim) if chain else None
    grub = _first(root, chain.grub) if chain else None
    if chain is None or shim is None or grub is None:
        return EspPlan({LOADER: unsigned_loader}, signed=False)
    vendor = vendor_of(root, shim[0])
    files = {LOADER: shim[1], f"{ESP_BOOT}/grubx64.efi": grub[1], f"{ESP_BOOT}/{STUB}": stub,
             f"/EFI/{vendor}/{STUB}": stub}
    mok = _first(root, chain.mok_manager)
    if mok is not None:
        files[f"{ESP_BOOT}/mmx64.efi"] = mok[1]
    return EspPlan(files, signed=True, vendor=vendor)


def describe(plan: EspPlan, root: GuestRoot, kernel_version: str) -> list[authenticode.EfiBinary]:
    """Path, sha256 and signers of every EFI binary on the ESP, and of the kernel GRUB boots."""
    found = [authenticode.describe_file(host, esp_path) for esp_path, host in sorted(plan.files.items())
             if esp_path.lower().endswith(".efi")]
    kernel = root.path(f"/boot/vmlinuz-{kernel_version}")
    # A kernel without a PE header (no EFI stub) has nothing to record.
    with contextlib.suppress(authenticode.NotSigned):
        if kernel.is_file():
            found.append(authenticode.describe_file(kernel, f"/boot/vmlinuz-{kernel_version}"))
    return found
