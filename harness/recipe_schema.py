"""Recipe schema: what every key may hold, and validation that reports every problem with its key path."""

from __future__ import annotations

import posixpath
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from harness.enums import Agent, Family, Generation, OsState, Platform, SettingStyle, values

FAMILIES = values(Family)
AGENTS = values(Agent)
GENERATIONS = values(Generation)
OS_STATES = values(OsState)
SETTING_STYLES = values(SettingStyle)
PLATFORMS = values(Platform)
DEFAULT_DISK_SIZE_MIB = 30 * 1024
MAX_DISK_SIZE_MIB = 1023 * 1024  # Azure's largest OS disk (1023 GiB); builder/layout.py refuses more too

# A recipe name (its file name, and its builds/<name>/ folder): no '/', no leading '.', so never '..'.
RECIPE_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]*")
# Azure's publisher, offer and sku of an image definition: letters, digits, '.', '-', '_', alphanumeric at both ends.
GALLERY_IDENTITY_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?")
# Debian policy 5.6.7: lower case letters, digits, '+', '-', '.'; at least two characters, alphanumeric first.
DPKG_NAME_RE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
# rpm names are looser; these would split one name into two (',' for --include) or mean something to a shell.
RPM_NAME_FORBIDDEN = frozenset(",/;&|<>()$`\\\"'*?[]{}!#~")
# Each kernel.cmdline token goes into GRUB_CMDLINE_LINUX="..." in /etc/default/grub, which grub-mkconfig sources
# and writes into grub.cfg's `linux` line: these characters mean something at one of those steps.
CMDLINE_FORBIDDEN = "\"'\\$`;{}|&<>#"
SHELL_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Mounted over the image at boot: a file the build writes under them is hidden, so the setting never applies.
VIRTUAL_FILE_SYSTEMS = ("/proc", "/sys", "/dev", "/run")


# ----------------------------------------------------------------------------------------------
# Schema: key -> (type check, description). Nested tables have their own schema dicts.

Checker = Callable[[Any], str | None]


def _str(value: Any) -> str | None:
    return None if isinstance(value, str) else f"must be a string, not {type(value).__name__}"


