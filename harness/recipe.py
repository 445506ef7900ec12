"""Recipe model and loader: a TOML file validated at once, every problem listed with its key path."""

from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import NotFoundError, RecipeError

FAMILIES = ("apt", "dnf", "zypper", "flatcar")
AGENTS = ("cloud-init", "waagent", "ignition")
GENERATIONS = ("V1", "V2")
OS_STATES = ("generalized", "specialized")
SETTING_STYLES = ("kv", "sshd", "shell", "file", "line")
PLATFORMS = ("azure", "nocloud")
DEFAULT_DISK_SIZE_MIB = 30 * 1024

REPO_ROOT = Path(__file__).resolve().parent.parent
DISTROS_DIR = REPO_ROOT / "distros"


@dataclass(frozen=True)
class BaseImage:
    """A vendor image to start from instead of a package bootstrap.

    `url` is http(s)://, file:// or an absolute path. The digest is pinned (`sha256`) or read at build time
    from the vendor's checksum file (`checksum_url`); `signature` is a detached OpenPGP signature over the
    checksum file when there is one, else over the image, checked with the recipe's keyring.
    """

    url: str
    sha256: str = ""
    checksum_url: str = ""
    signature: str = ""
    format: str = "qcow2"
    compression: str = ""


@dataclass(frozen=True)
class Repository:
    """One package repository of a dnf or zypper bootstrap ($releasever and $basearch are expanded by the tool)."""

    id: str
    name: str = ""
    baseurl: str = ""
    mirrorlist: str = ""
    metalink: str = ""
    gpgkey: tuple[str, ...] = ()
    gpgcheck: bool = True
    sslclientcert: str = ""
    sslclientkey: str = ""
    sslcacert: str = ""

    @property
    def url(self) -> str:
        """The one URL this repository is reached through (probed before the slow step)."""
        return self.baseurl or self.mirrorlist or self.metalink


@dataclass(frozen=True)
class Source:
    """Where the root file system comes from: exactly one of bootstrap or base_image."""

    bootstrap: str = ""
    mirror: str = ""
    keyring: str = ""
    components: tuple[str, ...] = ("main",)
    repositories: tuple[Repository, ...] = ()
    base_image: BaseImage | None = None


@dataclass(frozen=True)
class Setting:
    """One guest setting that differs from the distro default, with the reason it exists."""

    file: str
    value: str
    reason: str
    key: str = ""
    style: str = "kv"
    agent: str = ""

    def describe(self) -> str:
        return f"{self.file}: {self.key}={self.value}" if self.key else f"{self.file} (whole file)"


