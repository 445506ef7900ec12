"""Publishing model shared by every target (local gallery, Azure Compute Gallery).

Definitions, versions and target regions mirror Azure's gallery model; the publish gate, the VHD
pre-flight check and the hybrid rule (one build -> a V1 and a V2 definition) live here once.

The `harness publish` command owns these options for every target (an Azure module adding its
own options must not redefine them): --to, --definition, --generation, --version,
--force-unverified, --exclude-from-latest, --end-of-life, --target-region, --json.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.buildfolder import VHD, BuildFolder
from harness.enums import Generation, Stage
from harness.errors import GateRefused, PublishError
from harness.manifest import Manifest
from harness.publish import versions
from harness.results import stage_passed

# By generation's value ('V1'), from the one mapping in enums.Generation.
GENERATION_FIRMWARE = {g.value: g.firmware.value for g in Generation}
GENERATION_SUFFIX = {g.value: g.suffix for g in Generation}
ARCHITECTURES = {"x64": "x64", "amd64": "x64", "x86_64": "x64", "arm64": "Arm64", "aarch64": "Arm64"}
STORAGE_ACCOUNT_TYPES = ("Standard_LRS", "Standard_ZRS", "Premium_LRS", "PremiumV2_LRS")
DEFAULT_REGION = "local"
MAX_REPLICAS = 100
VHD_FOOTER_BYTES = 512

# Azure: definition names are letters, digits, dots and dashes (we also allow '_'); never a leading dot,
# so hidden staging/tombstone folders in a local gallery can never collide with a definition.
# Every pattern is matched with fullmatch and spells its classes in ASCII: `$` lets a trailing newline through
# and `\d` takes any Unicode digit (Arabic-Indic U+0661 is one), which a file name or Azure would then disagree on.
_NAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,78}[A-Za-z0-9])?")
_REGION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_REPLICAS_RE = re.compile(r"[1-9][0-9]{0,2}")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class ImageDefinition:
    """An image definition: the container that groups versions of one image (Azure GalleryImage)."""

    name: str
    publisher: str
    offer: str
    sku: str
    os_state: str  # 'Generalized' | 'Specialized'
    hyper_v_generation: str  # 'V1' | 'V2'
    architecture: str = "x64"  # 'x64' | 'Arm64'
    description: str = ""
    end_of_life: str | None = None  # YYYY-MM-DD
    os_type: str = "Linux"
    # Azure's image definition features, only those the build proved (publish/features.py), sorted by name:
    # SecurityType=TrustedLaunchSupported, DiskControllerTypes=SCSI, NVMe, IsAcceleratedNetworkSupported=True
    features: tuple[tuple[str, str], ...] = ()

    @property
    def firmware(self) -> str:
        """'bios' for V1, 'uefi' for V2."""
        return GENERATION_FIRMWARE[self.hyper_v_generation]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "publisher": self.publisher, "offer": self.offer, "sku": self.sku,
                "os_type": self.os_type, "os_state": self.os_state, "hyper_v_generation": self.hyper_v_generation,
                "architecture": self.architecture, "description": self.description, "end_of_life": self.end_of_life,
                "features": [{"name": n, "value": v} for n, v in self.features]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageDefinition:
        return cls(name=str(data["name"]), publisher=str(data["publisher"]), offer=str(data["offer"]),
                   sku=str(data["sku"]), os_state=str(data["os_state"]),
                   hyper_v_generation=str(data["hyper_v_generation"]),
                   architecture=str(data.get("architecture", "x64")), description=str(data.get("description", "")),
                   end_of_life=data.get("end_of_life"), os_type=str(data.get("os_type", "Linux")),
                   features=tuple(sorted((str(f["name"]), str(f["value"])) for f in data.get("features") or [])))

    def default_name(self) -> str:
        """The name `harness publish` would pick for this identity, generation and OS state."""
        return default_name(self.offer, self.sku, self.hyper_v_generation, self.os_state)

    def mismatches(self, other: ImageDefinition) -> list[str]:
        """Properties a version cannot differ in from its definition (Azure refuses these too; it cannot change an
        existing definition's features either)."""
        found = [f"{key} is {getattr(self, key)!r}, the build needs {getattr(other, key)!r}"
                 for key in ("os_state", "hyper_v_generation", "architecture", "os_type")
                 if getattr(self, key) != getattr(other, key)]
        if self.features != other.features:
            found.append(f"features are {feature_text(self.features)}, the build proves {feature_text(other.features)} "
                         "(Azure cannot change the features of an existing definition)")
        return found


def feature_text(features: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{n}={v}" for n, v in features) or "none"


@dataclass(frozen=True)
class TargetRegion:
    """Where a version is replicated and how many replicas it gets (Azure TargetRegion)."""

    name: str
    replicas: int = 1
    storage_account_type: str = "Standard_LRS"
    exclude_from_latest: bool = False  # this region's 'latest' skips the version (Azure's per-region setting)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "replicas": self.replicas,
                                "storage_account_type": self.storage_account_type}
        if self.exclude_from_latest:
            data["exclude_from_latest"] = True
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TargetRegion:
        return cls(str(data["name"]), int(data.get("replicas", 1)),
                   str(data.get("storage_account_type", "Standard_LRS")),
                   bool(data.get("exclude_from_latest", False)))


@dataclass(frozen=True)
class ImageVersion:
    """One immutable image version as recorded in a gallery."""

    version: str
    content_digest: str
    published: str  # UTC, YYYY-MM-DDTHH:MM:SSZ
    source_build: str  # RECIPE/BUILD_ID of the build it came from (older galleries: the folder's path)
    build_id: str
    recipe: str = ""
    exclude_from_latest: bool = False
    end_of_life: str | None = None
    target_regions: tuple[TargetRegion, ...] = ()
    force_unverified: bool = False
    unverified_reasons: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "content_digest": self.content_digest, "published": self.published,
                "source_build": self.source_build, "build_id": self.build_id, "recipe": self.recipe,
                "exclude_from_latest": self.exclude_from_latest, "end_of_life": self.end_of_life,
                "target_regions": [r.to_json() for r in self.target_regions],
                "force_unverified": self.force_unverified, "unverified_reasons": list(self.unverified_reasons),
                **self.extra}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageVersion:
        known = {"version", "content_digest", "published", "source_build", "build_id", "recipe",
                 "exclude_from_latest", "end_of_life", "target_regions", "force_unverified", "unverified_reasons"}
        return cls(version=str(data["version"]), content_digest=str(data["content_digest"]),
                   published=str(data.get("published", "")), source_build=str(data.get("source_build", "")),
                   build_id=str(data.get("build_id", "")), recipe=str(data.get("recipe", "")),
                   exclude_from_latest=bool(data.get("exclude_from_latest", False)),
                   end_of_life=data.get("end_of_life"),
                   target_regions=tuple(TargetRegion.from_json(r) for r in data.get("target_regions", [])),
                   force_unverified=bool(data.get("force_unverified", False)),
                   unverified_reasons=tuple(data.get("unverified_reasons", [])),
                   extra={k: v for k, v in data.items() if k not in known})

    def is_end_of_life(self, today: dt.date | None = None) -> bool:
        return is_past_end_of_life(self.end_of_life, today)


