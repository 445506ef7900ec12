"""Generalize the root tree: nothing that identifies the build host or a previous instance remains.

The offline audit checks the result independently (image-checks section D): sealing is not trusted,
it is verified.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from harness.builder.context import BuildContext
from harness.builder.families import get as get_family

log = logging.getLogger(__name__)

# Instance state of the provisioning agents and their logs (D5).
AGENT_STATE = ("var/lib/cloud", "var/lib/waagent")
AGENT_LOGS = ("var/log/cloud-init.log", "var/log/cloud-init-output.log", "var/log/waagent.log",
              "var/log/azure")
# Per-machine secrets and identifiers systemd and friends keep on disk.
MACHINE_STATE = ("var/lib/systemd/random-seed", "var/lib/systemd/credential.secret",
                 "etc/udev/rules.d/70-persistent-net.rules")
# dnf and zypper package caches and indexes (the apt ones are named where they are cleaned).
RPM_CACHES = ("var/cache/dnf", "var/cache/yum", "var/cache/zypp/packages", "var/cache/zypp/raw", "var/cache/zypp/solv")
HISTORY_NAMES = (".bash_history", ".sh_history", ".zsh_history", ".history", ".python_history",
                 ".lesshst", ".viminfo")


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _empty_dir(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        for child in path.iterdir():
            _remove(child)


def remove_host_keys(root: Path) -> None:
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()


def reset_machine_id(root: Path, style: str) -> None:
    """Empty or 'uninitialized' on purpose per family (see families.py), never a baked-in id (D3)."""
    (root / "etc/machine-id").write_text("uninitialized\n" if style == "uninitialized" else "",
                                         encoding="utf-8")
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.exists() and not dbus_id.is_symlink():
        dbus_id.unlink()


def remove_histories(root: Path) -> None:
    homes = [root / "root", *(p for p in (root / "home").glob("*") if p.is_dir())]
    for home in homes:
        for name in HISTORY_NAMES:
            _remove(home / name)


def remove_agent_state(root: Path) -> None:
    for rel in AGENT_STATE:
        _empty_dir(root / rel)
    for rel in AGENT_LOGS + MACHINE_STATE:
        _remove(root / rel)


def remove_leases(root: Path, lease_dirs: tuple[str, ...]) -> None:
    for rel in lease_dirs:
        folder = root / rel.lstrip("/")
        if folder.is_dir():
            for lease in folder.rglob("*"):
                if lease.is_file() and ("lease" in lease.name or lease.suffix == ".lease"):
                    lease.unlink()


def reset_resolv_conf(root: Path) -> None:
    """The build host's resolver must not leak; a symlink (systemd-resolved) is the distro's design."""
    resolv = root / "etc/resolv.conf"
    if resolv.exists() and not resolv.is_symlink():
        resolv.unlink()


def clean_caches_and_logs(root: Path) -> None:
    """Package caches, temp folders and the build's own logs (D7)."""
    for rel in ("var/cache/apt/archives", "var/lib/apt/lists", *RPM_CACHES, "tmp", "var/tmp"):
        folder = root / rel
        if folder.is_dir():
            for child in folder.iterdir():
                if child.name not in ("partial", "lock"):
                    _remove(child)
    for pattern in ("var/cache/apt/*.bin", "var/cache/debconf/*-old", "var/lib/dpkg/*-old"):
        for path in root.glob(pattern):
            _remove(path)
    logdir = root / "var/log"
    if logdir.is_dir():
        for path in logdir.rglob("*"):
            if path.is_file() and not path.is_symlink():
                path.write_bytes(b"")
        _remove(logdir / "journal")


def seal(ctx: BuildContext) -> None:
    """Apply every generalization step; used for generalized and specialized images alike."""
    root = ctx.rootfs
    family = get_family(ctx.recipe.family)
    remove_host_keys(root)
    reset_machine_id(root, ctx.recipe.machine_id or family.machine_id)
    remove_histories(root)
    remove_agent_state(root)
    remove_leases(root, family.dhcp_lease_dirs)
    reset_resolv_conf(root)
    clean_caches_and_logs(root)
    log.debug("sealed %s", root)
