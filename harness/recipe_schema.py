"""Recipe schema: what every key may hold, and validation that reports every problem with its key path."""

from __future__ import annotations

from collections.abc import Callable
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
    "name": _nonempty_str,
    "family": _one_of(*FAMILIES),
    "release": _nonempty_str,
    "description": _str,
    "extends": _nonempty_str,
    "source": {
        "bootstrap": _one_of("mmdebstrap", "dnf", "zypper"),
        "mirror": _str,
        "keyring": _str,
        "components": _str_list,
        "repositories": TableList(REPOSITORY_SCHEMA),
        "base_image": BASE_IMAGE_SCHEMA,
    },
    "packages": {"include": _str_list, "exclude": _str_list},
    "kernel": {"package": _nonempty_str, "cmdline": _str_list, "initramfs_modules": _str_list},
    "agent": {
        "provisioning": _one_of(*AGENTS),
        "cloud-init": AGENT_PACKAGES_SCHEMA,
        "waagent": AGENT_PACKAGES_SCHEMA,
        "ignition": AGENT_PACKAGES_SCHEMA,
    },
    "image": {
        "disk_size_mib": _int_range(64, 1023 * 1024),
        "esp_size_mib": _int_range(33, 1024),
        "generations": _list_of(*GENERATIONS),
        "os_state": _one_of(*OS_STATES),
        "machine_id": _one_of("uninitialized", "empty"),
    },
    "gallery": {"publisher": _nonempty_str, "offer": _nonempty_str, "sku": _nonempty_str},
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


def _validate_table(data: Any, schema: Schema, path: str, problems: list[str]) -> None:
    if not isinstance(data, dict):
        problems.append(f"{path or 'top level'}: must be a table")
        return
    for key, value in data.items():
        where = f"{path}.{key}" if path else key
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
        style = entry.get("style", "kv" if entry.get("key") else "file")
        if style in ("file", "line") and entry.get("key"):
            problems.append(f"{where}.key: style '{style}' takes no key")
        if style not in ("file", "line") and not entry.get("key"):
            problems.append(f"{where}.key: style '{style}' needs a key")
        if isinstance(entry.get("file"), str) and not entry["file"].startswith("/"):
            problems.append(f"{where}.file: must be an absolute path in the guest")


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


def validate(data: dict[str, Any]) -> list[str]:
    """Every problem of a recipe (after `extends`), each with its key path; empty when valid."""
    problems: list[str] = []
    _validate_table(data, SCHEMA, "", problems)
    _validate_settings(data.get("settings"), problems)
    _validate_semantics(data, problems)
    return problems
