"""Recipe model and loader: a TOML file validated at once, every problem listed with its key path."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import NotFoundError, RecipeError
from harness.recipe_rules import RECIPE_NAME_RE
from harness.recipe_schema import AGENTS, DEFAULT_DISK_SIZE_MIB, setting_style, validate

# The built-in recipes and family scripts ship inside the package (package data), so an installed wheel has them.
DISTROS_DIR = Path(__file__).resolve().parent / "distros"
# User recipe directories, searched in order before the built-in recipes (`--recipes DIR` puts DIR in front).
RECIPES_ENV = "HARNESS_RECIPES"
# A recipe extends a base that may extend another: a few levels are plenty, and a cap turns a runaway chain
# (generated, or a cycle through differently spelled paths) into one error instead of a RecursionError.
MAX_EXTENDS_DEPTH = 16


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
    security_types: tuple[str, ...] = ("standard",)
    disk_controllers: tuple[str, ...] = ("scsi",)
    os_state: str = "generalized"
    machine_id: str = ""  # "" = the family default (see builder/families.py)
    publisher: str = ""
    offer: str = ""
    sku: str = ""
    allowed_failed_units: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()  # pytest files or folders, relative to the recipe's folder
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

    @property
    def source_label(self) -> str:
        """Where the recipe came from, for a manifest read on another machine: 'builtin:NAME' or the file name."""
        try:
            self.path.resolve().relative_to(DISTROS_DIR.resolve())
            return f"builtin:{self.name}"
        except ValueError:
            return self.path.name


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Child tables merge into the parent's recursively; scalars and arrays replace; settings append."""
    merged = copy.deepcopy(base)
    for key, value in child.items():
        if key == "settings" and isinstance(value, list) and isinstance(merged.get("settings", []), list):
            merged["settings"] = _merge_settings(merged.get("settings", []), value)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:  # a wrong type replaces whatever was there; validation of the merged recipe reports it
            merged[key] = copy.deepcopy(value)
    return merged


def _merge_settings(parent: list[Any], child: list[Any]) -> list[Any]:
    """The parent's settings that no child setting overrides (same file and key), then the child's."""
    overridden = [(c.get("file"), c.get("key")) for c in child if isinstance(c, dict)]  # unhashable values too
    kept = [s for s in parent if not (isinstance(s, dict) and (s.get("file"), s.get("key")) in overridden)]
    return kept + copy.deepcopy(child)