@dataclass(frozen=True)
class GateResult:
    """Outcome of the publish gate: problems found (shared, per generation) and whether they were overridden."""

    common: tuple[str, ...] = ()  # e.g. check did not pass: concerns every generation
    per_generation: tuple[tuple[str, str], ...] = ()  # (generation, problem): verify for its firmware
    force_requested: bool = False

    @property
    def problems(self) -> tuple[str, ...]:
        return self.common + tuple(p for _, p in self.per_generation)

    @property
    def verified(self) -> bool:
        return not self.problems

    @property
    def forced(self) -> bool:
        """Whether --force-unverified was needed (given and something was not verified)."""
        return self.force_requested and not self.verified

    def problems_for(self, generation: str) -> tuple[str, ...]:
        """What is unverified for one generation's version (a V1 version does not care about uefi)."""
        return self.common + tuple(p for g, p in self.per_generation if g == generation)


@dataclass(frozen=True)
class PublishRequest:
    """Everything a target needs to publish one build (already gated and checked)."""

    build: BuildFolder
    vhd: Path
    content_digest: str
    definitions: tuple[ImageDefinition, ...]
    version: str = "auto"  # 'auto' or Major.Minor.Patch
    exclude_from_latest: bool = False
    end_of_life: str | None = None
    target_regions: tuple[TargetRegion, ...] = (TargetRegion(DEFAULT_REGION),)
    gate: GateResult = GateResult()

    @property
    def force_unverified(self) -> bool:
        return self.gate.forced


