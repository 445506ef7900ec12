"""Firmware files: SeaBIOS is built into QEMU's default; OVMF code + a private copy of its vars."""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.errors import ToolMissingError

OVMF_DIRS = (Path("/usr/share/OVMF"), Path("/usr/share/qemu"), Path("/usr/share/edk2/ovmf"))
OVMF_PAIRS = (("OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"), ("OVMF_CODE.fd", "OVMF_VARS.fd"))
# Secure Boot: the code built with SMM (needs q35,smm=on) and a variable store with Microsoft's keys enrolled.
OVMF_SECURE_PAIRS = (("OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd"), ("OVMF_CODE.secboot.fd", "OVMF_VARS.ms.fd"))
SEABIOS = (Path("/usr/share/seabios/bios-256k.bin"), Path("/usr/share/qemu/bios-256k.bin"))


def ovmf_files(secure_boot: bool = False) -> tuple[Path, Path]:
    """(code, vars template) of OVMF: the plain build, or the Secure Boot build with Microsoft's keys."""
    pairs = OVMF_SECURE_PAIRS if secure_boot else OVMF_PAIRS
    for folder in OVMF_DIRS:
        for code, variables in pairs:
            if (folder / code).exists() and (folder / variables).exists():
                return folder / code, folder / variables
    raise ToolMissingError(f"OVMF firmware ({pairs[0][0]} and {pairs[0][1]})", "ovmf")


def check_seabios() -> None:
    if not any(p.exists() for p in SEABIOS):
        raise ToolMissingError("SeaBIOS firmware (bios-256k.bin)", "seabios")


def private_vars(template: Path, dest: Path) -> Path:
    """A writable copy of the OVMF variable store for one VM."""
    shutil.copyfile(template, dest)
    return dest
