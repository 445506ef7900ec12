"""zypper family: the root file system from the recipe's repositories with `zypper --root` (SLES 15 with the
user's registration/RMT mirror, openSUSE Leap 15 from its public repositories).

zypper reads only the harness's repository folder and keeps downloaded packages in the harness cache; its
solv cache path serves the host-side repository caches and, prefixed with the root, the installed system's,
so it is a per-build link under /tmp (the stray copy lands in the image's /tmp and is removed). One
difference from dnf matters: SUSE 15's rpm reads only its ndb database, and Debian's rpm writes sqlite, so
after the transaction the database is handed over: the target's own rpm registers every installed package
again (`rpm -i --justdb`) from the cached package files (see `handover_argvs`).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from harness import proc
from harness.builder import grub, rpm
from harness.builder.context import BuildContext
from harness.builder.families import ZYPPER, FamilyTraits
from harness.builder.guestroot import GuestRoot
from harness.builder.packages import package_set
from harness.errors import BuildError

log = logging.getLogger(__name__)

HANDOVER_DIR = "var/tmp/harness-rpmdb"
SUSE_KEYS = "usr/lib/rpm/gnupg/keys"
REPO_EXTRA = {"type": "rpm-md", "autorefresh": "1", "keeppackages": "1"}


def config_paths(ctx: BuildContext) -> dict[str, Path]:
    return {"repos": ctx.work_dir / "zypper" / "repos.d", "cache": ctx.cache_dir / "zypper" / ctx.recipe.release}


def solv_link(ctx: BuildContext) -> Path:
    return Path("/tmp") / f"harness-zypp-solv-{ctx.build_id}"


def zypper_argv(ctx: BuildContext) -> list[str]:
    """The full bootstrap command (pure given the context; shown by `harness build --plan`)."""
    include, exclude = package_set(ctx)
    paths = config_paths(ctx)
    return ["zypper", "--non-interactive", "--gpg-auto-import-keys", f"--root={ctx.rootfs}",
            f"--reposd-dir={paths['repos']}", f"--raw-cache-dir={paths['cache'] / 'raw'}",
            f"--pkg-cache-dir={paths['cache'] / 'packages'}", f"--solv-cache-dir={solv_link(ctx)}",
            f"--releasever={ctx.recipe.release}",
            "install", "--no-recommends", "--auto-agree-with-licenses", *include,
            # '!name' keeps a package out of the transaction (zypper's syntax for a removal request)
            *(f"!{p}" for p in exclude)]


def config_files(ctx: BuildContext) -> dict[str, str]:
    paths = config_paths(ctx)
    return {str(paths["repos"] / rpm.REPO_FILE): rpm.repo_file(ctx.recipe.source.repositories, REPO_EXTRA),
            str(rpm.rpm_home_path(ctx) / ".rpmmacros"): rpm.rpm_macros(ZYPPER)}


def host_backend() -> str:
    return proc.run(["rpm", "--eval", "%_db_backend"]).stdout.strip()


def cached_packages(ctx: BuildContext, packages: list[dict[str, str]]) -> list[Path]:
    """The package file of every installed package in zypper's cache (keeppackages=1)."""
    files = {p.name: p for p in config_paths(ctx)["cache"].glob("packages/**/*.rpm")}
    wanted = [f"{p['name']}-{p['version'].split(':')[-1]}.{p['arch']}.rpm" for p in packages]
    missing = [name for name in wanted if name not in files]
    if missing:
        raise BuildError(f"{len(missing)} installed packages are not in zypper's cache (first: {missing[0]})",
                         "the repositories need keeppackages=1; rerun with --rebuild")
    return [files[name] for name in wanted]


def handover_argvs(ctx: BuildContext, family: FamilyTraits, package_files: list[str],
                   keys: list[str]) -> list[list[str]]:
    """Commands that rebuild the target's database with the target's own rpm (guest paths, run in a chroot)."""
    root = str(ctx.rootfs)
    argvs = [["chroot", root, "rpm", "--initdb"]]
    argvs += [["chroot", root, "rpm", "--import", key] for key in keys]
    argvs.append(["chroot", root, "rpm", "-i", "--justdb", "--nodeps", "--noscripts", "--notriggers",
                  "--nosignature", "--replacepkgs", *package_files])
    return argvs


def handover(ctx: BuildContext, family: FamilyTraits = ZYPPER) -> None:
    """Re-register the installed packages in the target's database format; returns early when the host's
    rpm already writes it."""
    host = host_backend()
    if host == family.rpmdb_backend:
        log.debug("rpm database: the host writes %s like the target; no hand-over", host)
        return
    staging = ctx.rootfs / HANDOVER_DIR
    staging.mkdir(parents=True, exist_ok=True)
    names = []
    for path in cached_packages(ctx, ctx.packages):
        shutil.copy2(path, staging / path.name)
        names.append(f"/{HANDOVER_DIR}/{path.name}")
    dbdir = ctx.rootfs / family.rpm_dbpath.lstrip("/")
    shutil.rmtree(dbdir)
    dbdir.mkdir(parents=True)
    keys = sorted(f"/{SUSE_KEYS}/{k.name}" for k in (ctx.rootfs / SUSE_KEYS).glob("*.asc"))
    for argv in handover_argvs(ctx, family, names, keys):
        proc.run(argv, hint=f"the target's rpm could not rebuild its {family.rpmdb_backend} database")
    shutil.rmtree(staging)
    log.info("rpm database handed over from the host's %s to the target's %s (%d packages)", host,
             family.rpmdb_backend, len(names))


def plan(ctx: BuildContext) -> dict[str, Any]:
    return {
        "commands": [zypper_argv(ctx),
                     *handover_argvs(ctx, ZYPPER, [f"/{HANDOVER_DIR}/<each installed package>.rpm"],
                                     [f"/{SUSE_KEYS}/<each key>.asc"])],
        "environment": {"HOME": str(rpm.rpm_home_path(ctx))},
        "host_files": config_files(ctx),
        "preinstall_files": rpm.preinstall_files(ctx, ZYPPER),
    }


def install(ctx: BuildContext) -> None:
    """zypper's transaction into ctx.rootfs, then the package list (read while the database is the host's)."""
    rpm.write_host_files(config_files(ctx))
    rpm.write_files(ctx.rootfs, rpm.preinstall_files(ctx, ZYPPER))
    with rpm.cache_link(ctx, config_paths(ctx)["cache"] / "solv", solv_link(ctx)):
        rpm.transaction(ctx, zypper_argv(ctx))
    GuestRoot(ctx.rootfs).remove("/run/zypp.pid")  # zypper's pid file; /run is a tmpfs in the guest
    ctx.packages = rpm.installed_packages(ctx.rootfs, ZYPPER)


def bootstrap(ctx: BuildContext) -> None:
    install(ctx)
    rpm.initramfs_gate(ctx, ZYPPER, grub.kernel_version(ctx.rootfs, ZYPPER))
    handover(ctx)
