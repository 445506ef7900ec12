"""Recipe schema: what every key may hold, and validation that reports every problem with its key path.

The rules for single values (types, names, paths, package names, cmdline tokens) are in recipe_rules.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from harness import recipe_rules as rules
from harness.enums import (
    Agent,
    DiskController,
    Family,
    Generation,
    OsState,
    Platform,
    SecurityType,
    SettingStyle,
    values,
)

FAMILIES = values(Family)
AGENTS = values(Agent)
GENERATIONS = values(Generation)
OS_STATES = values(OsState)
SETTING_STYLES = values(SettingStyle)
COMMENT_MARK = re.compile(r"(^|[ \t])#")  # where a comment starts on a line (settings.py ignores the rest)
KEYLESS_STYLES = (SettingStyle.FILE.value, SettingStyle.LINE.value, SettingStyle.COMMENT.value)  # the rest need a key
PLATFORMS = values(Platform)
SECURITY_TYPES = values(SecurityType)
DISK_CONTROLLERS = values(DiskController)
DEFAULT_DISK_SIZE_MIB = 30 * 1024
MAX_DISK_SIZE_MIB = 1023 * 1024  # Azure's largest OS disk (1023 GiB); builder/layout.py refuses more too


# ----------------------------------------------------------------------------------------------
# Schema: key -> rule (a recipe_rules checker). Nested tables have their own schema dicts.

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
    "url": rules.nonempty_string, "sha256": rules.sha256, "checksum_url": rules.nonempty_string,
    "signature": rules.string, "format": rules.one_of(*IMAGE_FORMATS), "compression": rules.one_of(*COMPRESSIONS),
}
REPOSITORY_SCHEMA: Schema = {
    "id": rules.nonempty_string, "name": rules.string, "baseurl": rules.nonempty_string,
    "mirrorlist": rules.nonempty_string, "metalink": rules.nonempty_string, "gpgkey": rules.string_list,
    "gpgcheck": rules.boolean, "sslclientcert": rules.string, "sslclientkey": rules.string, "sslcacert": rules.string,
}
AGENT_PACKAGES_SCHEMA: Schema = {
    "include": rules.string_list, "exclude": rules.string_list, "enable_units": rules.string_list,
    "disable_units": rules.string_list,
}
SCHEMA: Schema = {
    "name": rules.recipe_name,
    "family": rules.one_of(*FAMILIES),
    "release": rules.nonempty_string,
    "description": rules.string,
    "extends": rules.recipe_name,
    "source": {
        "bootstrap": rules.one_of("mmdebstrap", "dnf", "zypper"),
        "mirror": rules.string,
        "keyring": rules.string,
        "components": rules.string_list,
        "repositories": TableList(REPOSITORY_SCHEMA),
        "base_image": BASE_IMAGE_SCHEMA,
    },
    "packages": {"include": rules.nonempty_string_list, "exclude": rules.string_list},
    "kernel": {"package": rules.nonempty_string, "cmdline": rules.string_list, "initramfs_modules": rules.string_list},
    "agent": {
        "provisioning": rules.one_of(*AGENTS),
        "cloud-init": AGENT_PACKAGES_SCHEMA,
        "waagent": AGENT_PACKAGES_SCHEMA,
        "ignition": AGENT_PACKAGES_SCHEMA,
    },
    "image": {
        "disk_size_mib": rules.int_range(64, MAX_DISK_SIZE_MIB),
        "esp_size_mib": rules.int_range(33, 1024),
        "generations": rules.list_of(*GENERATIONS),
        "security_types": rules.list_of(*SECURITY_TYPES),  # default: both, standard only for flatcar or V1-only
        "disk_controllers": rules.list_of(*DISK_CONTROLLERS),  # default: both, scsi only for flatcar or V1-only
        "os_state": rules.one_of(*OS_STATES),
        "machine_id": rules.one_of("uninitialized", "empty"),
    },
    "gallery": {"publisher": rules.gallery_identity, "offer": rules.gallery_identity, "sku": rules.gallery_identity},
    "checks": {
        "allowed_failed_units": rules.string_list,
        "platforms": rules.list_of(*PLATFORMS),
        "boot_timeout_s": rules.int_range(30, 3600),
        "tests": rules.relative_paths,  # the user's pytest checks, run inside every verify boot
    },
}
SETTING_SCHEMA: Schema = {
    "file": rules.nonempty_string, "key": rules.string, "value": rules.string, "reason": rules.nonempty_string,
    "style": rules.one_of(*SETTING_STYLES), "agent": rules.one_of(*AGENTS),
}
REQUIRED = ("name", "family", "release")


def _validate_table(data: Any, schema: Schema, path: str, problems: list[str]) -> None:
    if not isinstance(data, dict):
        problems.append(f"{path or 'top level'}: must be a table")
        return
    for key, value in data.items():
        where = rules.key_path(path, key)
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
        if style in KEYLESS_STYLES and entry.get("key"):
            problems.append(f"{where}.key: style '{style}' takes no key")
        if style not in KEYLESS_STYLES and not entry.get("key"):
            problems.append(f"{where}.key: style '{style}' needs a key")
        if isinstance(entry.get("file"), str):
            _check(f"{where}.file", rules.guest_path_problem(entry["file"]), problems)
        if isinstance(entry.get("key"), str) and entry["key"]:
            _check(f"{where}.key", rules.setting_key_problem(entry["key"], style), problems)
        value = entry.get("value")
        if style in ("kv", "sshd", "line", "comment") and isinstance(value, str) and value != value.strip():
            problems.append(f"{where}.value: {value!r} starts or ends with whitespace, which a reader of a "
                            f"'{style}' line strips (the audit would never find it)")
        if style == "comment" and isinstance(value, str) and (not value.strip() or COMMENT_MARK.search(value)):
            problems.append(f"{where}.value: {value!r}: style 'comment' takes the words of an active line, without "
                            "a '#' comment (e.g. 'Defaults targetpw')")


def _check(where: str, message: str | None, problems: list[str]) -> None:
    if message:
        problems.append(f"{where}: {message}")


# -- names and tokens that reach a package manager, a shell or grub.cfg ------------------------------------

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
                _check(where if single else f"{where}[{index}]", rules.package_problem(name, family), problems)


def _validate_cmdline(data: dict[str, Any], problems: list[str]) -> None:
    kernel = data.get("kernel")
    tokens = kernel.get("cmdline") if isinstance(kernel, dict) else None
    if isinstance(tokens, list):
        for index, token in enumerate(tokens):
            if isinstance(token, str):
                _check(f"kernel.cmdline[{index}]", rules.cmdline_problem(token), problems)


# -- control characters in any string ------------------------------------------------------------------

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
        for where, text in rules.strings(value, rules.key_path("", key)):
            _check(where, rules.control_problem(text, _multiline(where, None)), problems)
    for index, entry in enumerate(entries):
        for where, text in rules.strings(entry, f"settings[{index}]"):
            _check(where, rules.control_problem(text, _multiline(where, entry)), problems)


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
    if isinstance(image, dict):
        _validate_gen2_only(image, problems)


def _validate_gen2_only(image: dict[str, Any], problems: list[str]) -> None:
    """Trusted Launch and NVMe exist on Gen2 only: a V1-only image cannot declare them."""
    generations = image.get("generations", list(GENERATIONS))
    if not isinstance(generations, list) or "V2" in generations:
        return
    for key, value in (("security_types", "trusted-launch"), ("disk_controllers", "nvme")):
        declared = image.get(key)
        if isinstance(declared, list) and value in declared:
            problems.append(f"image.{key}: {value!r} needs generation V2 (Azure offers it on Gen2 VMs only)")


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
