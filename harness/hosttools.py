"""`harness doctor`: the host tools and files the harness uses, their Debian packages, and installing what is missing.

The list is read from the code that requires them (the build routes, the offline audit's disk tools, the families'
initramfs listers, proc.TOOL_PACKAGES for the package names), plus what verify and boot start and the firmware
files QEMU loads. Tools only the project's own tests use (shellcheck, rpmbuild, createrepo_c, node) are not listed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from harness import proc
from harness.errors import HarnessError, ToolMissingError

log = logging.getLogger(__name__)

# What verify and boot start (vm/machine.py, vm/netns.py, vm/network.py, vm/accel.py), and what CI uses on builds.
VERIFY_TOOLS = ("qemu-system-x86_64", "qemu-img", "ip", "dnsmasq", "unshare", "nsenter", "swtpm")  # swtpm: the vTPM
VENDOR_EXTRA = ("gpgv",)  # builder/fetch.py: signed checksum lists of vendor images
ARTIFACT_TOOLS = ("zstd", "tar")  # compressing a VHD (sparse, 30 GiB) for a CI artifact
ROOTLESS_TOOLS = ("newuidmap",)  # mmdebstrap's unshare mode when not root
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")  # mmdebstrap on a non-Debian host
APT_GET_ENV = {"DEBIAN_FRONTEND": "noninteractive"}


@dataclass(frozen=True)
class HostNeed:
    """A tool on PATH (or firmware files: any one of `files`), the Debian package with it, and what uses it."""

    name: str
    package: str
    used_for: str
    files: tuple[Path, ...] = ()

    def present(self) -> bool:
        if self.files:
            return any(path.exists() for path in self.files)
        try:
            proc.which(self.name)
        except ToolMissingError:
            return False
        return True


@dataclass(frozen=True)
class NeedStatus:
    need: HostNeed
    present: bool

    def to_json(self) -> dict[str, object]:
        return {"name": self.need.name, "package": self.need.package, "used_for": self.need.used_for,
                "present": self.present, "files": [str(p) for p in self.need.files]}


def package_of(tool: str) -> str:
    return proc.TOOL_PACKAGES.get(tool, tool)


def _route_tools() -> list[tuple[str, tuple[str, ...]]]:
    """(what, tools) of each build route, in the order of builder/pipeline.py's ROUTES."""
    from harness.builder.pipeline import ROUTES

    names = {"mmdebstrap": "build (apt family)", "dnf": "build (dnf family)", "zypper": "build (zypper family)",
             "base_image": "build (vendor image)"}
    return [(names.get(kind, f"build ({kind})"), route.tools) for kind, route in ROUTES.items()]


def _check_tools() -> tuple[str, ...]:
    from harness.builder.families import FAMILIES
    from harness.checks.audit import DISK_TOOLS

    listers = tuple(dict.fromkeys(f.initramfs_tool for f in FAMILIES.values()))
    return (*DISK_TOOLS, *listers)


def _files() -> list[HostNeed]:
    """Firmware QEMU loads and the keyring mmdebstrap needs: files, not tools."""
    from harness.vm import firmware

    ovmf = tuple(folder / code for folder in firmware.OVMF_DIRS for code, _ in firmware.OVMF_PAIRS)
    return [HostNeed("OVMF (UEFI firmware)", "ovmf", "verify, boot (uefi = Gen2)", ovmf),
            HostNeed("SeaBIOS (BIOS firmware)", "seabios", "verify, boot (bios = Gen1)", firmware.SEABIOS),
            HostNeed("Debian archive keyring", "debian-archive-keyring", "build (Debian releases)",
                     (DEBIAN_KEYRING,))]


def needs(families: Iterable[str] = ()) -> list[HostNeed]:
    """Every host tool and firmware file, each once, with everything that uses it; `families` narrows the build
    routes to those families (and vendor images) when given."""
    wanted = set(families)
    groups: list[tuple[str, tuple[str, ...]]] = []
    for what, tools in _route_tools():
        family = what.removeprefix("build (").removesuffix(" family)")
        if not wanted or family in wanted or what == "build (vendor image)":
            groups.append((what, tools))
    groups += [("build (vendor image)", VENDOR_EXTRA), ("build without root", ROOTLESS_TOOLS),
               ("check", _check_tools()), ("verify, boot", VERIFY_TOOLS), ("CI artifacts", ARTIFACT_TOOLS)]
    uses: dict[str, list[str]] = {}
    for what, tools in groups:
        for tool in tools:
            uses.setdefault(tool, [])
            if what not in uses[tool]:
                uses[tool].append(what)
    return [*(HostNeed(tool, package_of(tool), "; ".join(whats)) for tool, whats in uses.items()), *_files()]


def survey(families: Iterable[str] = ()) -> list[NeedStatus]:
    """Each need with whether this host has it (no side effect)."""
    return [NeedStatus(need, need.present()) for need in needs(families)]


def missing_packages(statuses: Iterable[NeedStatus]) -> list[str]:
    return list(dict.fromkeys(s.need.package for s in statuses if not s.present))


def install_argvs(packages: list[str]) -> list[list[str]]:
    """The apt-get commands `doctor --install` runs (pure: shown to the user before they run)."""
    return [["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]]


def install(packages: list[str], announce: Callable[[str], None]) -> None:
    """Install Debian packages with apt-get (root only); `announce` is told each command before it runs."""
    if not packages:
        return
    if os.geteuid() != 0:
        line = proc.shell_line(install_argvs(packages)[1])
        raise HarnessError("installing packages needs root", f"run it with sudo, or run: sudo {line}")
    env = {**os.environ, **APT_GET_ENV}
    for argv in install_argvs(packages):
        announce(proc.shell_line(argv))
        proc.stream(argv, env=env, on_line=lambda line: log.info("%s", line),
                    hint="apt-get failed: check the package sources (apt-get update) and the names above")
