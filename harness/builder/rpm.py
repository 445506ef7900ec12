"""rpm families (dnf, zypper): repository files, the host rpm's view of the target, files the kernel's
scriptlets read, the initramfs gate, installed packages and the repository probe.

Debian ships dnf, zypper and rpm, but its rpm keeps databases in ~/.rpmdb: every rpm call of a bootstrap
runs with HOME pointing at a private folder whose .rpmmacros names the target's database path.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from harness import proc
from harness.builder import fetch
from harness.builder import settings as settings_mod
from harness.builder.context import BuildContext
from harness.builder.families import FamilyTraits
from harness.builder.guestroot import GuestRoot
from harness.checks.offline_boot import HV_MODULES, modules_present
from harness.checks.textparse import initramfs_paths, parse_kernel_config
from harness.errors import BuildError, CommandError
from harness.progress import LineProgress
from harness.recipe import Repository

ARCH = "x86_64"
BOOTSTRAP_TIMEOUT_S = 3600
REPO_FILE = "harness.repo"


def expand(url: str, release: str) -> str:
    """The URL with the variables both dnf and zypper expand ($releasever, $basearch, $arch)."""
    return url.replace("$releasever", release).replace("$basearch", ARCH).replace("$arch", ARCH)


def repo_file(repos: tuple[Repository, ...], extra: dict[str, str]) -> str:
    """One .repo file (INI) with every repository; `extra` adds tool-specific keys to each section."""
    sections = []
    for repo in repos:
        lines = [f"[{repo.id}]", f"name={repo.name or repo.id}"]
        lines += [f"{key}={value}" for key in ("baseurl", "mirrorlist", "metalink")
                  if (value := getattr(repo, key))]
        lines += ["enabled=1", f"gpgcheck={1 if repo.gpgcheck else 0}"]
        if repo.gpgkey:
            lines.append(f"gpgkey={' '.join(repo.gpgkey)}")
        lines += [f"{key}={value}" for key in ("sslclientcert", "sslclientkey", "sslcacert")
                  if (value := getattr(repo, key))]
        lines += [f"{key}={value}" for key, value in extra.items()]
        sections.append("\n".join(lines) + "\n")
    return "\n".join(sections)


def rpm_macros(family: FamilyTraits) -> str:
    return f"%_dbpath {family.rpm_dbpath}\n"


def rpm_home_path(ctx: BuildContext) -> Path:
    """The HOME whose .rpmmacros points the host's rpm at the target's database (see module docstring)."""
    return ctx.work_dir / "rpm-home"


def rpm_env(home: Path) -> dict[str, str]:
    return {**os.environ, "HOME": str(home)}


def write_host_files(files: dict[str, str]) -> None:
    for path, content in files.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(content, encoding="utf-8")


def progress_feeder(progress: LineProgress) -> Callable[[str], None]:
    """Counts packages from dnf ('  Installing       : bash-5.1.8-9.el9.x86_64   3/212') and zypper
    ('(3/212) Installing: bash-4.4-150400.27.3.2.x86_64 [..done]') transaction lines."""
    def feed(line: str) -> None:
        if INSTALLING_LINE.match(line):
            progress.update("installing packages", advance=1)
    return feed


INSTALLING_LINE = re.compile(r"^\s*(\(\d+/\d+\) )?Installing\s*:")


def explain(exc: CommandError, ctx: BuildContext) -> CommandError:
    """Turn the usual repository failures into an actionable hint."""
    tail = exc.output_tail
    if re.search(r"No match for argument|not found in package names|No provider of", tail):
        exc.hint = f"a package in recipe {ctx.recipe.name} does not exist in its repositories; fix [packages]"
    elif re.search(r"Cannot download repomd|Curl error|Failed to download|Could not resolve", tail):
        exc.hint = (f"a repository of recipe {ctx.recipe.name} is unreachable from this machine; the recipe needs "
                    "network access to it")
    elif re.search(r"GPG check FAILED|Signature verification failed|public key .* is not installed", tail):
        exc.hint = "a package signature does not verify: check the repositories' gpgkey in the recipe"
    return exc


def kernel_cmdline(ctx: BuildContext) -> str:
    """What kernel-install puts on new boot entries: the root file system and the recipe's parameters."""
    return " ".join([f"root=UUID={ctx.root_uuid}", "ro", *ctx.recipe.kernel_cmdline]) + "\n"


