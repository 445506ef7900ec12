"""Build options (frozen, what the user asked) and the mutable context a build fills in."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.authenticode import EfiBinary
from harness.builder.efichain import EspPlan
from harness.builder.layout import Layout
from harness.log import Timings
from harness.recipe import Recipe, Setting


def cache_root() -> Path:
    """Downloads and probes cached between builds, outside the repository."""
    base = os.environ.get("HARNESS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "harness")
    return Path(base)


@dataclass(frozen=True)
class BuildOptions:
    agent: str = ""
    specialized: bool = False
    disk_size_mib: int | None = None
    mirror: str = ""
    rebuild: bool = False
    keep_workdir: bool = False
    plan_only: bool = False


@dataclass
class BuildContext:
    """Paths and facts produced while a build runs."""

    recipe: Recipe
    options: BuildOptions
    build_id: str
    build_dir: Path
    work_dir: Path
    cache_dir: Path
    layout: Layout
    timings: Timings = field(default_factory=Timings)
    archive_digests: dict[str, str] = field(default_factory=dict)
    cache_key: str = ""
    root_uuid: str = ""
    esp_serial: str = ""
    disk_guid: str = ""
    part_guids: dict[str, str] = field(default_factory=dict)
    kernel_version: str = ""
    packages: list[dict[str, str]] = field(default_factory=list)
    settings: list[Setting] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    esp: EspPlan | None = None  # the ESP's files (builder/efichain.py)
    efi_binaries: list[EfiBinary] = field(default_factory=list)

    @property
    def agent(self) -> str:
        return self.options.agent or self.recipe.agent

    @property
    def os_state(self) -> str:
        return "specialized" if self.options.specialized else self.recipe.os_state

    @property
    def rootfs(self) -> Path:
        return self.work_dir / "rootfs"

    @property
    def disk_tmp(self) -> Path:
        return self.work_dir / "disk.raw"

    @property
    def boot_dir(self) -> Path:
        """Bootloader images produced from the target's own GRUB."""
        return self.work_dir / "boot"

    @property
    def disk_size_mib(self) -> int:
        return self.recipe.disk_size_mib if self.options.disk_size_mib is None else self.options.disk_size_mib

    @property
    def mirror(self) -> str:
        return self.options.mirror or self.recipe.source.mirror
