"""`harness build`: the pipeline reads as a recipe, a flat list of steps over one context."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import __version__, housekeeping, proc, sbom
from harness.builder import apt, configure, disk, dnf, grub, rpm, seal, vendor, zypper
from harness.builder import settings as settings_mod
from harness.builder.context import BuildContext, BuildOptions, cache_root
from harness.builder.families import FAMILIES, FamilyTraits
from harness.builder.families import get as get_family
from harness.builder.guestroot import GuestRoot
from harness.builder.layout import plan as plan_layout
from harness.buildfolder import (
    MANIFEST,
    RAW,
    BuildFolder,
    builds_root,
    list_builds,
    new_build_id,
    write_json_atomic,
)
from harness.digest import allocated_bytes, content_digest
from harness.enums import Agent, Generation, OsState
from harness.enums import Family as FamilyName
from harness.errors import BuildError, HarnessError
from harness.integrity import require_unchanged
from harness.log import stage
from harness.manifest import DeclaredSetting, DiskInfo, DiskStamp, GalleryIdentity, Manifest, Package, PartitionInfo
from harness.mounts import refuse_if_mounted
from harness.recipe import Recipe, Setting
from harness.shellsyntax import parse_assignments

log = logging.getLogger(__name__)

BUILD_TOOLS = ("mmdebstrap", "sfdisk", "mkfs.ext4", "mkfs.vfat", "mmd", "mcopy", "dpkg-query", "chroot",
               "systemctl")
DISK_TOOLS = ("sfdisk", "mkfs.ext4", "mkfs.vfat", "mmd", "mcopy", "chroot", "systemctl")
VENDOR_TOOLS = ("qemu-img", "qemu-system-x86_64", "sfdisk", "dnsmasq", "ip", "unshare", "nsenter")
MIN_FREE_BYTES = 3 * 1024**3
BUILD_SOURCES = Path(__file__).resolve().parent
SNIPPETS = BUILD_SOURCES.parent / "distros"  # package data: harness/distros/<family>/*.sh


@dataclass(frozen=True)
class BuildResult:
    folder: BuildFolder
    cache_hit: bool


# ---------------------------------------------------------------------------------------------
# Pre-flight checks: cheap invariants, each says why it exists.

def preflight(ctx: BuildContext) -> None:
    route = route_of(ctx.recipe)
    proc.require(*route.tools)
    agents = FamilyName(ctx.recipe.family).agents
    if ctx.agent not in agents:
        raise BuildError(f"agent {ctx.agent!r} cannot provision a {ctx.recipe.family}-family image",
                         f"use {' or '.join(agents)}")
    if vendor.customizer(ctx) is None and ctx.recipe.settings:
        raise BuildError(f"recipe {ctx.recipe.name} declares [[settings]] but {ctx.recipe.family} images are used "
                         "as published", "remove them, or provide them through the Ignition config at provisioning")
    apt.keyring_path(ctx)  # a keyring the recipe names must exist before anything is downloaded
    free = shutil.disk_usage(ctx.build_dir.parent).free
    if free < MIN_FREE_BYTES:
        raise BuildError(f"only {free // 1024**2} MiB free under {ctx.build_dir.parent}",
                         "a build needs about 3 GiB of scratch space; free some or set HARNESS_BUILDS")


# ---------------------------------------------------------------------------------------------
# Cache key and hits.

def _sources_digest() -> str:
    """The build code: harness/builder/*.py and the customization snippets under harness/distros/<family>/."""
    digest = hashlib.sha256()
    for path in [*sorted(BUILD_SOURCES.glob("*.py")), *sorted(SNIPPETS.glob("*/*.sh"))]:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def _keyring_digest(ctx: BuildContext) -> str:
    path = apt.keyring_path(ctx)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path else ""


