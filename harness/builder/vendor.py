"""Vendor base images: download (resumable, verified), convert to the build's raw disk, customize inside one
QEMU boot with a NoCloud seed, and describe the result for the manifest.

The route for RHEL/SLES images users download with their accounts, the public CentOS Stream, Oracle Linux and
openSUSE cloud images, and Flatcar (used as published: no customization; Ignition provisions it).
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import logging
import lzma
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import proc
from harness.builder import custboot, customize, fetch
from harness.builder.context import BuildContext
from harness.builder.families import FAMILIES, FamilyTraits
from harness.builder.layout import MIB
from harness.checks.diskread import ext4_uuid, fat_serial
from harness.errors import BuildError
from harness.platform.nocloud import seed_iso
from harness.recipe import BaseImage
from harness.vm import accel as accel_mod

log = logging.getLogger(__name__)

CUSTOMIZE_TIMEOUT_S = 1800.0
DECOMPRESSORS: dict[str, Callable[[Path], io.BufferedIOBase]] = {"bz2": bz2.BZ2File, "xz": lzma.LZMAFile,
                                                                "gz": gzip.GzipFile}
QEMU_FORMAT = {"qcow2": "qcow2", "raw": "raw", "vpc": "vpc"}
# GPT partition type -> the name the manifest's layout gives it (verify finds the root by name)
PART_NAMES = {"21686148-6449-6E6F-744E-656564454649": "bios", "C12A7328-F81F-11D2-BA4B-00A0C93EC93B": "esp"}


def image_of(ctx: BuildContext) -> BaseImage:
    image = ctx.recipe.source.base_image
    assert image is not None  # the route table sends only base-image recipes here
    return image


def customizer(ctx: BuildContext) -> FamilyTraits | None:
    """The family whose customization runs in the boot; None (Flatcar) means the image is used as published."""
    return FAMILIES.get(ctx.recipe.family)


# ---------------------------------------------------------------------------------------------
# Probe (cache-key input) and download.

def probe(ctx: BuildContext) -> dict[str, str]:
    """Reachability in seconds, then the digest the image must have (pinned, or from the vendor's list)."""
    image = image_of(ctx)
    needed_by = f"recipe {ctx.recipe.name}"
    fetch.probe(image.url, needed_by)
    digest = expected_digest(ctx, image)
    ctx.facts["base_image_digest"] = digest
    return {"base_image": str(digest)}


def expected_digest(ctx: BuildContext, image: BaseImage) -> fetch.Digest:
    if image.sha256:
        return fetch.Digest("sha256", image.sha256)
    fetch.probe(image.checksum_url, f"recipe {ctx.recipe.name}")
    text = fetch.fetch_bytes(image.checksum_url).decode("utf-8", errors="replace")
    ctx.facts["checksum_text"] = text
    name = fetch.file_name(image.url)
    digest = fetch.parse_checksums(text, name)
    if digest is None:
        raise BuildError(f"{image.checksum_url} lists no sha256/sha512 for {name}",
                         "the vendor renamed the image: fix source.base_image in the recipe")
    return digest


def cached_image(ctx: BuildContext) -> Path:
    digest: fetch.Digest = ctx.facts["base_image_digest"]
    return ctx.cache_dir / "base-images" / digest.value[:16] / fetch.file_name(image_of(ctx).url)


def fetch_base_image(ctx: BuildContext) -> None:
    """The verified image file: downloaded into the cache (resumable), or a local file checked in place."""
    image = image_of(ctx)
    digest: fetch.Digest = ctx.facts["base_image_digest"]
    if fetch.is_local(image.url):
        path = fetch.local_path(image.url)
        actual = digest.of_file(path)
        if actual != digest.value:
            raise BuildError(f"{path} has {digest.algorithm} {actual}, expected {digest.value}",
                             "the file is not the image the recipe names: download it again or fix the recipe")
    else:
        path = fetch.download(image.url, cached_image(ctx), digest)
    if image.signature:
        check_signature(ctx, image, path)
    ctx.facts["base_image_path"] = path


def check_signature(ctx: BuildContext, image: BaseImage, path: Path) -> None:
    """The vendor's detached signature over its checksum list (when the digest came from one) or the image."""
    from harness.builder.apt import keyring_path

    keyring = keyring_path(ctx)
    assert keyring is not None  # recipe validation requires source.keyring with a signature
    signed = path
    if "checksum_text" in ctx.facts:
        signed = ctx.work_dir / fetch.file_name(image.checksum_url)
        signed.write_text(ctx.facts["checksum_text"], encoding="utf-8")
    signature = ctx.work_dir / fetch.file_name(image.signature)
    signature.write_bytes(fetch.fetch_bytes(image.signature))
    fetch.verify_signature(signed, signature, keyring)


# ---------------------------------------------------------------------------------------------
# Conversion to the build's raw disk.

def convert_argv(source: Path, fmt: str, dest: Path) -> list[str]:
    return ["qemu-img", "convert", "-f", QEMU_FORMAT[fmt], "-O", "raw", str(source), str(dest)]


def target_size(virtual_bytes: int, disk_size_mib: int) -> int:
    """A whole number of MiB (Azure, image-checks A2), never smaller than the image."""
    return max(disk_size_mib * MIB, math.ceil(virtual_bytes / MIB) * MIB)


def convert_base_image(ctx: BuildContext) -> None:
    """Decompress if needed, convert to raw (sparse), grow to the build's size and move the GPT backup."""
    image = image_of(ctx)
    source: Path = ctx.facts["base_image_path"]
    if image.compression:
        source = _decompress(source, ctx.work_dir / source.name.removesuffix(f".{image.compression}"),
                             image.compression)
    proc.run(convert_argv(source, image.format, ctx.disk_tmp), hint="the image is damaged or not in source.format")
    if source.parent == ctx.work_dir:
        source.unlink()
    size = target_size(ctx.disk_tmp.stat().st_size, ctx.disk_size_mib)
    if size != ctx.disk_tmp.stat().st_size:
        with ctx.disk_tmp.open("r+b") as handle:
            handle.truncate(size)
        if _label(ctx.disk_tmp) == "gpt":
            proc.run(["sfdisk", "--relocate", "gpt-bak-std", str(ctx.disk_tmp)])
    ctx.facts["disk_size_bytes"] = size


def _decompress(source: Path, dest: Path, compression: str) -> Path:
    tmp = dest.with_name(dest.name + ".part")
    with DECOMPRESSORS[compression](source) as fin, tmp.open("wb") as fout:
        shutil.copyfileobj(fin, fout, 4 * MIB)
    tmp.rename(dest)
    return dest


def _label(disk: Path) -> str:
    result = proc.run(["sfdisk", "-J", str(disk)], check=False)
    return str(json.loads(result.stdout)["partitiontable"].get("label", "")) if result.returncode == 0 else ""


# ---------------------------------------------------------------------------------------------
# Customization boot.

def customize_in_vm(ctx: BuildContext) -> None:
    """Install the agent, apply the settings, regenerate the boot files and seal, inside one boot."""
    family = customizer(ctx)
    if family is None:
        log.info("customize: %s is used as published (family %s provisions with %s)", ctx.recipe.name,
                 ctx.recipe.family, ctx.agent)
        return
    evidence = ctx.work_dir / "customize"
    evidence.mkdir(parents=True, exist_ok=True)
    text = customize.program(ctx, family)
    (evidence / "customize.sh").write_text(text, encoding="utf-8")
    seed = ctx.work_dir / "customize-seed.iso"
    seed_iso(seed, user_data=customize.user_data(text), meta_data=customize.meta_data())
    boot = custboot.CustomizeBoot(
        name=ctx.recipe.name, disk=ctx.disk_tmp, seed=seed, facts=ctx.work_dir / "customize-facts.raw",
        evidence=evidence, firmware="bios" if "V1" in ctx.recipe.generations else "uefi",
        accel=accel_mod.choose(None, "auto"), timeout_s=CUSTOMIZE_TIMEOUT_S)
    custboot.run_boot(boot)
    facts = customize.read_facts(boot.facts)
    (evidence / "customize.log").write_text(facts.log, encoding="utf-8")
    seed.unlink()
    boot.facts.unlink()
    failure = facts.failure()
    if failure:
        tail = " | ".join(facts.log.strip().splitlines()[-3:])
        raise BuildError(f"{failure}: {tail}", f"see {evidence / 'customize.log'} (--keep-workdir keeps it)")
    ctx.facts["customize"] = facts


# ---------------------------------------------------------------------------------------------
# Facts for the manifest.

def partition_layout(table: dict[str, Any], disk: Path, root_uuid: str) -> list[dict[str, Any]]:
    """The manifest's layout from the disk's own table; the partition holding root_uuid is 'root'."""
    layout = []
    for number, part in enumerate(table.get("partitions", []), start=1):
        start, size = int(part["start"]) * 512, int(part["size"]) * 512
        name = PART_NAMES.get(str(part.get("type", "")).upper(), f"p{number}")
        if root_uuid and ext4_uuid(_read(disk, start + 1024, 1024)) == root_uuid:
            name = "root"
        layout.append({"number": number, "name": name, "type_guid": str(part.get("type", "")).upper(),
                       "start_mib": start // MIB, "size_mib": size // MIB, "start_bytes": start, "size_bytes": size})
    return layout


def _read(disk: Path, offset: int, length: int) -> bytes:
    with disk.open("rb") as handle:
        handle.seek(offset)
        return handle.read(length)


def collect_facts(ctx: BuildContext) -> None:
    """Packages, kernel, root and disk identity as the image has them (Flatcar: the disk's own only)."""
    facts: customize.Facts | None = ctx.facts.get("customize")
    ctx.packages = facts.packages if facts else []
    ctx.kernel_version = facts.kernel_version if facts else ""
    ctx.root_uuid = facts.root_uuid if facts else ""
    table = json.loads(proc.run(["sfdisk", "-J", str(ctx.disk_tmp)]).stdout)["partitiontable"]
    ctx.disk_guid = str(table.get("id", "")).upper()
    ctx.facts["layout"] = layout = partition_layout(table, ctx.disk_tmp, ctx.root_uuid)
    esp = next((p for p in layout if p["name"] == "esp"), None)
    ctx.esp_serial = (fat_serial(_read(ctx.disk_tmp, esp["start_bytes"], 512)) or "") if esp else ""


STEPS = (fetch_base_image, convert_base_image, customize_in_vm, collect_facts)


# ---------------------------------------------------------------------------------------------

def plan(ctx: BuildContext) -> dict[str, Any]:
    """What the route would do, without network: download, checks, conversion, the customization program."""
    image = image_of(ctx)
    source = ctx.cache_dir / "base-images" / "<digest>" / fetch.file_name(image.url)
    if fetch.is_local(image.url):
        source = fetch.local_path(image.url)
    converted = ctx.work_dir / source.name.removesuffix(f".{image.compression}") if image.compression else source
    planned: dict[str, Any] = {
        "download": {"url": image.url, "sha256": image.sha256 or None, "checksum_url": image.checksum_url or None,
                     "signature": image.signature or None, "cache": str(source),
                     "resume": "HTTP Range from <cache>.part; renamed into place once the digest matched"},
        "commands": [convert_argv(converted, image.format, ctx.disk_tmp),
                     ["sfdisk", "--relocate", "gpt-bak-std", str(ctx.disk_tmp)]],
        "disk_size": f"max({ctx.disk_size_mib} MiB, the image's virtual size rounded up to a whole MiB)",
    }
    if image.compression:
        planned["decompress"] = {"from": str(source), "to": str(converted), "compression": image.compression}
    family = customizer(ctx)
    if family is None:
        planned["customization"] = f"none: {ctx.recipe.family} images are used as published"
        return planned
    text = customize.program(ctx, family)
    planned["customization"] = {
        "firmware": "bios" if "V1" in ctx.recipe.generations else "uefi",
        "network": "private namespace, DHCP only, no route out",
        "qemu_extra": list(custboot.facts_args(ctx.work_dir / "customize-facts.raw")),
        "user_data": customize.user_data(text),
        "program": text,
    }
    return planned