@dataclass(frozen=True)
class PublishOutcome:
    """What publishing one definition did: created a version, or found the content already there."""

    definition: str
    version: str
    created: bool
    location: str
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"definition": self.definition, "version": self.version, "created": self.created,
                "location": self.location, "note": self.note}


# -- validation of user input ---------------------------------------------------------------------

def check_name(name: str, what: str = "definition name") -> str:
    """Return name if Azure (and a file system) accepts it, else raise PublishError."""
    if not _NAME_RE.fullmatch(name):
        raise PublishError(f"{what} {name!r} is invalid",
                           "use letters, digits, '.', '-' or '_' (at most 80, starting and ending alphanumeric)")
    return name


def parse_end_of_life(text: str | None) -> str | None:
    """Validate a YYYY-MM-DD end-of-life date (None passes through)."""
    if text is None:
        return None
    try:
        if not _DATE_RE.fullmatch(text):
            raise ValueError(text)
        dt.date.fromisoformat(text)
    except ValueError as exc:
        raise PublishError(f"end-of-life date {text!r} is not a date", "use YYYY-MM-DD, e.g. 2027-06-30") from exc
    return text


def parse_target_region(text: str) -> TargetRegion:
    """'westeurope=2' -> TargetRegion('westeurope', 2); a bare name means one replica."""
    name, sep, count = text.partition("=")
    replicas = 1
    if sep:  # int() alone would take U+0661, ' 2', '+2' and '1_0': only plain ASCII digits count
        replicas = int(count) if _REPLICAS_RE.fullmatch(count) else 0
    if not _REGION_RE.fullmatch(name) or not 1 <= replicas <= MAX_REPLICAS:
        raise PublishError(f"target region {text!r} is invalid",
                           f"use NAME=REPLICAS with a name of letters, digits, '-' or '_' and 1..{MAX_REPLICAS} "
                           "replicas, e.g. westeurope=2")
    return TargetRegion(name, replicas)


def parse_target_regions(texts: Sequence[str] | None,
                         excluded: Sequence[str] = ()) -> tuple[TargetRegion, ...]:
    """All --target-region values (default: one replica in region 'local'); names must be unique. Each name in
    `excluded` (--exclude-region) must be one of them: that region's 'latest' skips the version."""
    regions = tuple(parse_target_region(t) for t in texts or ()) or (TargetRegion(DEFAULT_REGION),)
    names = [r.name for r in regions]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PublishError(f"target region given twice: {', '.join(duplicates)}", "name each region once")
    unknown = sorted({n for n in excluded if n.lower() not in {r.lower() for r in names}})
    if unknown:
        raise PublishError(f"--exclude-region {', '.join(unknown)} is not a target region of this version",
                           f"add --target-region {unknown[0]}=REPLICAS, or exclude the whole version with "
                           "--exclude-from-latest")
    wanted = {n.lower() for n in excluded}
    return tuple(replace(r, exclude_from_latest=True) if r.name.lower() in wanted else r
                 for r in regions)


def check_version(version: str) -> str:
    """'auto' or a canonical Major.Minor.Patch (ASCII digits, no leading zeros, each part an int32)."""
    if version != "auto":
        versions.parse(version)
    return version


# -- generations and definitions ------------------------------------------------------------------

def generations_to_publish(manifest: Manifest, requested: str | None) -> tuple[str, ...]:
    """V1, V2 or both; default the build's generations. A hybrid disk serves a V1 and a V2 definition."""
    built = tuple(g.value for g in manifest.generations)
    if not built:
        raise PublishError("the build's manifest names no generation (V1/V2)", "rebuild it with 'harness build'")
    if requested in (None, "", "both", "all"):
        return built
    wanted = str(requested).upper()
    if wanted not in GENERATION_FIRMWARE:
        raise PublishError(f"generation {requested!r} is unknown", "use --generation V1, V2 or both")
    if wanted not in built:
        raise PublishError(f"the build was made for {', '.join(built)}, not {wanted}",
                           "publish a generation the recipe's [image] generations lists")
    return (wanted,)