def compute_cache_key(ctx: BuildContext) -> str:
    """Recipe content (after extends), harness version and build code, flags, archive state."""
    material = {
        "harness": __version__,
        "build_code": _sources_digest(),
        "recipe": json.loads(ctx.recipe.canonical_json()),
        "agent": ctx.agent,
        "specialized": ctx.options.specialized,
        "mirror": ctx.mirror,
        "disk_size_mib": ctx.disk_size_mib,
        "archives": ctx.archive_digests,
        "keyring": _keyring_digest(ctx),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def find_cache_hit(recipe: Recipe, key: str) -> BuildFolder | None:
    for build in reversed(list_builds(recipe.name)):
        try:
            manifest = build.manifest()
            if manifest.cache_key == key:
                require_unchanged(build, "build (cache hit)")
                return build
        except HarnessError as exc:
            log.info("build: not reusing %s: %s", build.path, exc.message)
            continue
    return None


# ---------------------------------------------------------------------------------------------
# Steps.

BOOTSTRAPPERS: dict[str, Callable[[BuildContext], None]] = {
    "mmdebstrap": apt.bootstrap, "dnf": dnf.bootstrap, "zypper": zypper.bootstrap,
}
# The rpm bootstraps read their package list while the database is still the host's (see zypper.py).
PACKAGE_READERS: dict[str, Callable[[BuildContext], list[dict[str, str]]]] = {
    "apt": lambda ctx: apt.installed_packages(ctx.rootfs), "dnf": lambda ctx: ctx.packages,
    "zypper": lambda ctx: ctx.packages,
}


def bootstrap_rootfs(ctx: BuildContext) -> None:
    BOOTSTRAPPERS[ctx.recipe.source.bootstrap](ctx)


def configure_azure(ctx: BuildContext) -> None:
    configure.configure(ctx)


def install_bootloader(ctx: BuildContext) -> None:
    family = get_family(ctx.recipe.family)
    defaults = parse_assignments(GuestRoot(ctx.rootfs).read_text(family.grub_default) or "")
    ctx.kernel_version = grub.install_files(ctx, family, defaults)


def seal_image(ctx: BuildContext) -> None:
    seal.seal(ctx)


def collect_facts(ctx: BuildContext) -> None:
    ctx.packages = PACKAGE_READERS[ctx.recipe.family](ctx)
    missing = [s.describe() for s in ctx.settings if not _setting_holds(ctx.rootfs, s)]
    if missing:
        raise BuildError(f"declared settings missing after the build: {'; '.join(missing)}",
                         "a package overwrote them; report it with the build log")


def _setting_holds(root: Path, setting: Setting) -> bool:
    return settings_mod.holds(GuestRoot(root).read_text(setting.file), setting)


def assemble_disk(ctx: BuildContext) -> None:
    disk.boot_files_exist(ctx)
    disk.create_sparse(ctx.disk_tmp, ctx.layout.disk_size_bytes)
    disk.write_partition_table(ctx)
    disk.make_esp(ctx)
    disk.make_root_fs(ctx)
    grub.install_bios(ctx.disk_tmp, ctx.layout, ctx.boot_dir / "boot.img", ctx.boot_dir / "core.img")
    disk.remove_tree(ctx.rootfs)


Step = Callable[[BuildContext], None]
STEPS: list[Step] = [
    bootstrap_rootfs, configure_azure, install_bootloader, seal_image, collect_facts, assemble_disk,
]


@dataclass(frozen=True)
class Route:
    """How a root file system comes to be: host tools, the probe whose answer joins the cache key, the steps,
    and what `--plan` shows for it."""

    tools: tuple[str, ...]
    probe: Callable[[BuildContext], dict[str, str]]
    steps: tuple[Step, ...]
    plan: Callable[[BuildContext], dict[str, Any]]


def _apt_plan(ctx: BuildContext) -> dict[str, Any]:
    cache = ctx.cache_dir / "apt" / ctx.recipe.release
    return {"commands": [apt.mmdebstrap_argv(ctx, ctx.rootfs, cache, ctx.work_dir / "initramfs-modules")]}


def _with_disk(bootstrap_plan: Callable[[BuildContext], dict[str, Any]]) -> Callable[[BuildContext], dict[str, Any]]:
    """A package route's plan: its bootstrap, then the disk the harness assembles and the boot menu it writes."""
    def planned(ctx: BuildContext) -> dict[str, Any]:
        family = get_family(ctx.recipe.family)
        text = ""
        for setting in ctx.settings:
            if setting.file == family.grub_default:
                text = settings_mod.apply_to_text(text, setting)
        return {**bootstrap_plan(ctx), "partition_table": ctx.layout.sfdisk_script(ctx.disk_guid, ctx.part_guids),
                "layout": ctx.layout.to_json(),
                f"{family.grub_dir}/grub.cfg": grub.grub_cfg(ctx, family, "<kernel-version>", parse_assignments(text))}
    return planned


# source kind (the recipe's source.bootstrap, or 'base_image') -> route
ROUTES: dict[str, Route] = {
    "mmdebstrap": Route(BUILD_TOOLS, apt.probe_archive, tuple(STEPS), _with_disk(_apt_plan)),
    "dnf": Route(("dnf", "rpm", "lsinitrd", *DISK_TOOLS), rpm.probe_repositories, tuple(STEPS), _with_disk(dnf.plan)),
    "zypper": Route(("zypper", "rpm", "lsinitrd", *DISK_TOOLS), rpm.probe_repositories, tuple(STEPS),
                    _with_disk(zypper.plan)),
    "base_image": Route(VENDOR_TOOLS, vendor.probe, vendor.STEPS, vendor.plan),
}


def source_kind(recipe: Recipe) -> str:
    return "base_image" if recipe.source.base_image is not None else recipe.source.bootstrap


def route_of(recipe: Recipe) -> Route:
    return ROUTES[source_kind(recipe)]


# ---------------------------------------------------------------------------------------------

def make_context(recipe: Recipe, options: BuildOptions) -> BuildContext:
    family = FAMILIES.get(recipe.family)
    disk_size = recipe.disk_size_mib if options.disk_size_mib is None else options.disk_size_mib
    build_id = new_build_id()
    recipe_dir = builds_root() / recipe.name
    work = recipe_dir / f".tmp-{build_id}"
    ctx = BuildContext(
        recipe=recipe, options=options, build_id=build_id, build_dir=recipe_dir / build_id,
        work_dir=work, cache_dir=cache_root(), layout=plan_layout(disk_size, recipe.esp_size_mib),
    )
    seed = uuid.uuid4()
    ctx.root_uuid = str(uuid.uuid5(seed, "root"))
    ctx.disk_guid = str(uuid.uuid5(seed, "disk")).upper()
    ctx.part_guids = {p.name: str(uuid.uuid5(seed, p.name)).upper() for p in ctx.layout.partitions}
    serial = uuid.uuid5(seed, "esp").hex[:8].upper()
    ctx.esp_serial = f"{serial[:4]}-{serial[4:]}"
    if family is not None:
        ctx.settings = settings_mod.effective_settings(recipe, family, ctx.agent, options.specialized)
    return ctx


def make_manifest(ctx: BuildContext, digest: str, stamp: DiskStamp) -> Manifest:
    """What the build made, from its context; paths are recorded relative to nothing on this machine."""
    disk_bytes = int(ctx.facts.get("disk_size_bytes") or ctx.layout.disk_size_bytes)
    recipe = ctx.recipe
    disk = DiskInfo(
        file=RAW, size_bytes=disk_bytes, allocated_bytes=allocated_bytes(ctx.disk_tmp), disk_guid=ctx.disk_guid,
        root_uuid=ctx.root_uuid, esp_serial=ctx.esp_serial,
        layout=tuple(PartitionInfo.from_json(p) for p in ctx.facts.get("layout") or ctx.layout.to_json()),
        partition_table=tuple(ctx.facts.get("partition_table", [])), stamp=stamp)
    return Manifest(
        recipe=recipe.name, build_id=ctx.build_id, family=FamilyName(recipe.family), release=recipe.release,
        agent=Agent(ctx.agent), os_state=OsState(ctx.os_state),
        generations=tuple(Generation(g) for g in recipe.generations),
        security_types=recipe.security_types, disk_controllers=recipe.disk_controllers,
        gallery=GalleryIdentity(recipe.publisher, recipe.offer, recipe.sku), disk=disk, content_digest=digest,
        recipe_source=recipe.source_label, recipe_digest=recipe.digest(), recipe_data=dict(recipe.data),
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), harness_version=__version__,
        cache_key=ctx.cache_key, archives=dict(ctx.archive_digests), source=source_kind(recipe),
        mirror=ctx.mirror or "default", kernel_version=ctx.kernel_version, kernel_cmdline=recipe.kernel_cmdline,
        packages=tuple(Package.from_json(p) for p in ctx.packages),
        settings=tuple(DeclaredSetting(s.file, s.key, s.value, s.style, s.reason) for s in ctx.settings),
        timings_s=dict(ctx.timings.steps), efi_binaries=tuple(ctx.efi_binaries),
        boot_chain="" if ctx.esp is None else "signed" if ctx.esp.signed else "unsigned")