def _nonempty_str(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    return None if value.strip() else "must not be empty"


def _bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _str_list(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return "must be a list of strings"
    return None


def _int_range(low: int, high: int) -> Checker:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be an integer"
        if not low <= value <= high:
            return f"must be between {low} and {high}"
        return None

    return check


def _one_of(*choices: str) -> Checker:
    def check(value: Any) -> str | None:
        if value not in choices:
            return f"must be one of {', '.join(choices)} (got {value!r})"
        return None

    return check


def _list_of(*choices: str) -> Checker:
    def check(value: Any) -> str | None:
        if not isinstance(value, list) or not value:
            return f"must be a non-empty list drawn from {', '.join(choices)}"
        bad = [v for v in value if v not in choices]
        return f"unknown entries {bad}; allowed: {', '.join(choices)}" if bad else None

    return check


def _nonempty_str_list(value: Any) -> str | None:
    return _str_list(value) or (None if value else "must not be empty (leave the key out for none)")


def _matching(pattern: re.Pattern[str], rule: str) -> Checker:
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"must be a string, not {type(value).__name__}"
        return None if pattern.fullmatch(value) else f"{value!r} is not valid: {rule}"

    return check


_recipe_name = _matching(RECIPE_NAME_RE, "a recipe name is letters, digits, '.', '_', '+' and '-', not starting with "
                                         "'.' (it names a file next to this one and a builds/ folder)")
_gallery_identity = _matching(GALLERY_IDENTITY_RE, "Azure takes letters, digits, '.', '-' and '_', starting and "
                                                   "ending with a letter or digit, at most 64 characters")


def _sha256(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        return "must be 64 lower-case hex digits"
    return None


Schema = dict[str, Any]


@dataclass(frozen=True)
class TableList:
    """A rule for an array of tables ([[...]] or a list of inline tables), each checked against `schema`."""

    schema: Schema


# family -> the bootstrap tool that family's recipes use; flatcar has none (vendor image only).
BOOTSTRAP_OF_FAMILY = {"apt": "mmdebstrap", "dnf": "dnf", "zypper": "zypper"}
IMAGE_FORMATS = ("qcow2", "raw", "vpc")
COMPRESSIONS = ("", "bz2", "xz", "gz")
REPO_URL_KEYS = ("baseurl", "mirrorlist", "metalink")

BASE_IMAGE_SCHEMA: Schema = {
    "url": _nonempty_str, "sha256": _sha256, "checksum_url": _nonempty_str, "signature": _str,
    "format": _one_of(*IMAGE_FORMATS), "compression": _one_of(*COMPRESSIONS),
}
REPOSITORY_SCHEMA: Schema = {
    "id": _nonempty_str, "name": _str, "baseurl": _nonempty_str, "mirrorlist": _nonempty_str,
    "metalink": _nonempty_str, "gpgkey": _str_list, "gpgcheck": _bool, "sslclientcert": _str, "sslclientkey": _str,
    "sslcacert": _str,
}
AGENT_PACKAGES_SCHEMA: Schema = {
    "include": _str_list, "exclude": _str_list, "enable_units": _str_list, "disable_units": _str_list,
}
SCHEMA: Schema = {
    "name": _recipe_name,
    "family": _one_of(*FAMILIES),
    "release": _nonempty_str,
    "description": _str,
    "extends": _recipe_name,
    "source": {
        "bootstrap": _one_of("mmdebstrap", "dnf", "zypper"),
        "mirror": _str,
        "keyring": _str,
        "components": _str_list,
        "repositories": TableList(REPOSITORY_SCHEMA),
        "base_image": BASE_IMAGE_SCHEMA,
    },
    "packages": {"include": _nonempty_str_list, "exclude": _str_list},
    "kernel": {"package": _nonempty_str, "cmdline": _str_list, "initramfs_modules": _str_list},
    "agent": {
        "provisioning": _one_of(*AGENTS),
        "cloud-init": AGENT_PACKAGES_SCHEMA,
        "waagent": AGENT_PACKAGES_SCHEMA,
        "ignition": AGENT_PACKAGES_SCHEMA,
    },
    "image": {
        "disk_size_mib": _int_range(64, MAX_DISK_SIZE_MIB),
        "esp_size_mib": _int_range(33, 1024),
        "generations": _list_of(*GENERATIONS),
        "os_state": _one_of(*OS_STATES),
        "machine_id": _one_of("uninitialized", "empty"),
    },
    "gallery": {"publisher": _gallery_identity, "offer": _gallery_identity, "sku": _gallery_identity},
    "checks": {
        "allowed_failed_units": _str_list,
        "platforms": _list_of(*PLATFORMS),
        "boot_timeout_s": _int_range(30, 3600),
    },
}
SETTING_SCHEMA: Schema = {
    "file": _nonempty_str, "key": _str, "value": _str, "reason": _nonempty_str,
    "style": _one_of(*SETTING_STYLES), "agent": _one_of(*AGENTS),
}
REQUIRED = ("name", "family", "release")


def _shown(key: Any) -> str:
    """A key as it appears in a key path; one holding control characters is shown escaped, never raw."""
    text = str(key)
    return text if text.isprintable() else repr(text)


def _join(path: str, key: Any) -> str:
    return f"{path}.{_shown(key)}" if path else _shown(key)


def _validate_table(data: Any, schema: Schema, path: str, problems: list[str]) -> None:
    if not isinstance(data, dict):
        problems.append(f"{path or 'top level'}: must be a table")
        return
    for key, value in data.items():
        where = _join(path, key)
        if key == "settings" and not path:
            continue
        rule = schema.get(key)
        if rule is None:
            known = ", ".join(sorted(schema)) + (", settings" if not path else "")
            problems.append(f"{where}: unknown key (known keys: {known})")
        elif isinstance(rule, dict):
            _validate_table(value, rule, where, problems)
        elif isinstance(rule, TableList):
            _validate_table_list(value, rule.schema, where, problems)
        else:
            message = rule(value)
            if message:
                problems.append(f"{where}: {message}")


def _validate_table_list(value: Any, schema: Schema, where: str, problems: list[str]) -> None:
    if not isinstance(value, list):
        problems.append(f"{where}: must be an array of tables")
        return
    for index, entry in enumerate(value):
        _validate_table(entry, schema, f"{where}[{index}]", problems)


def setting_style(entry: dict[str, Any]) -> Any:
    """A setting's style: given, or 'kv' with a key and 'file' without one (recipe.py builds it the same way)."""
    return entry.get("style", "kv" if entry.get("key") else "file")


def _validate_settings(raw: Any, problems: list[str]) -> None:
    if raw is None:
        return
    if not isinstance(raw, list):
        problems.append("settings: must be an array of tables ([[settings]])")
        return
    for index, entry in enumerate(raw):
        where = f"settings[{index}]"
        _validate_table(entry, SETTING_SCHEMA, where, problems)
        if not isinstance(entry, dict):
            continue
        for required in ("file", "value", "reason"):
            if required not in entry:
                problems.append(f"{where}.{required}: missing (every setting needs file, value and reason)")
        style = setting_style(entry)
        if style in ("file", "line") and entry.get("key"):
            problems.append(f"{where}.key: style '{style}' takes no key")
        if style not in ("file", "line") and not entry.get("key"):
            problems.append(f"{where}.key: style '{style}' needs a key")
        if isinstance(entry.get("file"), str):
            _check(f"{where}.file", guest_path_problem(entry["file"]), problems)
        if isinstance(entry.get("key"), str) and entry["key"]:
            _check(f"{where}.key", _setting_key_problem(entry["key"], style), problems)
        value = entry.get("value")
        if style in ("kv", "sshd", "line") and isinstance(value, str) and value != value.strip():
            problems.append(f"{where}.value: {value!r} starts or ends with whitespace, which a reader of a "
                            f"'{style}' line strips (the audit would never find it)")


def _check(where: str, message: str | None, problems: list[str]) -> None:
    if message:
        problems.append(f"{where}: {message}")


def guest_path_problem(path: str) -> str | None:
    """Why `path` cannot be a file the build writes into the image (None when it can)."""
    problem = _path_shape_problem(path)
    top = "/" + path.split("/")[1] if not problem else ""
    if top in VIRTUAL_FILE_SYSTEMS:
        return (f"{path!r} is under {top}: the build writes this file into the image, and {top} is a virtual file "
                "system mounted over it at boot, so the setting would never apply; use a file the OS reads at boot "
                "(e.g. /etc/sysctl.d/, /etc/tmpfiles.d/, /etc/udev/rules.d/)")
    return problem


def _path_shape_problem(path: str) -> str | None:
    """An absolute, normalized path naming a file: no '..', '.', '//' or trailing '/', and not / itself."""
    if not path.startswith("/"):
        return "must be an absolute path in the guest"
    if path == "/":
        return "must name a file, not / itself"
    if "//" in path:
        return f"{path!r} holds '//': write the path normalized"
    if ".." in path.split("/"):
        return f"{path!r} holds a '..' component: name the file itself, inside the image"
    normal = posixpath.normpath(path)
    return f"{path!r} is not normalized: write {normal!r}" if normal != path else None


def _setting_key_problem(key: str, style: Any) -> str | None:
    if style == "shell" and not SHELL_NAME_RE.fullmatch(key):
        return f"{key!r} is not a shell variable name (letters, digits and '_', not starting with a digit)"
    if style in ("kv", "sshd") and (any(c.isspace() for c in key) or "=" in key or key.startswith("#")):
        return f"{key!r} holds whitespace, '=' or a leading '#', so the line it writes would not read back as this key"
    return None


# -- names and tokens that reach a package manager, a shell or grub.cfg ------------------------------------

def _package_problem(name: str, family: Any) -> str | None:
    if family == "apt":
        if DPKG_NAME_RE.fullmatch(name):
            return None
        return (f"{name!r} is not a Debian package name (lower-case letters, digits, '+', '-' and '.', at least two "
                "characters, starting with a letter or digit)")
    bad = sorted({c for c in name if c.isspace() or c in RPM_NAME_FORBIDDEN})
    if not name or name.startswith("-") or bad:
        shown = f"holds {' '.join(repr(c) for c in bad)}" if bad else "is empty or starts with '-'"
        return f"{name!r} {shown}: a package name has no whitespace, ',', '/' or shell characters"
    return None


def _package_lists(data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(key path, list of package names) for every list of package names in the recipe."""
    packages = data.get("packages")
    if isinstance(packages, dict):
        yield from ((f"packages.{k}", packages.get(k)) for k in ("include", "exclude"))
    agent = data.get("agent")
    if isinstance(agent, dict):
        for variant in AGENTS:
            table = agent.get(variant)
            if isinstance(table, dict):
                yield from ((f"agent.{variant}.{k}", table.get(k)) for k in ("include", "exclude"))
    kernel = data.get("kernel")
    if isinstance(kernel, dict) and isinstance(kernel.get("package"), str):
        yield "kernel.package", [kernel["package"]]


def _validate_packages(data: dict[str, Any], problems: list[str]) -> None:
    family = data.get("family")
    for where, names in _package_lists(data):
        if not isinstance(names, list):
            continue
        single = where == "kernel.package"
        for index, name in enumerate(names):
            if isinstance(name, str):
                _check(where if single else f"{where}[{index}]", _package_problem(name, family), problems)


def _cmdline_problem(token: str) -> str | None:
    bad = sorted({c for c in token if c.isspace() or unicodedata.category(c) == "Cc" or c in CMDLINE_FORBIDDEN})
    if token and not bad:
        return None
    what = f"holds {' '.join(repr(c) for c in bad)}" if bad else "is empty"
    return (f"{token!r} {what}: a token cannot survive /etc/default/grub -> grub.cfg quoting with whitespace, "
            f"control characters or any of {' '.join(CMDLINE_FORBIDDEN)} (give each argument as its own token)")


def _validate_cmdline(data: dict[str, Any], problems: list[str]) -> None:
    kernel = data.get("kernel")
    tokens = kernel.get("cmdline") if isinstance(kernel, dict) else None
    if isinstance(tokens, list):
        for index, token in enumerate(tokens):
            if isinstance(token, str):
                _check(f"kernel.cmdline[{index}]", _cmdline_problem(token), problems)


# -- control characters in any string ------------------------------------------------------------------

def _control_problem(text: str, multiline: bool) -> str | None:
    """A control or line-separator character (allowed: newline and tab in multi-line text) in `text`."""
    for index, char in enumerate(text):
        if multiline and char in "\n\t":
            continue
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            allowed = " (only newline and tab are allowed here)" if multiline else ""
            return f"contains a control character (U+{ord(char):04X} at position {index}){allowed}"
    return None


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """(key path, string) for every string in a nested value; iterative, so any depth tomllib read is fine."""
    stack = [(where, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            yield path, item
        elif isinstance(item, dict):
            stack.extend((_join(path, k), v) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(item))))


def _multiline(where: str, entry: Any) -> bool:
    """Free text (description, a reason) and a whole-file setting's value may span lines."""
    key = where.rsplit(".", 1)[-1]
    if where == "description" or (where.startswith("settings[") and key == "reason"):
        return True
    return key == "value" and isinstance(entry, dict) and setting_style(entry) == "file"


def _validate_text(data: dict[str, Any], problems: list[str]) -> None:
    settings = data.get("settings")
    entries = settings if isinstance(settings, list) else []
    for key, value in data.items():
        if key == "settings" and isinstance(settings, list):
            continue
        for where, text in _strings(value, _join("", key)):
            _check(where, _control_problem(text, _multiline(where, None)), problems)
    for index, entry in enumerate(entries):
        for where, text in _strings(entry, f"settings[{index}]"):
            _check(where, _control_problem(text, _multiline(where, entry)), problems)


def _validate_semantics(data: dict[str, Any], problems: list[str]) -> None:
    for key in REQUIRED:
        if key not in data:
            problems.append(f"{key}: missing (required)")
    source = data.get("source", {})
    if isinstance(source, dict):
        _validate_source(source, data.get("family"), problems)
    else:
        problems.append("source: missing (needs exactly one of 'bootstrap' or 'base_image')")
    gallery = data.get("gallery")
    if gallery is None:
        problems.append("gallery: missing (needs publisher, offer and sku)")
    elif isinstance(gallery, dict):
        for key in ("publisher", "offer", "sku"):
            if key not in gallery:
                problems.append(f"gallery.{key}: missing (required)")
    agent = data.get("agent", {})
    provisioning = agent.get("provisioning", "cloud-init") if isinstance(agent, dict) else None
    if (data.get("family") == "flatcar") != (provisioning == "ignition"):
        problems.append("agent.provisioning: 'ignition' provisions flatcar-family images, and only them")
    image = data.get("image", {})
    if isinstance(image, dict) and image.get("os_state") == "specialized":
        problems.append("image.os_state: use 'harness build --specialized' instead of a specialized recipe")


def _validate_source(source: dict[str, Any], family: Any, problems: list[str]) -> None:
    has_bootstrap = "bootstrap" in source
    has_image = "base_image" in source
    if has_bootstrap == has_image:
        problems.append("source: needs exactly one of 'bootstrap' or 'base_image'")
    wanted = BOOTSTRAP_OF_FAMILY.get(family) if isinstance(family, str) else None
    if has_bootstrap and family in FAMILIES and source["bootstrap"] != wanted:
        problems.append(f"source.bootstrap: family {family} bootstraps with "
                        f"{wanted or 'nothing (use source.base_image)'}, not {source['bootstrap']!r}")
    image = source.get("base_image")
    if isinstance(image, dict):
        if ("sha256" in image) == ("checksum_url" in image):
            problems.append("source.base_image: needs exactly one of 'sha256' (pinned) or 'checksum_url' "
                            "(the vendor's checksum file)")
        if image.get("signature") and not source.get("keyring"):
            problems.append("source.keyring: missing (source.base_image.signature is checked against it)")
    if has_bootstrap and source.get("bootstrap") in ("dnf", "zypper"):
        _validate_repositories(source.get("repositories"), problems)


def _validate_repositories(repos: Any, problems: list[str]) -> None:
    if not isinstance(repos, list) or not repos:
        problems.append("source.repositories: missing (a dnf or zypper bootstrap installs from these)")
        return
    ids = [r.get("id") for r in repos if isinstance(r, dict)]
    for index, repo in enumerate(repos):
        if not isinstance(repo, dict):
            continue
        where = f"source.repositories[{index}]"
        if "id" not in repo:
            problems.append(f"{where}.id: missing (required)")
        elif ids.count(repo["id"]) > 1:
            problems.append(f"{where}.id: {repo['id']!r} is used by more than one repository")
        if sum(key in repo for key in REPO_URL_KEYS) != 1:
            problems.append(f"{where}: needs exactly one of {', '.join(REPO_URL_KEYS)}")


def validate(data: Any) -> list[str]:
    """Every problem of a recipe (after `extends`), each with its key path; empty when valid."""
    if not isinstance(data, dict):
        return [f"top level: must be a table, not {type(data).__name__}"]
    problems: list[str] = []
    _validate_table(data, SCHEMA, "", problems)
    _validate_settings(data.get("settings"), problems)
    _validate_semantics(data, problems)
    _validate_packages(data, problems)
    _validate_cmdline(data, problems)
    _validate_text(data, problems)
    return problems
