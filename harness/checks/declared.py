"""Declared settings and deviations: every setting the build applied must hold in the image, and every
change from the distro's packaged configuration must be explained by a declared setting.

apt family: dpkg's own data is the reference. A conffile whose md5 differs from the one recorded in
/var/lib/dpkg/status is a deviation; so is a file in a configuration location Azure cares about that no
package owns. A deviation is declared when the recipe's settings explain it: a whole-file setting, a file
whose every active line is a declared one, or a conffile whose packaged md5 is reproduced by undoing the
declared keys (their original values are guessed from a small vocabulary: dpkg keeps only the md5).
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from harness.builder.settings import commented_targets, holds, read_from_text, render_line
from harness.checks.image import Image
from harness.checks.rulebase import FAILED, PASSED, SKIPPED, WARNING, Record, listing, record
from harness.manifest import Manifest
from harness.recipe import Setting

CONFIG_LOCATIONS = ("/etc/cloud/cloud.cfg.d", "/etc/ssh/sshd_config.d", "/etc/default/grub", "/etc/waagent.conf",
                    "/etc/initramfs-tools", "/etc/modprobe.d", "/etc/sysctl.d", "/etc/udev/rules.d", "/etc/dhcp")
# Values a packaged key commonly had before a declared setting replaced it.
ORIGINAL_VALUES = ("y", "n", "yes", "no", "true", "false", "True", "False", "auto", "None", "0", "1", "", "cloud-init",
                   "waagent", "disabled", "console", "5")
MAX_CANDIDATES = 20000
UCF_REGISTRY = "/var/lib/ucf/registry"
UCF_HASHFILE = "/var/lib/ucf/hashfile"


@dataclass(frozen=True)
class Deviation:
    """A file that differs from what the distro's packages put there."""

    file: str
    kind: str  # changed | removed | unowned
    package: str
    declared: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def manifest_settings(manifest: Manifest) -> list[Setting]:
    return [Setting(file=s.file, value=s.value, reason=s.reason, key=s.key, style=s.style) for s in manifest.settings]


def label(setting: Setting) -> str:
    if setting.key:
        return f"{setting.file} {setting.key}"
    if setting.style == "comment":
        return f"{setting.file} no active {setting.value.strip()!r}"
    return f"{setting.file} {setting.value.strip()!r}" if setting.style == "line" else f"{setting.file} (whole file)"


def _required(setting: Setting) -> str:
    if setting.style == "comment":
        return f"{setting.value.strip()!r} commented out"
    return setting.value.strip() if setting.style in ("file", "line") else f"{setting.key}={setting.value}"


def evaluate_setting(setting: Setting, text: str | None) -> Record:
    """A declared setting holds in the image (Failed when it does not: the image is not what was declared)."""
    check, required = f"declared setting {label(setting)}", _required(setting)
    if text is None and setting.style != "comment":  # a missing file has no active line to comment out
        return record(check, FAILED, f"{setting.file} missing", required,
                      f"the image lacks {setting.file}; rebuild, or remove the setting from the recipe")
    if holds(text, setting):
        return record(check, PASSED, required, required, setting.reason)
    found = read_from_text(text or "", setting)
    actual = "file differs" if setting.style == "file" else "not present" if found is None else (
        f"{setting.key}={found}" if setting.key else f"{found!r} active" if setting.style == "comment" else found)
    return record(check, FAILED, actual, required, f"{setting.file} does not carry the declared value: something "
                                                   "changed it after the build applied it")


def verify_settings(img: Image, settings: list[Setting]) -> tuple[list[Record], list[dict[str, Any]]]:
    """Records per setting and the list shown in the output."""
    texts = img.root.texts(dict.fromkeys(s.file for s in settings))
    records = [evaluate_setting(s, texts[s.file]) for s in settings]
    listed = [{"file": s.file, "key": s.key, "value": s.value, "style": s.style, "reason": s.reason,
               "holds": r.result == PASSED} for s, r in zip(settings, records, strict=True)]
    return records, listed


