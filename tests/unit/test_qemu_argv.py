"""The QEMU command line is a pure function of the spec: compared exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.vm.qemu import Drive, Nic, VMSpec, build_argv

BASE = dict(
    name="t", accel="tcg", disk=Drive(Path("/s/overlay.qcow2"), "qcow2"), serial_log=Path("/e/serial.log"),
    qmp_socket=Path("/s/qmp.sock"), memory_mib=1024, cpus=2, rng=False,
)


def test_bios_argv_exact() -> None:
    spec = VMSpec(firmware="bios", cdrom=Drive(Path("/s/ovf.iso"), "raw", readonly=True),
                  nic=Nic("tap0", "52:54:00:12:34:56"), smbios=("-uuid", "u"), hide_hypervisor=True, **BASE)
    assert build_argv(spec) == [
        "qemu-system-x86_64", "-name", "t", "-nodefaults", "-no-user-config",
        "-machine", "pc,accel=tcg", "-cpu", "max,-hypervisor", "-smp", "2", "-m", "1024",
        "-display", "none", "-vga", "std",
        "-chardev", "file,id=serial0,path=/e/serial.log", "-serial", "chardev:serial0",
        "-qmp", "unix:/s/qmp.sock,server=on,wait=off",
        "-uuid", "u",
        "-drive", "if=none,id=disk0,file=/s/overlay.qcow2,format=qcow2,cache=unsafe,discard=unmap",
        "-device", "virtio-blk-pci,drive=disk0,bootindex=1",
        "-drive", "if=none,id=cd0,file=/s/ovf.iso,format=raw,media=cdrom,readonly=on",
        "-device", "ide-cd,drive=cd0,bus=ide.1",
        "-netdev", "tap,id=net0,ifname=tap0,script=no,downscript=no",
        "-device", "virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56",
    ]


def test_uefi_argv_uses_q35_pflash_and_no_kernel() -> None:
    spec = VMSpec(firmware="uefi", ovmf_code=Path("/fw/CODE.fd"), ovmf_vars=Path("/s/VARS.fd"), **BASE)
    argv = build_argv(spec)
    assert argv[5:8] == ["-machine", "q35,accel=tcg", "-cpu"]
    assert "if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd" in argv
    assert "if=pflash,format=raw,unit=1,file=/s/VARS.fd" in argv
    assert argv[-2:] == ["-nic", "none"]
    assert "-kernel" not in argv and "-initrd" not in argv and "-append" not in argv


def test_uefi_without_vars_is_refused() -> None:
    with pytest.raises(ValueError, match="ovmf"):
        build_argv(VMSpec(firmware="uefi", **BASE))


def test_kvm_uses_host_cpu_and_rng_device() -> None:
    spec = VMSpec(firmware="bios", **{**BASE, "accel": "kvm", "rng": True})
    argv = build_argv(spec)
    assert argv[argv.index("-cpu") + 1] == "host"
    assert "virtio-rng-pci,rng=rng0" in argv


def test_vhd_disk_uses_vpc_driver() -> None:
    spec = VMSpec(firmware="bios", **{**BASE, "disk": Drive(Path("/b/disk.vhd"), "vpc", readonly=True)})
    assert "if=none,id=disk0,file=/b/disk.vhd,format=vpc,cache=unsafe,discard=unmap,readonly=on" in build_argv(spec)


def test_gen2_cdrom_is_on_scsi_like_azure() -> None:
    spec = VMSpec(firmware="uefi", ovmf_code=Path("/fw/CODE.fd"), ovmf_vars=Path("/s/VARS.fd"),
                  cdrom=Drive(Path("/s/ovf.iso"), "raw", readonly=True), **BASE)
    argv = build_argv(spec)
    assert "virtio-scsi-pci,id=scsi0" in argv and "scsi-cd,drive=cd0,bus=scsi0.0" in argv
    assert not any(a.startswith("ide-cd") for a in argv)


def test_trusted_launch_nvme_argv_exact() -> None:
    """Secure Boot OVMF needs q35 with SMM and the pflash in secure mode; the TPM is swtpm's socket; NVMe needs a
    serial number."""
    spec = VMSpec(firmware="uefi", ovmf_code=Path("/fw/CODE.secboot.fd"), ovmf_vars=Path("/s/VARS.fd"),
                  secure_boot=True, tpm_socket=Path("/s/tpm/swtpm-sock"), disk_controller="nvme", **BASE)
    assert build_argv(spec) == [
        "qemu-system-x86_64", "-name", "t", "-nodefaults", "-no-user-config",
        "-machine", "q35,smm=on,accel=tcg", "-global", "driver=cfi.pflash01,property=secure,value=on",
        "-cpu", "max", "-smp", "2", "-m", "1024",
        "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.secboot.fd",
        "-drive", "if=pflash,format=raw,unit=1,file=/s/VARS.fd",
        "-display", "none", "-vga", "std",
        "-chardev", "file,id=serial0,path=/e/serial.log", "-serial", "chardev:serial0",
        "-qmp", "unix:/s/qmp.sock,server=on,wait=off",
        "-chardev", "socket,id=chrtpm,path=/s/tpm/swtpm-sock", "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
        "-device", "tpm-crb,tpmdev=tpm0",
        "-drive", "if=none,id=disk0,file=/s/overlay.qcow2,format=qcow2,cache=unsafe,discard=unmap",
        "-device", "nvme,drive=disk0,serial=harness-os,bootindex=1",
        "-nic", "none",
    ]


@pytest.mark.parametrize("changes", [{"secure_boot": True}, {"tpm_socket": Path("/s/tpm")}])
def test_secure_boot_and_tpm_are_gen2_only(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="Gen2 only"):
        build_argv(VMSpec(firmware="bios", **{**BASE, **changes}))  # type: ignore[arg-type]
