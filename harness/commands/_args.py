"""Options several commands share; every `choices` derives from harness.enums (one source of truth)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.builder.context import BuildOptions
from harness.enums import (
    Accel,
    Agent,
    DiskController,
    E,
    Firmware,
    KeepPolicy,
    Platform,
    SecurityType,
    expand,
    values,
)
from harness.stages.verify import VerifyOptions

BOTH = "both"
ALL = "all"


def add_build_arguments(p: argparse.ArgumentParser) -> None:
    """Build options, shared by `harness build` and `harness run`."""
    p.add_argument("--agent", choices=values(Agent),
                   help="provisioning agent (default: the recipe's; ignition for Flatcar)")
    p.add_argument("--specialized", action="store_true",
                   help="keep the agent but disable provisioning (OS state specialized)")
    p.add_argument("--disk-size-mib", type=int, metavar="N", help="disk size in MiB (default: the recipe's, 30 GiB)")
    p.add_argument("--mirror", metavar="URL", help="package archive mirror (default: the bootstrap tool's)")
    p.add_argument("--rebuild", action="store_true", help="build even when an identical build exists")
    p.add_argument("--keep-workdir", action="store_true", help="keep the scratch folder when the build fails")


def build_options(args: argparse.Namespace) -> BuildOptions:
    return BuildOptions(agent=args.agent or "", specialized=args.specialized, disk_size_mib=args.disk_size_mib,
                        mirror=args.mirror or "", rebuild=args.rebuild, keep_workdir=args.keep_workdir)


def add_boot_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by verify, boot and run."""
    p.add_argument("--accel", choices=values(Accel), default=Accel.AUTO.value,
                   help="accelerator (default: probe KVM once per host, fall back to TCG)")
    p.add_argument("--keep", choices=values(KeepPolicy), default=KeepPolicy.ON_ERROR.value,
                   help="keep the scratch folder (overlay, OVMF vars, media, SSH key) (default: on-error)")
    p.add_argument("--fault", action="append", default=[], metavar="RULE",
                   help="inject a platform fault, e.g. wireserver:health=500x3 (repeatable)")
    p.add_argument("--timeout-s", type=float, metavar="S", help="boot-to-Ready timeout (default: the recipe's)")


def add_verify_arguments(p: argparse.ArgumentParser) -> None:
    """Options of verify and run: which boots, and how."""
    p.add_argument("--firmware", choices=[*values(Firmware), BOTH, ALL],
                   help="bios = SeaBIOS (Gen1), uefi = OVMF (Gen2), both/all: every generation the image declares. "
                        "With none of --firmware, --security-type and --disk-controller, verify boots every declared "
                        "value at least once (e.g. bios, then uefi with trusted-launch on nvme)")
    p.add_argument("--security-type", choices=[*values(SecurityType), ALL],
                   help="standard, or trusted-launch (Secure Boot with Microsoft's keys and a TPM 2.0; Gen2 only), "
                        "or all that the image declares (default with other options given: standard)")
    p.add_argument("--disk-controller", choices=[*values(DiskController), ALL],
                   help="scsi (virtio-blk under QEMU) or nvme (Gen2 only), or all that the image declares "
                        "(default with other options given: scsi)")
    p.add_argument("--platform", choices=[*values(Platform), ALL], default=Platform.AZURE.value,
                   help="the fake Azure platform (default), a cloud-init NoCloud seed, or all")
    add_boot_arguments(p)
    p.add_argument("--parallel", type=int, default=0, metavar="N",
                   help="boots to run side by side (default: one per CPU core)")
    p.add_argument("--tests", action="append", default=[], type=Path, metavar="PATH",
                   help="your own pytest checks (a file or folder), run inside each boot with the harness "
                        "fixtures (ssh, vm, azure_platform, harness_build); a failing test fails verify "
                        "(repeatable)")


def _dimension(enum: type[E], value: str | None) -> tuple[E, ...] | None:
    return None if value in (None, BOTH, ALL) else (enum(value),)


def verify_options(args: argparse.Namespace) -> VerifyOptions:
    every = tuple(name for name, value in (("firmwares", args.firmware), ("security_types", args.security_type),
                                           ("disk_controllers", args.disk_controller)) if value in (BOTH, ALL))
    return VerifyOptions(firmwares=_dimension(Firmware, args.firmware),
                         security_types=_dimension(SecurityType, args.security_type),
                         disk_controllers=_dimension(DiskController, args.disk_controller), every_declared=every,
                         platforms=expand(Platform, args.platform, every=ALL), keep=KeepPolicy(args.keep),
                         faults=tuple(args.fault), timeout_s=args.timeout_s, accel=Accel(args.accel),
                         parallel=args.parallel, tests=tuple(p.absolute() for p in args.tests))