@dataclass(frozen=True)
class AgentPackages:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    enable_units: tuple[str, ...] = ()
    disable_units: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recipe:
    """What the user asked for: immutable; a build's paths and artifacts live in the build context."""

    name: str
    family: str
    release: str
    path: Path
    description: str = ""
    source: Source = field(default_factory=Source)
    packages_include: tuple[str, ...] = ()
    packages_exclude: tuple[str, ...] = ()
    kernel_package: str = ""
    kernel_cmdline: tuple[str, ...] = ()
    initramfs_modules: tuple[str, ...] = ()
    agent: str = "cloud-init"
    agent_variants: Mapping[str, AgentPackages] = field(default_factory=dict)
    disk_size_mib: int = DEFAULT_DISK_SIZE_MIB
    esp_size_mib: int = 127
    generations: tuple[str, ...] = ("V1", "V2")
    os_state: str = "generalized"
    machine_id: str = ""  # "" = the family default (see build/families.py)
    publisher: str = ""
    offer: str = ""
    sku: str = ""
    allowed_failed_units: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ("azure",)
    boot_timeout_s: int = 900
    settings: tuple[Setting, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)

    def settings_for(self, agent: str) -> list[Setting]:
        """Declared settings that apply when `agent` provisions."""
        return [s for s in self.settings if not s.agent or s.agent == agent]

    def canonical_json(self) -> str:
        """The recipe's content after `extends`, stable across key order: part of the cache key."""
        return json.dumps(self.data, sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


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


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Child tables merge into the parent's recursively; scalars and arrays replace; settings append."""
    merged = copy.deepcopy(base)
    for key, value in child.items():
        if key == "settings":
            parent = [s for s in merged.get("settings", []) if not any(
                isinstance(c, dict) and c.get("file") == s.get("file") and c.get("key") == s.get("key")
                for c in value)]
            merged["settings"] = parent + list(value)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise NotFoundError(f"recipe file {path} does not exist", "see 'harness recipes list'") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(str(path), [f"TOML syntax: {exc}"]) from exc


def _resolve_raw(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    data = _read_toml(path)
    parent_name = data.get("extends")
    if parent_name is None:
        return data
    if not isinstance(parent_name, str):
        raise RecipeError(str(path), ["extends: must be a recipe name"])
    parent_path = path.parent / f"{parent_name}.toml"
    if parent_path in seen or parent_path == path:
        raise RecipeError(str(path), [f"extends: cycle through {parent_name}"])
    if not parent_path.exists():
        raise RecipeError(str(path), [f"extends: no recipe named {parent_name!r} next to this file"])
    merged = _merge(_resolve_raw(parent_path, (*seen, path)), {k: v for k, v in data.items() if k != "extends"})
    merged["extends"] = parent_name
    return merged


def resolve_path(name_or_path: str) -> Path:
    """A recipe argument is a file path or a name under distros/."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or "/" in name_or_path:
        return candidate
    path = DISTROS_DIR / f"{name_or_path}.toml"
    if not path.exists():
        names = ", ".join(p.stem for p in sorted(DISTROS_DIR.glob("*.toml")))
        raise NotFoundError(f"no recipe named {name_or_path!r}", f"known recipes: {names}")
    return path


def load(name_or_path: str | Path) -> Recipe:
    """Load, merge `extends`, validate everything, and build the frozen Recipe."""
    path = resolve_path(str(name_or_path))
    data = _resolve_raw(path)
    problems: list[str] = []
    _validate_table(data, SCHEMA, "", problems)
    _validate_settings(data.get("settings"), problems)
    _validate_semantics(data, problems)
    if isinstance(data.get("name"), str) and data["name"] != path.stem:
        problems.append(f"name: {data['name']!r} must match the file name {path.stem!r}")
    if problems:
        raise RecipeError(str(path), problems)
    return _build(path, data)


def _build(path: Path, data: dict[str, Any]) -> Recipe:
    src = data["source"]
    base = src.get("base_image")
    source = Source(
        bootstrap=src.get("bootstrap", ""),
        mirror=src.get("mirror", ""),
        keyring=src.get("keyring", ""),
        components=tuple(src.get("components", ["main"])),
        repositories=tuple(_repository(r) for r in src.get("repositories", [])),
        base_image=BaseImage(**base) if base else None,
    )
    kernel = data.get("kernel", {})
    agent = data.get("agent", {})
    image = data.get("image", {})
    gallery = data["gallery"]
    checks = data.get("checks", {})
    variants = {
        name: AgentPackages(**{k: tuple(v) for k, v in agent[name].items()})
        for name in AGENTS if name in agent
    }
    settings = tuple(
        Setting(
            file=s["file"], key=s.get("key", ""), value=s["value"], reason=s["reason"],
            style=s.get("style", "kv" if s.get("key") else "file"), agent=s.get("agent", ""),
        )
        for s in data.get("settings", [])
    )
    return Recipe(
        name=data["name"], family=data["family"], release=data["release"], path=path,
        description=data.get("description", ""), source=source,
        packages_include=tuple(data.get("packages", {}).get("include", [])),
        packages_exclude=tuple(data.get("packages", {}).get("exclude", [])),
        kernel_package=kernel.get("package", ""),
        kernel_cmdline=tuple(kernel.get("cmdline", [])),
        initramfs_modules=tuple(kernel.get("initramfs_modules", [])),
        agent=agent.get("provisioning", "cloud-init"), agent_variants=variants,
        disk_size_mib=image.get("disk_size_mib", DEFAULT_DISK_SIZE_MIB),
        esp_size_mib=image.get("esp_size_mib", 127),
        generations=tuple(image.get("generations", ["V1", "V2"])),
        os_state=image.get("os_state", "generalized"),
        machine_id=image.get("machine_id", ""),
        publisher=gallery["publisher"], offer=gallery["offer"], sku=gallery["sku"],
        allowed_failed_units=tuple(checks.get("allowed_failed_units", [])),
        platforms=tuple(checks.get("platforms", ["azure"])),
        boot_timeout_s=checks.get("boot_timeout_s", 900),
        settings=settings, data=data,
    )


def _repository(raw: dict[str, Any]) -> Repository:
    fields: dict[str, Any] = {k: tuple(v) if k == "gpgkey" else v for k, v in raw.items()}
    return Repository(**fields)


def all_recipes() -> list[Path]:
    return sorted(DISTROS_DIR.glob("*.toml"))