def _read_toml(path: Path) -> dict[str, Any]:
    """The TOML file as a table; one RecipeError or NotFoundError for anything that is not a readable recipe."""
    if path.is_dir():
        raise NotFoundError(f"recipe {path} is a directory, not a .toml file", "pass the recipe file itself")
    if path.exists() and not path.is_file():
        raise NotFoundError(f"recipe {path} is not a regular file (a FIFO or a device)", "pass the recipe file itself")
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise NotFoundError(f"recipe file {path} does not exist", "see 'harness recipes list'") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(str(path), [f"TOML syntax: {exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise RecipeError(str(path), [f"not UTF-8 text (byte {exc.start}): a recipe is a TOML file"]) from exc
    except OSError as exc:  # a symlink loop, no permission, an I/O error
        raise NotFoundError(f"cannot read recipe {path}: {exc.strerror or exc}", "check the path and its "
                            "permissions") from exc
    except ValueError as exc:  # a NUL in the path
        raise NotFoundError(f"cannot read recipe {path!r}: {exc}", "check the path") from exc
    except RecursionError as exc:
        raise RecipeError(str(path), ["TOML nested too deeply to read"]) from exc


def _parent_path(path: Path, parent_name: Any) -> Path:
    """The file `extends` names: a recipe next to the extending file (not the file itself), else a built-in one.

    So a user recipe extends a built-in recipe by name, or another user recipe beside it; a user recipe named like a
    built-in one may extend that built-in one (`debian-12.toml` with `extends = "debian-12"`). A built-in recipe
    only ever extends built-in recipes: shadowing one never changes another.
    """
    if not isinstance(parent_name, str) or not RECIPE_NAME_RE.fullmatch(parent_name):
        raise RecipeError(str(path), [f"extends: must be the name of a recipe next to this file or a built-in one "
                                      f"(got {parent_name!r}; no '/', no leading '.')"])
    itself = False
    for folder in dict.fromkeys((path.parent, DISTROS_DIR)):
        candidate = folder / f"{parent_name}.toml"
        if candidate.exists() and _same_file(candidate, path):
            itself = True
        elif candidate.exists():
            return candidate
    if itself:
        raise RecipeError(str(path), [f"extends: cycle through {parent_name} (the recipe extends itself, and no "
                                      "built-in recipe has that name)"])
    builtin = ", ".join(p.stem for p in _tomls(DISTROS_DIR))
    raise RecipeError(str(path), [f"extends: no recipe named {parent_name!r} next to this file or built in "
                                  f"(built-in recipes: {builtin})"])


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def _resolve_raw(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    data = _read_toml(path)
    parent_name = data.get("extends")
    if parent_name is None:
        return data
    chain = (*seen, path)
    if len(chain) > MAX_EXTENDS_DEPTH:
        names = " -> ".join(p.stem for p in chain[:MAX_EXTENDS_DEPTH + 1])
        raise RecipeError(str(chain[0]), [f"extends chain of more than {MAX_EXTENDS_DEPTH} recipes ({names} -> ...)"
                                          ": flatten it"])
    parent_path = _parent_path(path, parent_name)
    if any(_same_file(parent_path, p) for p in chain):
        raise RecipeError(str(path), [f"extends: cycle through {parent_name}"])
    merged = _merge(_resolve_raw(parent_path, chain), {k: v for k, v in data.items() if k != "extends"})
    merged["extends"] = parent_name
    return merged


@dataclass(frozen=True)
class RecipeDir:
    """A folder of recipes on the search path: a user's (from --recipes or $HARNESS_RECIPES) or the built-in one."""

    path: Path
    builtin: bool = False

    @property
    def label(self) -> str:
        return "builtin" if self.builtin else str(self.path)


@dataclass(frozen=True)
class RecipeEntry:
    """One recipe name as lookups see it: the first file of that name on the search path, and what it hides."""

    name: str
    path: Path
    builtin: bool
    shadows: tuple[Path, ...] = ()  # same-named recipes later on the search path (a built-in one, usually)

    @property
    def origin(self) -> str:
        """'builtin', or the user folder the recipe is in."""
        return "builtin" if self.builtin else str(self.path.parent)

    def shadows_labels(self) -> list[str]:
        return [f"builtin:{self.name}" if p.parent == DISTROS_DIR else str(p) for p in self.shadows]


def user_dirs(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The user recipe folders of $HARNESS_RECIPES (colon-separated, in order); each must be a folder."""
    raw = (os.environ if environ is None else environ).get(RECIPES_ENV, "")
    folders = [Path(item).absolute() for item in raw.split(":") if item.strip()]
    for folder in folders:
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise NotFoundError(f"recipe folder {folder} {what}",
                                f"fix --recipes DIR or ${RECIPES_ENV} (colon-separated folders of .toml recipes)")
    return list(dict.fromkeys(folders))


def search_path() -> list[RecipeDir]:
    """Where recipe names are looked up, first match wins: the user folders, then the built-in recipes."""
    return [*(RecipeDir(p) for p in user_dirs() if p != DISTROS_DIR), RecipeDir(DISTROS_DIR, builtin=True)]


def _tomls(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.toml") if p.is_file())


def index() -> list[RecipeEntry]:
    """Every recipe name on the search path, by name: the file lookups use, and the ones it shadows."""
    found: dict[str, list[tuple[Path, bool]]] = {}
    for folder in search_path():
        for path in _tomls(folder.path):
            found.setdefault(path.stem, []).append((path, folder.builtin))
    return [RecipeEntry(name, files[0][0], files[0][1], tuple(p for p, _ in files[1:]))
            for name, files in sorted(found.items())]


def resolve_path(name_or_path: str) -> Path:
    """A recipe argument is a file path, or a name looked up in the user folders, then the built-in recipes."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or "/" in name_or_path:
        return candidate
    folders = search_path()
    for folder in folders:
        path = folder.path / f"{name_or_path}.toml"
        if path.exists():
            return path
    names = ", ".join(e.name for e in index())
    where = " and ".join(f.label for f in folders)
    raise NotFoundError(f"no recipe named {name_or_path!r} (looked in {where})", f"known recipes: {names}")


def load(name_or_path: str | Path) -> Recipe:
    """Load, merge `extends`, validate everything, and build the frozen Recipe."""
    path = resolve_path(str(name_or_path))
    data = _resolve_raw(path)
    problems = validate(data)
    if isinstance(data.get("name"), str) and data["name"] != path.stem:
        problems.append(f"name: {data['name']!r} must match the file name {path.stem!r}")
    if problems:
        raise RecipeError(str(path), problems)
    return _build(path, data)


def from_data(data: Mapping[str, Any], label: str) -> Recipe:
    """The recipe a build recorded (its content after `extends`), validated again; `label` names its origin."""
    if not isinstance(data, Mapping):
        raise RecipeError(label, [f"top level: must be a table, not {type(data).__name__}"])
    problems = validate(dict(data))  # the values as given: a TOML date is not a string
    if problems:
        raise RecipeError(label, problems)
    return _build(Path(label), json.loads(json.dumps(dict(data), default=str)))


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
            style=setting_style(s), agent=s.get("agent", ""),
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
        security_types=tuple(image.get("security_types", _default_gen2(data, "trusted-launch", "standard"))),
        disk_controllers=tuple(image.get("disk_controllers", _default_gen2(data, "nvme", "scsi"))),
        os_state=image.get("os_state", "generalized"),
        machine_id=image.get("machine_id", ""),
        publisher=gallery["publisher"], offer=gallery["offer"], sku=gallery["sku"],
        allowed_failed_units=tuple(checks.get("allowed_failed_units", [])),
        tests=tuple(checks.get("tests", [])),
        platforms=tuple(checks.get("platforms", ["azure"])),
        boot_timeout_s=checks.get("boot_timeout_s", 900),
        settings=settings, data=data,
    )


def _default_gen2(data: dict[str, Any], gen2_value: str, base: str) -> list[str]:
    """The default security types / disk controllers: the Gen2-only value too when the image is Gen2 and its
    family ships a signed boot chain and an NVMe-capable initramfs (all but flatcar, used as published)."""
    generations = data.get("image", {}).get("generations", ["V1", "V2"])
    return [base, gen2_value] if "V2" in generations and data.get("family") != "flatcar" else [base]


def _repository(raw: dict[str, Any]) -> Repository:
    fields: dict[str, Any] = {k: tuple(v) if k == "gpgkey" else v for k, v in raw.items()}
    return Repository(**fields)


def all_recipes() -> list[Path]:
    """The recipe file of every name on the search path (a user recipe in place of a built-in one it shadows)."""
    return [entry.path for entry in index()]