# ---------------------------------------------------------------------------------------------
# Is a changed file explained by the declared settings?

def _key_pattern(setting: Setting) -> re.Pattern[str]:
    key = re.escape(setting.key)
    if setting.style == "sshd":
        return re.compile(rf"^\s*{key}\s+", re.IGNORECASE)
    return re.compile(rf"^\s*(?:export\s+)?{key}\s*=")


def lines_declared(text: str, settings: list[Setting]) -> bool:
    """Every active line of text is one of the declared lines or sets a declared key."""
    values = {s.value.strip() for s in settings if s.style == "line"}
    patterns = [_key_pattern(s) for s in settings if s.key]
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped not in values and not any(p.match(line) for p in patterns):
            return False
    return True


def _undo(text: str, setting: Setting) -> Iterator[str]:
    """Texts that apply_to_text(original, setting) could have turned into text (the original among them)."""
    lines = text.splitlines()
    yield text
    if setting.style == "comment":  # apply_to_text wrote '# ' before each line it commented out
        restored = [line[2:] if line.startswith("# ") and commented_targets([line[2:]], setting) else line
                    for line in lines]
        if restored != lines:
            yield "\n".join(restored) + "\n"
        return
    if setting.style == "line":
        hits = [i for i, line in enumerate(lines) if line.strip() == setting.value]
        if hits:
            yield "\n".join(lines[:hits[-1]] + lines[hits[-1] + 1:]) + "\n"
        return
    rendered = render_line(setting)
    hits = [i for i, line in enumerate(lines) if line == rendered]
    if not hits:
        return
    at = hits[0]
    if at == len(lines) - 1:
        yield "\n".join(lines[:at]) + "\n"
    for original in _original_lines(setting):
        yield "\n".join([*lines[:at], original, *lines[at + 1:]]) + "\n"


def _original_lines(setting: Setting) -> Iterator[str]:
    separators = (" ", "\t") if setting.style == "sshd" else ("=", " = ")
    for prefix in ("", "#", "# "):
        for value in dict.fromkeys((*ORIGINAL_VALUES, setting.value)):
            for sep in separators:
                yield f"{prefix}{setting.key}{sep}{value}"
                if setting.style == "shell":
                    yield f'{prefix}{setting.key}{sep}"{value}"'


def candidates(text: str, settings: list[Setting]) -> Iterator[str]:
    """Possible originals: every combination of undoing each keyed/line setting (capped)."""
    variants = [text]
    for setting in settings:
        variants = [v for base in variants for v in _undo(base, setting)][:MAX_CANDIDATES]
    for variant in variants:
        yield variant
        if variant.endswith("\n"):
            yield variant[:-1]


def explained(data: bytes, packaged_md5: str | None, settings: list[Setting]) -> bool:
    """Whether the declared settings account for every difference from the packaged file."""
    if not settings:
        return False
    if any(s.style == "file" for s in settings):
        return True
    text = data.decode("utf-8", errors="surrogateescape")
    if lines_declared(text, settings):
        return True
    if packaged_md5 is None:
        return False
    undoable = [s for s in settings if s.key or s.style in ("line", "comment")]
    return any(_md5(c) == packaged_md5 for c in candidates(text, undoable))


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8", errors="surrogateescape"), usedforsecurity=False).hexdigest()


# ---------------------------------------------------------------------------------------------
# apt family

def apt_deviations(img: Image, settings: list[Setting]) -> list[Deviation]:
    by_file: dict[str, list[Setting]] = {}
    for setting in settings:
        by_file.setdefault(setting.file, []).append(setting)
    packages = [p for p in img.dpkg or [] if p.installed]
    conffiles = {path: (p.name, md5) for p in packages for path, md5, flags in p.conffiles
                 if "obsolete" not in flags and md5 != "newconffile"}
    # Files maintained by ucf (sshd_config, chrony.conf...) are not conffiles, but ucf records their md5.
    managed = {**ucf_files(img), **conffiles}
    found = [d for path, (pkg, md5) in managed.items()
             if (d := _conffile_deviation(img, path, pkg, md5, by_file.get(path, []))) is not None]
    owned = set(managed) | owned_paths(img)
    for path in config_files(img):
        if path not in owned:
            data = img.root.read_bytes(path) or b""
            found.append(Deviation(path, "unowned", "", explained(data, None, by_file.get(path, [])),
                                   "no package owns this file"))
    return found