def finalize(ctx: BuildContext) -> BuildFolder:
    """Digest the disk once, write the manifest, and rename the folder into place."""
    with ctx.timings.step("digest"):
        digest = content_digest(ctx.disk_tmp)
    ctx.facts["partition_table"] = disk.partition_summary(ctx.disk_tmp)
    staging = ctx.work_dir
    for leftover in ("boot", "initramfs-modules", "esp.img"):
        target = staging / leftover
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    manifest = make_manifest(ctx, digest, DiskStamp.of(ctx.disk_tmp))  # a folder rename keeps inode and mtime
    manifest = sbom.attach_sbom(staging, manifest)  # sbom.spdx.json, recorded in the manifest with its sha256
    write_json_atomic(staging / MANIFEST, manifest.to_json())
    os.replace(staging, ctx.build_dir)
    (ctx.build_dir / housekeeping.LOCK_FILE).unlink(missing_ok=True)  # the work folder's lock; still held by fd
    return BuildFolder(ctx.build_dir)


def plan(recipe: Recipe, options: BuildOptions) -> dict[str, Any]:
    """What a build would run and write, without network or root (`harness build --plan`)."""
    ctx = make_context(recipe, options)
    files: dict[str, str] = {}
    for setting in ctx.settings:
        files[setting.file] = settings_mod.apply_to_text(files.get(setting.file, ""), setting)
    planned: dict[str, Any] = {"recipe": recipe.name, "family": recipe.family, "agent": ctx.agent,
                               "source": source_kind(recipe)}
    planned.update(route_of(recipe).plan(ctx))
    planned["files"] = files
    return planned


