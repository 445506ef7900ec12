"""The harness's vocabulary, one enum per concept: the CLI's choices, the recipe schema, result files and the
family table all derive from these (a StrEnum compares and serialises as its value)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import TypeVar

E = TypeVar("E", bound=StrEnum)


class Result(StrEnum):
    """One check's outcome (the Marketplace self-test's words)."""

    PASSED = "Passed"
    WARNING = "Warning"
    FAILED = "Failed"
    SKIPPED = "Skipped"


class Stage(StrEnum):
    """The pipeline's stages, in order."""

    BUILD = "build"
    CHECK = "check"
    VERIFY = "verify"
    CONVERT = "convert"
    PUBLISH = "publish"


class Verdict(StrEnum):
    """How a stage run ended, as `harness run` shows it."""

    PASSED = "passed"
    FAILED = "failed"
    CACHE_HIT = "cache hit"
    NO_OP = "no-op"
    NOT_RUN = "not run"

    @property
    def ok(self) -> bool:
        return self is not Verdict.FAILED


class Generation(StrEnum):
    """Azure's Hyper-V generation of an image definition."""

    V1 = "V1"
    V2 = "V2"

    @property
    def firmware(self) -> Firmware:
        return Firmware.BIOS if self is Generation.V1 else Firmware.UEFI

    @property
    def suffix(self) -> str:
        """The default definition-name suffix: gen1 | gen2."""
        return "gen1" if self is Generation.V1 else "gen2"


class Firmware(StrEnum):
    """bios = SeaBIOS = Azure Gen1 = V1; uefi = OVMF = Gen2 = V2 (the one mapping)."""

    BIOS = "bios"
    UEFI = "uefi"

    @property
    def generation(self) -> Generation:
        return Generation.V1 if self is Firmware.BIOS else Generation.V2


class Platform(StrEnum):
    """What a verify boot runs on: the fake Azure platform, or a cloud-init NoCloud seed."""

    AZURE = "azure"
    NOCLOUD = "nocloud"


class SecurityType(StrEnum):
    """Azure's security type of a VM: Trusted Launch is UEFI Secure Boot (Microsoft's keys) plus a vTPM 2.0."""

    STANDARD = "standard"
    TRUSTED_LAUNCH = "trusted-launch"


class DiskController(StrEnum):
    """How the OS disk is attached: SCSI (storvsc on Azure; virtio-blk stands in under QEMU) or NVMe."""

    SCSI = "scsi"
    NVME = "nvme"


class Agent(StrEnum):
    """The provisioning agent an image runs at first boot."""

    CLOUD_INIT = "cloud-init"
    WAAGENT = "waagent"
    IGNITION = "ignition"


class Family(StrEnum):
    """Package-manager family: behaviour varies by family, never by distro name."""

    APT = "apt"
    DNF = "dnf"
    ZYPPER = "zypper"
    FLATCAR = "flatcar"

    @property
    def agents(self) -> tuple[Agent, ...]:
        """The agents that can provision this family (Flatcar: Ignition with afterburn, no cloud-init)."""
        if self is Family.FLATCAR:
            return (Agent.IGNITION,)
        return (Agent.CLOUD_INIT, Agent.WAAGENT)


class OsState(StrEnum):
    """Azure's OS state of an image: provisioned at first boot (generalized) or used as it is."""

    GENERALIZED = "generalized"
    SPECIALIZED = "specialized"

    @property
    def azure(self) -> str:
        """Azure's spelling: Generalized | Specialized."""
        return self.value.capitalize()


class KeepPolicy(StrEnum):
    """When a boot's scratch folder (overlay, OVMF vars, media, SSH key) is kept."""

    NEVER = "never"
    ON_ERROR = "on-error"
    ALWAYS = "always"


class Accel(StrEnum):
    """The accelerator: auto probes KVM once per host and falls back to TCG."""

    AUTO = "auto"
    KVM = "kvm"
    TCG = "tcg"


class SettingStyle(StrEnum):
    """How a recipe [[settings]] entry is written into its file."""

    KV = "kv"
    SSHD = "sshd"
    SHELL = "shell"
    FILE = "file"
    LINE = "line"
    COMMENT = "comment"  # active lines that read `value` become comments


def values(enum: type[E]) -> tuple[str, ...]:
    """Every value of an enum, e.g. for argparse `choices` or a schema's one-of."""
    return tuple(member.value for member in enum)


def expand(enum: type[E], choice: str, *, every: str = "all", allowed: Iterable[E] | None = None) -> tuple[E, ...]:
    """A CLI choice as members: a value, or `every` ('all', 'both') for every member (or every allowed one)."""
    if choice == every:
        return tuple(allowed) if allowed is not None else tuple(enum)
    return (enum(choice),)