def _conffile_deviation(img: Image, path: str, package: str, md5: str, settings: list[Setting]) -> Deviation | None:
    data = img.root.read_bytes(path)
    if data is None:
        return Deviation(path, "removed", package, False, f"conffile of {package} is missing")
    if hashlib.md5(data, usedforsecurity=False).hexdigest() == md5:
        return None
    return Deviation(path, "changed", package, explained(data, md5, settings),
                     f"md5 differs from the version {package} installed")


def ucf_files(img: Image) -> dict[str, tuple[str, str]]:
    """path -> (package, md5 ucf installed) from /var/lib/ucf/registry and hashfile."""
    texts = img.root.texts([UCF_REGISTRY, UCF_HASHFILE])
    return parse_ucf(texts[UCF_REGISTRY] or "", texts[UCF_HASHFILE] or "")


def parse_ucf(registry: str, hashfile: str) -> dict[str, tuple[str, str]]:
    """Pure part of ucf_files."""
    # registry: 'openssh-server \t /etc/ssh/sshd_config'
    # hashfile: 'e6fd6e8e29210c5678181f33177d5433  /etc/ssh/sshd_config'
    owners = {words[-1]: words[0] for line in registry.splitlines() if len(words := line.split()) >= 2}
    sums = {words[1]: words[0] for line in hashfile.splitlines() if len(words := line.split()) == 2}
    return {path: (owners.get(path, "ucf"), md5) for path, md5 in sums.items()}


def owned_paths(img: Image) -> set[str]:
    """Every path some package's dpkg file list names."""
    info = "/var/lib/dpkg/info"
    owned: set[str] = set()
    for name in img.root.listdir(info) or []:
        if name.endswith(".list"):
            owned.update(line for line in (img.text(f"{info}/{name}") or "").splitlines() if line)
    return owned


def config_files(img: Image) -> list[str]:
    """Regular files and links in the configuration locations Azure cares about."""
    found = []
    for location in CONFIG_LOCATIONS:
        info = img.root.lstat(location)
        if info is None:
            continue
        if info.kind != "dir":
            found.append(location)
            continue
        found += [p for p, entry in img.root.walk(location) if entry.kind != "dir"]
    return found


DeviationDetector = Callable[[Image, list[Setting]], list[Deviation]]
DETECTORS: dict[str, DeviationDetector] = {"/var/lib/dpkg": apt_deviations}


def deviation_records(img: Image, settings: list[Setting]) -> tuple[list[Record], list[Deviation]]:
    """Warning per undeclared deviation; Skipped (with the reason) where the family has no detector yet."""
    db = img.family.package_db if img.family else ""
    detector = DETECTORS.get(db)
    if detector is None:
        return [record("undeclared deviations", SKIPPED, "not checked", "every deviation declared",
                       f"deviation detection for the {img.family_name} family ({db or 'no package database'}) is "
                       "not implemented yet (TODO: compare 'rpm -V' digests from a dumped rpm database)")], []
    deviations = detector(img, settings)
    undeclared = [d for d in deviations if not d.declared]
    records = [record(f"undeclared deviation {d.file}", WARNING, f"{d.kind}: {d.detail}", "declared in [[settings]]",
                      f"{d.file} differs from the distro default and no declared setting explains it: add a "
                      "[[settings]] entry with its reason to the recipe, or revert the change")
               for d in undeclared]
    declared = [posixpath.basename(d.file) for d in deviations if d.declared]
    records.append(record("undeclared deviations", WARNING if undeclared else PASSED,
                          f"{len(deviations)} deviations, {len(undeclared)} undeclared",
                          "every deviation declared", f"declared: {listing(declared, 20)}"))
    return records, deviations