def preinstall_files(ctx: BuildContext, family: FamilyTraits) -> dict[str, str]:
    """Files the kernel package's scriptlets read, in place before it installs (guest path -> content).

    The dracut drop-in (hv drivers, A6) and GRUB's defaults come from the effective settings; dnf's
    kernel-install also reads /etc/kernel/cmdline, without which it copies the build host's /proc/cmdline.
    """
    targets = {family.initramfs_modules_file, family.grub_default}
    files: dict[str, str] = {}
    for setting in ctx.settings:
        if setting.file in targets:
            files[setting.file] = settings_mod.apply_to_text(files.get(setting.file, ""), setting)
    if family.kernel_cmdline_file:
        files[family.kernel_cmdline_file] = kernel_cmdline(ctx)
    return files


def write_files(root: Path, files: dict[str, str]) -> None:
    tree = GuestRoot(root)
    for guest_path, content in files.items():
        tree.write_text(guest_path, content)


def installed_packages(rootfs: Path, family: FamilyTraits) -> list[dict[str, str]]:
    """Every installed package with its version, read with the host's rpm from the target's database."""
    # kernel-core<TAB>5.14.0-503.el9<TAB>x86_64  (epoch shown as E: when set)
    query = "%{NAME}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\t%{ARCH}\n"
    result = proc.run(["rpm", f"--root={rootfs}", f"--dbpath={family.rpm_dbpath}", "-qa", "--qf", query])
    packages = []
    for line in sorted(result.stdout.splitlines()):
        name, version, arch = line.split("\t")
        if name != "gpg-pubkey":
            packages.append({"name": name, "version": version, "arch": arch})
    return packages


def initramfs_gate(ctx: BuildContext, family: FamilyTraits, version: str) -> list[str]:
    """The initramfs the kernel's scriptlets built must carry the Hyper-V drivers (A6); returns its listing."""
    root = ctx.rootfs
    initramfs = root / "boot" / family.initramfs_glob.format(v=version)
    if not initramfs.exists():
        raise BuildError(f"the kernel package left no {initramfs.relative_to(root)}",
                         "its scriptlets (dracut) failed; see bootstrap.log in the scratch folder (--keep-workdir)")
    listing = initramfs_paths(proc.run([family.initramfs_tool, str(initramfs)]).stdout)
    config_path = root / "boot" / f"config-{version}"
    config = parse_kernel_config(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
    found = modules_present(listing, HV_MODULES, config)
    missing = [module for module, where in found.items() if not where]
    if missing:
        raise BuildError(f"{', '.join(missing)} missing from /boot/{initramfs.name}: the root disk would never "
                         "appear on Azure",
                         f"dracut did not read {family.initramfs_modules_file}; check kernel.initramfs_modules")
    return listing


def repository_digest(repo: Repository, release: str) -> str:
    """sha256 of the repository's index as served now (repomd.xml, or the mirror list): part of the cache key."""
    url = expand(repo.url, release)
    index = url.rstrip("/") + "/repodata/repomd.xml" if repo.baseurl else url
    return "sha256:" + hashlib.sha256(fetch.fetch_bytes(index)).hexdigest()


def probe_repositories(ctx: BuildContext) -> dict[str, str]:
    """Every repository host reachable (seconds, naming the host otherwise), then each index's digest."""
    recipe = ctx.recipe
    for repo in recipe.source.repositories:
        fetch.probe(expand(repo.url, recipe.release), f"recipe {recipe.name} (repository {repo.id})")
    return {repo.id: repository_digest(repo, recipe.release) for repo in recipe.source.repositories}


@contextmanager
def cache_link(ctx: BuildContext, cache: Path, link: Path) -> Iterator[None]:
    """`link` points at the harness cache `cache` for one transaction. The tool also writes through the same path
    prefixed with the root, so the copy it leaves under ctx.rootfs is removed with the link."""
    cache.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(cache)
    try:
        yield
    finally:
        link.unlink()
        stray = ctx.rootfs / str(link).lstrip("/")
        if stray.exists():
            shutil.rmtree(stray)


def transaction(ctx: BuildContext, argv: list[str]) -> None:
    """Run the package tool's install with progress lines, its output in bootstrap.log, errors explained."""
    log_path = ctx.work_dir / "bootstrap.log"
    with LineProgress("bootstrap", total_hint=0) as progress:
        try:
            proc.stream(argv, on_line=progress_feeder(progress), env=rpm_env(rpm_home_path(ctx)),
                       timeout_s=BOOTSTRAP_TIMEOUT_S, log_path=log_path,
                       hint=f"see {log_path}; check the package names and repositories in the recipe")
        except CommandError as exc:
            raise explain(exc, ctx) from exc
