"""Pure parsers for the guest files the audit reads: fstab, passwd/shadow, kernel config and command line,
sshd_config (first match wins, with Include), dhclient.conf, key=value files, dpkg's status database.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field

# ---------------------------------------------------------------------------------------------
# fstab


@dataclass(frozen=True)
class FstabEntry:
    spec: str
    mountpoint: str
    fstype: str
    options: tuple[str, ...]
    line: str


def parse_fstab(text: str) -> list[FstabEntry]:
    """Active fstab lines (comments and blank lines dropped)."""
    entries = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 3:
            continue
        options = tuple(words[3].split(",")) if len(words) > 3 else ("defaults",)
        entries.append(FstabEntry(words[0], words[1], words[2], options, line.strip()))
    return entries


STABLE_SPECS = ("UUID=", "LABEL=", "PARTUUID=", "PARTLABEL=", "/dev/disk/by-uuid/", "/dev/disk/by-label/",
                "/dev/disk/by-partuuid/", "/dev/disk/by-partlabel/", "/dev/disk/azure/")


def is_device_spec(spec: str) -> bool:
    """Whether an fstab source names a block device (as opposed to tmpfs, proc, a network share...)."""
    return spec.startswith(("/dev/", "UUID=", "LABEL=", "PARTUUID=", "PARTLABEL="))


def is_stable_spec(spec: str) -> bool:
    return spec.startswith(STABLE_SPECS)


def spec_uuid(spec: str) -> str | None:
    """'UUID=abc' or '/dev/disk/by-uuid/abc' -> 'abc' (lower case)."""
    for prefix in ("UUID=", "/dev/disk/by-uuid/"):
        if spec.startswith(prefix):
            return spec.removeprefix(prefix).strip("\"'").lower()
    return None


# ---------------------------------------------------------------------------------------------
# passwd / shadow


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    password: str
    uid: int
    home: str
    shell: str


def parse_passwd(text: str) -> list[PasswdEntry]:
    users = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 7 or not fields[2].isdigit():
            continue
        users.append(PasswdEntry(fields[0], fields[1], int(fields[2]), fields[5], fields[6]))
    return users


def parse_shadow(text: str) -> list[tuple[str, str]]:
    """(user, password field) per shadow line."""
    return [(f[0], f[1]) for line in text.splitlines() if len(f := line.split(":")) >= 2 and f[0]]


LOCKED_OR_EMPTY = ("", "*", "!", "!!", "x")


def usable_hash(field: str) -> bool:
    """Whether a password field holds a hash someone could log in with (not locked, not a placeholder)."""
    return field not in LOCKED_OR_EMPTY and not field.startswith(("!", "*"))


def login_shell(shell: str) -> bool:
    """Shells the checklist counts as interactive (`*sh`, not nologin/false)."""
    return shell.endswith("sh") and not shell.endswith("nologin")


# ---------------------------------------------------------------------------------------------
# kernel and initramfs


def initramfs_paths(listing: str) -> list[str]:
    """Paths from `lsinitramfs` (one per line) or `lsinitrd` (ls -l style, symlinks as 'a -> b') output."""
    paths = []
    for line in listing.splitlines():
        # -rw-r--r--   1 root root 337353 Nov 16 10:17 usr/lib/modules/6.1.0-56-cloud-amd64/.../hv_vmbus.ko
        words = line.split(" -> ", 1)[0].split()
        if words:
            paths.append(words[-1])
    return paths


def parse_kernel_config(text: str) -> dict[str, str]:
    """CONFIG_X -> 'y' | 'm' | value; '# CONFIG_X is not set' -> 'n'."""
    config: dict[str, str] = {}
    for line in text.splitlines():
        # CONFIG_UDF_FS=m
        match = re.match(r"^(CONFIG_\w+)=(.*)$", line)
        if match:
            config[match.group(1)] = match.group(2).strip('"')
            continue
        # # CONFIG_UDF_FS is not set
        unset = re.match(r"^# (CONFIG_\w+) is not set$", line)
        if unset:
            config[unset.group(1)] = "n"
    return config





def cmdline_params(words: list[str]) -> list[tuple[str, str | None]]:
    """Kernel parameters as (name, value or None), in order."""
    params = []
    for word in words:
        name, sep, value = word.partition("=")
        params.append((name, value if sep else None))
    return params


def has_param(params: list[tuple[str, str | None]], name: str, value_prefix: str | None = None) -> bool:
    """Whether name (with a value starting with value_prefix, e.g. console=ttyS0,115200) is present."""
    return any(n == name and (value_prefix is None or (v or "").startswith(value_prefix)) for n, v in params)


def param_value(params: list[tuple[str, str | None]], name: str) -> str | None:
    values = [v for n, v in params if n == name]
    return values[-1] if values else None  # the kernel keeps the last one


# ---------------------------------------------------------------------------------------------
# sshd_config: the first value found wins, Include expands in place, Match blocks are not global.

@dataclass(frozen=True)
class SshdValue:
    value: str | None
    source: str | None  # file the effective value comes from


def sshd_effective(keyword: str, read: Callable[[str], str | None], expand: Callable[[str], list[str]],
                   main: str = "/etc/ssh/sshd_config") -> SshdValue:
    """The global value sshd uses for keyword: its first occurrence outside Match blocks."""
    found = _sshd_scan(keyword.lower(), main, read, expand, depth=0)
    return found or SshdValue(None, None)


def _sshd_scan(keyword: str, path: str, read: Callable[[str], str | None], expand: Callable[[str], list[str]],
               depth: int) -> SshdValue | None:
    text = read(path)
    if text is None or depth > 16:
        return None
    for line in text.splitlines():
        # ClientAliveInterval 180   |   ClientAliveInterval=180
        match = re.match(r"^\s*(\w+)(?:\s*=\s*|\s+)(.*?)\s*$", line)
        if not match or line.lstrip().startswith("#"):
            continue
        key, value = match.group(1).lower(), match.group(2)
        if key == "match" and value.lower() != "all":
            return None  # the rest of this file is conditional
        if key == "include":
            for pattern in value.split():
                absolute = pattern if pattern.startswith("/") else posixpath.join("/etc/ssh", pattern)
                for included in expand(absolute):
                    hit = _sshd_scan(keyword, included, read, expand, depth + 1)
                    if hit is not None:
                        return hit
        elif key == keyword:
            return SshdValue(value.split()[0] if value else "", path)
    return None


def glob_names(pattern: str, names: list[str]) -> list[str]:
    """Names in one directory matching the last component of a glob, sorted as glob(3) does."""
    return sorted(n for n in names if fnmatch.fnmatchcase(n, posixpath.basename(pattern)))


def sshd_seconds(value: str) -> int | None:
    """sshd time format: '180', '3m', '1h30m' -> seconds; None when malformed."""
    units = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    parts = re.findall(r"(\d+)([smhdwSMHDW]?)", value)
    if not parts or "".join(a + b for a, b in parts) != value:
        return None
    return sum(int(num) * units[unit.lower()] for num, unit in parts)


# ---------------------------------------------------------------------------------------------
# dhclient.conf, key=value files


def dhclient_timeout(text: str) -> int | None:
    """The global `timeout N;` dhclient uses (the last one outside interface/lease blocks)."""
    depth = 0
    value: int | None = None
    for line in text.splitlines():
        code = line.split("#", 1)[0]
        # timeout 300;
        match = re.match(r"^\s*timeout\s+(\d+)\s*;", code)
        if match and depth == 0:
            value = int(match.group(1))
        depth += code.count("{") - code.count("}")
    return value


def kv_values(text: str) -> dict[str, str]:
    """KEY=VALUE lines (waagent.conf, sysconfig); comments dropped; the last assignment wins."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        key, _, value = stripped.partition("=")
        values[key.strip()] = value.strip().strip("\"'")
    return values


