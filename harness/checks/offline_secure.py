"""Rules for the VM configurations an image declares (azure-2026-platform): the Secure Boot chain a Trusted Launch
image must carry on its ESP, and the drivers Accelerated Networking needs. Read from the disk, never from the
manifest's account of it.
"""

from __future__ import annotations

from harness import authenticode
from harness.checks.image import EFI_LOADER, Image
from harness.checks.rulebase import FAILED, PASSED, WARNING, Record, listing, record, rule, skipped
from harness.enums import SecurityType

GRUB_ON_ESP = "/EFI/BOOT/grubx64.efi"
# Accelerated Networking: the VF of Microsoft's MANA NIC, and the Mellanox ConnectX-3 and -4/5 VFs.
ACCELERATED_NETWORKING = {"mana": "CONFIG_MICROSOFT_MANA", "mlx4_en": "CONFIG_MLX4_EN", "mlx5_core": "CONFIG_MLX5_CORE"}


def _signers(img: Image, esp_path: str) -> tuple[str, list[authenticode.Signer]] | None:
    """('', signers) of a binary on the ESP; (problem, []) when it cannot be read; None when it is absent."""
    data = img.esp_file(esp_path)
    if data is None:
        return None
    try:
        return "", list(authenticode.describe(data, esp_path).signers)
    except authenticode.NotSigned as exc:
        return str(exc), []


def _chain_problems(img: Image) -> list[str]:
    """Each missing link of shim (Microsoft's UEFI CA) -> GRUB (signed) -> kernel (signed)."""
    problems = []
    shim = _signers(img, EFI_LOADER)
    if shim is None or not any(s.by_microsoft_uefi_ca for s in shim[1]):
        problems.append(f"{EFI_LOADER} is not shim signed by Microsoft's UEFI CA "
                        f"({'absent' if shim is None else shim[0] or listing(s.issuer for s in shim[1])})")
    grub = _signers(img, GRUB_ON_ESP)
    if grub is None or not grub[1]:
        problems.append(f"{GRUB_ON_ESP} is {'absent' if grub is None else 'unsigned'}: shim has no signed loader")
    kernel = img.root.read_bytes(f"/boot/vmlinuz-{img.kernel_version}")
    try:
        signed = bool(kernel) and bool(authenticode.describe(kernel or b"", "vmlinuz").signers)
    except authenticode.NotSigned:
        signed = False
    if not signed:
        problems.append(f"/boot/vmlinuz-{img.kernel_version} is not signed: GRUB would refuse it under Secure Boot")
    return problems


@rule("A18 Secure Boot chain for Trusted Launch")
def secure_boot_chain(img: Image) -> list[Record]:
    name = "A18 Secure Boot chain for Trusted Launch"
    if "uefi" not in img.firmwares or SecurityType.TRUSTED_LAUNCH not in img.manifest.security_types:
        return [skipped(name, "the image declares no trusted-launch (Gen2) configuration")]
    problems = _chain_problems(img)
    required = "shim signed by Microsoft's UEFI CA -> signed GRUB -> signed kernel"
    if problems:
        return [record(name, FAILED, "; ".join(problems), required,
                       "install the distro's signed chain (Debian/Ubuntu: shim-signed, grub-efi-amd64-signed and a "
                       "signed kernel), or declare security_types = [\"standard\"]")]
    return [record(name, PASSED, "complete", required)]


@rule("A17 Accelerated Networking drivers")
def accelerated_networking(img: Image) -> list[Record]:
    """The kernel carries the VF drivers Azure's Accelerated Networking exposes (built in or as modules)."""
    name = "A17 Accelerated Networking drivers"
    dep = img.root.text(f"/lib/modules/{img.kernel_version}/modules.dep") or ""
    builtin = img.root.text(f"/lib/modules/{img.kernel_version}/modules.builtin") or ""
    config = img.kernel_config or {}
    found = {m: (f"/{m}.ko" in dep or f"/{m}.ko." in dep or f"/{m}.ko" in builtin or config.get(o) == "y")
             for m, o in ACCELERATED_NETWORKING.items()}
    missing = [m for m, ok in found.items() if not ok]
    message = f"missing {listing(missing)}: VMs of this image cannot use Accelerated Networking" if missing else ""
    return [record(name, WARNING if missing else PASSED, listing(m for m, ok in found.items() if ok),
                   listing(ACCELERATED_NETWORKING), message)]


RULES = (secure_boot_chain, accelerated_networking)
