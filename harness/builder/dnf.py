"""dnf family: the root file system from the recipe's repositories with `dnf --installroot` (CentOS Stream,
Oracle Linux, RHEL with the user's repositories or entitlement certificates).

Only harness-written configuration is read: a private dnf.conf, repository folder and variables folder, so
the build host's /etc/dnf and /etc/yum.repos.d never leak in. dnf keeps repositories and packages in the host
path named by cachedir but writes its expired_repos.json under <installroot>/<cachedir>, so cachedir is a
per-build link under /tmp to the harness cache: the stray file lands in the image's /tmp and is removed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from harness.builder import grub, rpm
from harness.builder.context import BuildContext
from harness.builder.families import DNF
from harness.builder.packages import package_set

log = logging.getLogger(__name__)

DNF_CONF = """[main]
gpgcheck=1
installonly_limit=3
clean_requirements_on_remove=True
best=True
skip_if_unavailable=False
install_weak_deps=False
keepcache=True
"""


def config_paths(ctx: BuildContext) -> dict[str, Path]:
    base = ctx.work_dir / "dnf"
    return {"conf": base / "dnf.conf", "repos": base / "repos.d", "vars": base / "vars"}


def host_cache(ctx: BuildContext) -> Path:
    return ctx.cache_dir / "dnf" / ctx.recipe.release


def cache_link(ctx: BuildContext) -> Path:
    return Path("/tmp") / f"harness-dnf-{ctx.build_id}"


def dnf_argv(ctx: BuildContext) -> list[str]:
    """The full bootstrap command (pure given the context; shown by `harness build --plan`)."""
    include, exclude = package_set(ctx)
    paths = config_paths(ctx)
    return ["dnf", "-y", f"--installroot={ctx.rootfs}", f"--releasever={ctx.recipe.release}",
            f"--forcearch={rpm.ARCH}", f"--config={paths['conf']}", f"--setopt=reposdir={paths['repos']}",
            f"--setopt=varsdir={paths['vars']}", f"--setopt=cachedir={cache_link(ctx)}", "--nodocs",
            *(f"--exclude={p}" for p in exclude), "install", *include]


def config_files(ctx: BuildContext) -> dict[str, str]:
    """Host-side files the command reads (path -> content)."""
    paths = config_paths(ctx)
    return {str(paths["conf"]): DNF_CONF,
            str(paths["repos"] / rpm.REPO_FILE): rpm.repo_file(ctx.recipe.source.repositories, {}),
            str(rpm.rpm_home_path(ctx) / ".rpmmacros"): rpm.rpm_macros(DNF)}


def plan(ctx: BuildContext) -> dict[str, Any]:
    return {
        "commands": [dnf_argv(ctx)],
        "environment": {"HOME": str(rpm.rpm_home_path(ctx))},
        "host_files": config_files(ctx),
        "preinstall_files": rpm.preinstall_files(ctx, DNF),
    }


def bootstrap(ctx: BuildContext) -> None:
    """Install the root file system into ctx.rootfs; the kernel's scriptlets see our dracut and cmdline files."""
    rpm.write_host_files(config_files(ctx))
    config_paths(ctx)["vars"].mkdir(parents=True, exist_ok=True)
    rpm.write_files(ctx.rootfs, rpm.preinstall_files(ctx, DNF))
    with rpm.cache_link(ctx, host_cache(ctx), cache_link(ctx)):
        rpm.transaction(ctx, dnf_argv(ctx))
    version = grub.kernel_version(ctx.rootfs, DNF)
    rpm.initramfs_gate(ctx, DNF, version)
    ctx.packages = rpm.installed_packages(ctx.rootfs, DNF)