# ---------------------------------------------------------------------------------------------
# dpkg status


@dataclass
class DpkgPackage:
    name: str
    status: str
    version: str
    arch: str
    conffiles: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)  # (path, md5, flags)

    @property
    def installed(self) -> bool:
        return self.status.endswith(" installed")


def parse_dpkg_status(text: str) -> list[DpkgPackage]:
    """Packages from /var/lib/dpkg/status with their conffiles and packaged md5s."""
    packages = []
    for para in text.split("\n\n"):
        fields: dict[str, str] = {}
        conffiles: list[tuple[str, str, tuple[str, ...]]] = []
        key = ""
        for line in para.splitlines():
            if line.startswith((" ", "\t")):
                # ' /etc/waagent.conf 6e3f1b7ecc8015e6d940292f1ccb8224'  (optionally ' obsolete')
                words = line.split()
                if key == "Conffiles" and len(words) >= 2:
                    conffiles.append((words[0], words[1], tuple(words[2:])))
                continue
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        if "Package" in fields:
            packages.append(DpkgPackage(fields["Package"], fields.get("Status", ""), fields.get("Version", ""),
                                        fields.get("Architecture", ""), conffiles))
    return packages


def upstream_version(version: str) -> tuple[int, ...]:
    """'1:2.9.0.4-1+b1' -> (2, 9, 0, 4): epoch and packaging revision dropped, numeric parts only."""
    core = version.split(":", 1)[-1]
    core = re.split(r"[-~+]", core, maxsplit=1)[0]
    numbers = re.findall(r"\d+", core)
    return tuple(int(n) for n in numbers)