def default_name(offer: str, sku: str, generation: str, os_state: str) -> str:
    """`<offer>-<sku>-gen1|gen2`, plus `-specialized` for a Specialized OS state (its own definition)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{offer}-{sku}").strip("-._")
    suffix = "-specialized" if os_state.lower() == "specialized" else ""
    return f"{base}-{GENERATION_SUFFIX[generation]}{suffix}"


def default_definition_name(manifest: Manifest, generation: str) -> str:
    """The default definition of a build: default_name() from the recipe's [gallery] offer and sku."""
    return default_name(manifest.gallery.offer or manifest.recipe, manifest.gallery.sku or "default", generation,
                        manifest.os_state.value)


def definition_names(generations: Sequence[str], given: Sequence[str] | None,
                     manifest: Manifest) -> dict[str, str]:
    """Generation -> definition name from --definition values: NAME (one generation) or GEN=NAME."""
    names = {g: default_definition_name(manifest, g) for g in generations}
    for item in given or ():
        gen, sep, name = item.partition("=")
        if not sep:
            if len(generations) != 1:
                raise PublishError(f"--definition {item} is ambiguous when publishing {' and '.join(generations)}",
                                   "give one per generation (--definition V1=NAME --definition V2=NAME) "
                                   "or pick one with --generation")
            gen, name = generations[0], item
        gen = gen.upper()
        if gen not in generations:
            raise PublishError(f"--definition {item} names generation {gen}, which is not being published",
                               f"publishing: {', '.join(generations)}")
        names[gen] = check_name(name)
    if len(set(names.values())) != len(names):
        raise PublishError("V1 and V2 must go to different image definitions",
                           "a definition has one Hyper-V generation; give each its own name")
    return names


def definitions_for(manifest: Manifest, generations: Sequence[str],
                    names: dict[str, str] | None = None) -> tuple[ImageDefinition, ...]:
    """The image definitions one build is published to: one per generation, same identity and OS state."""
    os_state = manifest.os_state.azure
    arch = ARCHITECTURES.get(manifest.architecture.lower())
    if arch is None:
        raise PublishError(f"architecture {manifest.architecture!r} is unknown", "use x64 or Arm64")
    result = []
    for gen in generations:
        name = check_name((names or {}).get(gen) or default_definition_name(manifest, gen))
        result.append(ImageDefinition(
            name=name, publisher=manifest.gallery.publisher, offer=manifest.gallery.offer, sku=manifest.gallery.sku,
            os_state=os_state, hyper_v_generation=gen, architecture=arch,
            description=f"{manifest.recipe} ({os_state.lower()}, {GENERATION_SUFFIX[gen]})"))
    return tuple(result)


# -- the publish gate and the VHD pre-flight check -----------------------------------------------

def gate(build: BuildFolder, generations: Sequence[str], *, force_unverified: bool,
         unproven: Sequence[tuple[str, str]] = ()) -> GateResult:
    """Refuse unless check passed for the build's digest and verify passed for each generation's firmware.

    With force_unverified the problems are returned (to be recorded on the version) instead of raised.
    """
    digest = build.manifest().content_digest
    common: list[str] = []
    per_generation: list[tuple[str, str]] = []
    if not digest:
        common.append("the manifest has no content digest")
    elif not stage_passed(build, Stage.CHECK, digest):
        common.append(f"check has not passed for content {digest}")
    for gen in generations:
        firmware = GENERATION_FIRMWARE[gen]
        if digest and not stage_passed(build, Stage.VERIFY, digest, firmware):
            per_generation.append((gen, f"verify has not passed on {firmware} ({gen}) for this content"))
    per_generation += [(g, problem) for g, problem in unproven if g in generations]
    result = GateResult(tuple(common), tuple(per_generation), force_unverified)
    if not result.verified and not force_unverified:
        raise GateRefused(f"refusing to publish an unverified build: {'; '.join(result.problems)}",
                          f"run 'harness check' and 'harness verify' on {build.path}, "
                          "or pass --force-unverified (recorded on the version)")
    return result


