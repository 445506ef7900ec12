"""Generalize the root tree: nothing that identifies the build host or a previous instance remains.

The offline audit checks the result independently (image-checks section D): sealing is not trusted,
it is verified.
"""

from __future__ import annotations

import logging
from pathlib import Path

from harness import proc
from harness.builder.context import BuildContext
from harness.builder.families import get as get_family
from harness.builder.guestroot import GuestRoot
from harness.checks.offline_hygiene import REGISTRATION_DIRS, SCC_CREDENTIALS

log = logging.getLogger(__name__)

# Instance state of the provisioning agents and their logs (D5).
AGENT_STATE = ("/var/lib/cloud", "/var/lib/waagent")
AGENT_LOGS = ("/var/log/cloud-init.log", "/var/log/cloud-init-output.log", "/var/log/waagent.log",
              "/var/log/azure")
# Per-machine secrets and identifiers systemd and friends keep on disk.
MACHINE_STATE = ("/var/lib/systemd/random-seed", "/var/lib/systemd/credential.secret",
                 "/etc/udev/rules.d/70-persistent-net.rules")
# dnf and zypper package caches and indexes (the apt ones are named where they are cleaned).
RPM_CACHES = ("/var/cache/dnf", "/var/cache/yum", "/var/cache/zypp/packages", "/var/cache/zypp/raw",
              "/var/cache/zypp/solv")
# Registration with Red Hat (subscription-manager) or the SUSE Customer Center (SUSEConnect): the tools (what
# their cleanup removes, the audit's D10 names: REGISTRATION_DIRS, SCC_CREDENTIALS).
SUBSCRIPTION_MANAGER = ("/usr/sbin/subscription-manager", "/usr/bin/subscription-manager")
SUSECONNECT = ("/usr/sbin/SUSEConnect", "/usr/bin/SUSEConnect")
RHSM_CONSUMER = "/etc/pki/consumer/cert.pem"
HISTORY_NAMES = (".bash_history", ".sh_history", ".zsh_history", ".history", ".python_history",
                 ".lesshst", ".viminfo")

# Every path below is a guest path resolved inside the image (GuestRoot): an absolute symlink in the image
# (/etc/resolv.conf -> /run/..., /home -> /var/home) never leads to the build host's files.


def unregister(root: GuestRoot, rootfs: Path) -> None:
    """Hand a Red Hat or SUSE registration back and drop its certificates and credentials: every VM from the
    image would otherwise use the build's subscription (D10). The tools run in the tree, as grub-mkimage does."""
    if any(root.exists(p) for p in SUBSCRIPTION_MANAGER):
        if root.exists(RHSM_CONSUMER):
            proc.run(["chroot", rootfs, "subscription-manager", "unregister"],
                     hint="the build could not reach Red Hat to unregister; unregister the system and build again")
        proc.run(["chroot", rootfs, "subscription-manager", "clean"])
    if any(root.exists(p) for p in SUSECONNECT) and root.exists(SCC_CREDENTIALS[0]):
        proc.run(["chroot", rootfs, "SUSEConnect", "--cleanup"])
    for folder in REGISTRATION_DIRS:
        for pem in root.glob(folder, "*.pem"):
            root.remove(pem)
    for path in SCC_CREDENTIALS:
        root.remove(path)


def remove_host_keys(root: GuestRoot) -> None:
    for key in root.glob("/etc/ssh", "ssh_host_*"):
        root.remove(key)


def reset_machine_id(root: GuestRoot, style: str) -> None:
    """Empty or 'uninitialized' on purpose per family (see families.py), never a baked-in id (D3)."""
    root.write_text("/etc/machine-id", "uninitialized\n" if style == "uninitialized" else "", mode=0o444)
    if not root.path("/var/lib/dbus/machine-id", follow_last=False).is_symlink():
        root.remove("/var/lib/dbus/machine-id")


def remove_histories(root: GuestRoot) -> None:
    homes = ["/root", *(h for h in root.glob("/home", "*") if root.path(h).is_dir())]
    for home in homes:
        for name in HISTORY_NAMES:
            root.remove(f"{home}/{name}")


def remove_agent_state(root: GuestRoot) -> None:
    for guest in AGENT_STATE:
        root.empty_dir(guest)
    for guest in AGENT_LOGS + MACHINE_STATE:
        root.remove(guest)


def remove_leases(root: GuestRoot, lease_dirs: tuple[str, ...]) -> None:
    for folder in lease_dirs:
        for lease in root.glob(folder, "**/*"):
            host = root.path(lease, follow_last=False)
            if host.is_file() and not host.is_symlink() and ("lease" in host.name or host.suffix == ".lease"):
                root.remove(lease)


def reset_resolv_conf(root: GuestRoot) -> None:
    """The build host's resolver must not leak; a symlink (systemd-resolved) is the distro's design."""
    if not root.path("/etc/resolv.conf", follow_last=False).is_symlink():
        root.remove("/etc/resolv.conf")


def clean_caches_and_logs(root: GuestRoot) -> None:
    """Package caches, temp folders and the build's own logs (D7)."""
    for folder in ("/var/cache/apt/archives", "/var/lib/apt/lists", *RPM_CACHES, "/tmp", "/var/tmp"):
        for child in root.glob(folder, "*"):
            if child.rsplit("/", 1)[-1] not in ("partial", "lock"):
                root.remove(child)
    for folder, pattern in (("/var/cache/apt", "*.bin"), ("/var/cache/debconf", "*-old"), ("/var/lib/dpkg", "*-old")):
        for path in root.glob(folder, pattern):
            root.remove(path)
    for path in root.glob("/var/log", "**/*"):
        host = root.path(path, follow_last=False)
        if host.is_file() and not host.is_symlink():
            host.write_bytes(b"")
    root.remove("/var/log/journal")


def seal(ctx: BuildContext) -> None:
    """Apply every generalization step; used for generalized and specialized images alike."""
    root = GuestRoot(ctx.rootfs)
    family = get_family(ctx.recipe.family)
    unregister(root, ctx.rootfs)
    remove_host_keys(root)
    reset_machine_id(root, ctx.recipe.machine_id or family.machine_id)
    remove_histories(root)
    remove_agent_state(root)
    remove_leases(root, family.dhcp_lease_dirs)
    reset_resolv_conf(root)
    clean_caches_and_logs(root)
    log.debug("sealed %s", ctx.rootfs)
