"""Firmware files: SeaBIOS is built into QEMU's default; OVMF code + a private copy of its vars."""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.errors import ToolMissingError

OVMF_DIRS = (Path("/usr/share/OVMF"), Path("/usr/share/qemu"), Path("/usr/share/edk2/ovmf"))
OVMF_PAIRS = (("OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"), ("OVMF_CODE.fd", "OVMF_VARS.fd"))
SEABIOS = (Path("/usr/share/seabios/bios-256k.bin"), Path("/usr/share/qemu/bios-256k.bin"))


def ovmf_files() -> tuple[Path, Path]:
    """(code, vars template) of the non-Secure-Boot OVMF build."""
    for folder in OVMF_DIRS:
        for code, variables in OVMF_PAIRS:
            if (folder / code).exists() and (folder / variables).exists():
                return folder / code, folder / variables
    raise ToolMissingError("OVMF firmware (OVMF_CODE_4M.fd)", "ovmf")


def check_seabios() -> None:
    if not any(p.exists() for p in SEABIOS):
        raise ToolMissingError("SeaBIOS firmware (bios-256k.bin)", "seabios")


def private_vars(template: Path, dest: Path) -> Path:
    """A writable copy of the OVMF variable store for one VM."""
    shutil.copyfile(template, dest)
    return dest