def vhd_problems(path: Path, size_bytes: int | None) -> list[str]:
    """Problems with a fixed VHD: its size against the manifest, then every rule of harness.vhd."""
    from harness import vhd as vhd_rules

    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return [f"{path} does not exist"]
    problems: list[str] = []
    if size_bytes is not None and size != size_bytes + VHD_FOOTER_BYTES:
        problems.append(f"{path.name} is {size} bytes, expected the disk size {size_bytes} + {VHD_FOOTER_BYTES}")
    problems.extend(p.message for p in vhd_rules.validate(path))
    return problems


def build_vhd(build: BuildFolder) -> Path:
    """The build's fixed VHD after checking it; refuses an unconverted build or a broken VHD."""
    vhd = build.path / VHD
    if not vhd.exists():
        raise PublishError(f"build {build.path} has no {VHD}", f"run 'harness convert {build.path}' first")
    problems = vhd_problems(vhd, build.manifest().disk.size_bytes)
    if problems:
        raise PublishError(f"{vhd} is not a valid fixed VHD: {'; '.join(problems)}",
                           f"rerun 'harness convert {build.path}'")
    return vhd


@dataclass(frozen=True)
class Requested:
    """The publish options, validated against the build (before the gate and before anything is written)."""

    generations: tuple[str, ...]
    definitions: tuple[ImageDefinition, ...]
    version: str
    end_of_life: str | None
    target_regions: tuple[TargetRegion, ...]


def validate_options(manifest: Manifest, *, generation: str | None = None, definitions: Sequence[str] | None = None,
                     version: str = "auto", end_of_life: str | None = None,
                     target_regions: Sequence[str] | None = None, exclude_regions: Sequence[str] = ()) -> Requested:
    """Every publish option checked at once against the build, with no side effect."""
    check_version(version)
    eol = parse_end_of_life(end_of_life)
    regions = parse_target_regions(target_regions, exclude_regions)
    gens = generations_to_publish(manifest, generation)
    defs = definitions_for(manifest, gens, definition_names(gens, definitions, manifest))
    return Requested(gens, defs, version, eol, regions)


def request_for(build: BuildFolder, requested: Requested, gate_result: GateResult, *,
                exclude_from_latest: bool = False) -> PublishRequest:
    """The request a target publishes, once the gate passed (or was forced) and the build holds its VHD."""
    return PublishRequest(build=build, vhd=build_vhd(build), content_digest=build.manifest().content_digest,
                          definitions=requested.definitions, version=requested.version,
                          exclude_from_latest=exclude_from_latest, end_of_life=requested.end_of_life,
                          target_regions=requested.target_regions, gate=gate_result)


def prepare(build: BuildFolder, *, generation: str | None = None, definitions: Sequence[str] | None = None,
            version: str = "auto", force_unverified: bool = False, exclude_from_latest: bool = False,
            end_of_life: str | None = None, target_regions: Sequence[str] | None = None) -> PublishRequest:
    """Validate every publish option, gate the build and check its VHD: the pre-flight of any target."""
    requested = validate_options(build.manifest(), generation=generation, definitions=definitions, version=version,
                                 end_of_life=end_of_life, target_regions=target_regions)
    result = gate(build, requested.generations, force_unverified=force_unverified)
    return request_for(build, requested, result, exclude_from_latest=exclude_from_latest)


# -- latest resolution ----------------------------------------------------------------------------

def is_past_end_of_life(end_of_life: str | None, today: dt.date | None = None) -> bool:
    """True once the end-of-life date has passed (the date itself still counts as alive), in UTC."""
    if not end_of_life:
        return False
    day = today or dt.datetime.now(dt.UTC).date()
    return dt.date.fromisoformat(end_of_life) < day


def latest(items: Iterable[ImageVersion], today: dt.date | None = None) -> ImageVersion | None:
    """Azure's 'latest': the highest version not excluded from latest and not past its end of life."""
    eligible = [v for v in items if not v.exclude_from_latest and not v.is_end_of_life(today)]
    return max(eligible, key=lambda v: versions.sort_key(v.version), default=None)