def build(recipe: Recipe, options: BuildOptions) -> BuildResult:
    """Build the recipe into a new build folder, or reuse an identical one (cache hit)."""
    ctx = make_context(recipe, options)
    ctx.build_dir.parent.mkdir(parents=True, exist_ok=True)
    preflight(ctx)
    with stage("build", f"{recipe.name}, agent {ctx.agent}, {ctx.disk_size_mib} MiB"):
        with ctx.timings.step("probe"):
            ctx.archive_digests = route_of(recipe).probe(ctx)
        ctx.cache_key = compute_cache_key(ctx)
        hit = None if options.rebuild else find_cache_hit(recipe, ctx.cache_key)
        if hit is not None:
            log.info("build: cache hit, reusing %s (same recipe, flags and archive state)", hit.path)
            return BuildResult(hit, True)
        ctx.work_dir.mkdir(parents=True)
        try:
            with housekeeping.held(ctx.work_dir):  # `builds prune` leaves a locked work folder alone
                for step in route_of(recipe).steps:
                    with ctx.timings.step(step.__name__):
                        step(ctx)
                folder = finalize(ctx)
        except BaseException:
            _discard(ctx)
            raise
    log.info("build: %s", folder.path)
    return BuildResult(folder, False)


def _discard(ctx: BuildContext) -> None:
    """Nothing half-written survives a failure; --keep-workdir keeps the scratch folder to debug."""
    if ctx.options.keep_workdir and ctx.work_dir.exists():
        log.error("build failed; scratch folder kept at %s", ctx.work_dir)
        return
    if not ctx.work_dir.exists():
        return
    if mounted := refuse_if_mounted(ctx.work_dir):
        log.error("build failed; scratch folder %s kept: %s", ctx.work_dir, mounted)
        return
    shutil.rmtree(ctx.work_dir, ignore_errors=True)


def family_of(recipe: Recipe) -> FamilyTraits:
    return get_family(recipe.family)
