"""QEMU command line from a VM spec: a pure function, unit-tested by exact comparison.

Firmware names are the project's one mapping: `bios` = SeaBIOS = Azure Gen1 (i440FX `pc`);
`uefi` = OVMF = Azure Gen2 (`q35`, pflash code read-only + a private writable copy of the vars). Trusted Launch
adds Secure Boot (OVMF's SMM build, `smm=on`, secure pflash) and a TPM 2.0 (swtpm through its socket); the OS
disk is on virtio-blk (Azure's SCSI) or on an NVMe controller.
The disk always boots through its own bootloader: there is no -kernel here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

FIRMWARES = ("bios", "uefi")
GENERATION = {"bios": "V1", "uefi": "V2"}


@dataclass(frozen=True)
class Drive:
    path: Path
    format: str  # qcow2 | raw | vpc
    readonly: bool = False


@dataclass(frozen=True)
class Nic:
    tap: str
    mac: str


@dataclass(frozen=True)
class VMSpec:
    """Everything that decides the QEMU command line."""

    name: str
    firmware: str
    accel: str  # kvm | tcg
    disk: Drive
    serial_log: Path
    qmp_socket: Path
    memory_mib: int = 2048
    cpus: int = 2
    cdrom: Drive | None = None
    nic: Nic | None = None
    ovmf_code: Path | None = None
    ovmf_vars: Path | None = None
    smbios: tuple[str, ...] = ()
    hide_hypervisor: bool = False
    rng: bool = True
    secure_boot: bool = False  # OVMF's Secure Boot build: q35 with SMM and the pflash in secure mode
    tpm_socket: Path | None = None  # swtpm's control socket: a TPM 2.0 (CRB interface)
    disk_controller: str = "scsi"  # scsi (virtio-blk) | nvme
    extra: tuple[str, ...] = field(default_factory=tuple)


def machine_args(spec: VMSpec) -> list[str]:
    machine = "pc" if spec.firmware == "bios" else "q35"
    smm = ",smm=on" if spec.secure_boot else ""
    args = ["-machine", f"{machine}{smm},accel={spec.accel}"]
    if spec.secure_boot:  # only code running in SMM may write the variable store: Secure Boot cannot be switched off
        args += ["-global", "driver=cfi.pflash01,property=secure,value=on"]
    cpu = "host" if spec.accel == "kvm" else "max"
    if spec.hide_hypervisor:
        # Azure's Hyper-V identity for systemd-detect-virt needs the CPUID hypervisor bit hidden
        # (reference/azure-platform.md, observed on Debian 12); the DMI strings do the rest.
        cpu += ",-hypervisor"
    args += ["-cpu", cpu, "-smp", str(spec.cpus), "-m", str(spec.memory_mib)]
    return args


def firmware_args(spec: VMSpec) -> list[str]:
    if spec.firmware == "bios":
        return []  # SeaBIOS is QEMU's default firmware
    if spec.ovmf_code is None or spec.ovmf_vars is None:
        raise ValueError("uefi needs ovmf_code and ovmf_vars")
    return [
        "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={spec.ovmf_code}",
        "-drive", f"if=pflash,format=raw,unit=1,file={spec.ovmf_vars}",
    ]


def disk_args(spec: VMSpec) -> list[str]:
    disk = spec.disk
    ro = ",readonly=on" if disk.readonly else ""
    device = ("nvme,drive=disk0,serial=harness-os,bootindex=1" if spec.disk_controller == "nvme"
              else "virtio-blk-pci,drive=disk0,bootindex=1")
    return [
        "-drive", f"if=none,id=disk0,file={disk.path},format={disk.format},cache=unsafe,discard=unmap{ro}",
        "-device", device,
    ]


def tpm_args(spec: VMSpec) -> list[str]:
    if spec.tpm_socket is None:
        return []
    return ["-chardev", f"socket,id=chrtpm,path={spec.tpm_socket}", "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
            "-device", "tpm-crb,tpmdev=tpm0"]


def cdrom_args(spec: VMSpec) -> list[str]:
    """One CD-ROM only, as on Azure: waagent mounts the first one it finds.

    Gen1 presents it on the IDE bus; Gen2 has no IDE and puts the DVD on SCSI (storvsc), so under
    q35 it goes on a virtio-scsi controller (cloud kernels such as Debian's have no AHCI driver).
    """
    if spec.cdrom is None:
        return []
    cd = spec.cdrom
    drive = f"if=none,id=cd0,file={cd.path},format={cd.format},media=cdrom,readonly=on"
    if spec.firmware == "bios":
        return ["-drive", drive, "-device", "ide-cd,drive=cd0,bus=ide.1"]
    return ["-drive", drive, "-device", "virtio-scsi-pci,id=scsi0", "-device", "scsi-cd,drive=cd0,bus=scsi0.0"]


def nic_args(spec: VMSpec) -> list[str]:
    if spec.nic is None:
        return ["-nic", "none"]
    return [
        "-netdev", f"tap,id=net0,ifname={spec.nic.tap},script=no,downscript=no",
        "-device", f"virtio-net-pci,netdev=net0,mac={spec.nic.mac}",
    ]


def build_argv(spec: VMSpec, qemu: str = "qemu-system-x86_64") -> list[str]:
    """The complete QEMU argv for the spec."""
    if spec.firmware not in FIRMWARES:
        raise ValueError(f"unknown firmware {spec.firmware!r}")
    if (spec.secure_boot or spec.tpm_socket) and spec.firmware != "uefi":
        raise ValueError("Secure Boot and a TPM need uefi (Trusted Launch is Gen2 only)")
    argv = [qemu, "-name", spec.name, "-nodefaults", "-no-user-config"]
    argv += machine_args(spec)
    argv += firmware_args(spec)
    argv += ["-display", "none", "-vga", "std"]
    argv += ["-chardev", f"file,id=serial0,path={spec.serial_log}", "-serial", "chardev:serial0"]
    argv += ["-qmp", f"unix:{spec.qmp_socket},server=on,wait=off"]
    argv += list(spec.smbios)
    argv += tpm_args(spec)
    argv += disk_args(spec)
    argv += cdrom_args(spec)
    argv += nic_args(spec)
    if spec.rng:
        argv += ["-object", "rng-random,id=rng0,filename=/dev/urandom", "-device", "virtio-rng-pci,rng=rng0"]
    argv += list(spec.extra)
    return argv
