"""Generalization audit (image-checks D1-D8, D10), run on the artifact itself whatever the build did (D9):
no users' secrets, host keys, machine identity, histories, agent state, leases, build leftovers, registrations.
"""

from __future__ import annotations

import posixpath
import re

from harness.checks.image import Image
from harness.checks.rulebase import FAILED, WARNING, Record, listing, rule, verdict
from harness.checks.textparse import PasswdEntry, parse_shadow, usable_hash

HISTORY_NAMES = (".bash_history", ".sh_history", ".zsh_history", ".history")
KEY_FILES = ("authorized_keys", "authorized_keys2")
LOGIN_STUB = "Please login as the user"
AGENT_STATE_DIRS = ("/var/lib/waagent", "/var/lib/cloud")
AGENT_LOGS = ("/var/log/waagent.log", "/var/log/cloud-init.log", "/var/log/cloud-init-output.log", "/var/log/azure")
PERSISTENT_NET = "/etc/udev/rules.d/70-persistent-net.rules"
GENERIC_HOSTNAMES = ("", "localhost", "localhost.localdomain")
# Package caches of every family (paths that do not exist are simply empty) and entries that may stay.
CACHE_DIRS = ("/var/cache/apt/archives", "/var/lib/apt/lists", "/var/cache/dnf", "/var/cache/yum",
              "/var/cache/zypp/packages")
CACHE_KEEP = ("lock", "partial", "auxfiles")
TEMP_DIRS = ("/tmp", "/var/tmp")
SH_PATHS = ("/bin/sh",)
# Red Hat entitlement and consumer certificates, SUSE Customer Center credentials (what `subscription-manager
# clean` and `SUSEConnect --cleanup` remove).
REGISTRATION_DIRS = ("/etc/pki/entitlement", "/etc/pki/consumer")
SCC_CREDENTIALS = ("/etc/zypp/credentials.d/SCCcredentials", "/etc/SUSEConnect")


@rule("D1 no usable password hashes")
def password_hashes(img: Image) -> list[Record]:
    return [evaluate_passwords(img.text("/etc/shadow") or "", img.passwd)]


def evaluate_passwords(shadow: str, passwd: list[PasswdEntry]) -> Record:
    """No account someone could log in to with a password baked into the image."""
    entries = parse_shadow(shadow) + [(u.name, u.password) for u in passwd]
    hashed = sorted({user for user, field in entries if usable_hash(field)})
    empty = sorted({user for user, field in parse_shadow(shadow) if field == ""})
    problems = []
    if hashed:
        problems.append((FAILED, f"{listing(hashed)} have a usable password hash: lock them "
                                 "(passwd -l, or '*' in /etc/shadow); never ship credentials"))
    if empty:
        problems.append((WARNING, f"{listing(empty)} have an empty password field: lock them with '*'"))
    actual = f"usable hashes: {listing(hashed)}; empty: {listing(empty)}"
    return verdict("D1 no usable password hashes", problems, actual, "every account locked (*, !, !!, x)")


@rule("D1 no SSH keys in homes")
def home_keys(img: Image) -> list[Record]:
    found: dict[str, str | None] = {}
    for home in img.homes:
        for name in img.root.listdir(f"{home}/.ssh") or []:
            path = f"{home}/.ssh/{name}"
            found[path] = img.text(path) if name in KEY_FILES else None
    return [evaluate_home_keys(found)]


def _stub_only(text: str) -> bool:
    """cloud-init's disable_root stub ('Please login as the user ...' then exit) grants no login."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return all(LOGIN_STUB in line for line in lines)


def evaluate_home_keys(files: dict[str, str | None]) -> Record:
    """files: every entry of every home's .ssh folder -> text for authorized_keys files, None for others."""
    keys = [p for p, text in files.items() if posixpath.basename(p) in KEY_FILES and not _stub_only(text or "")]
    private = [p for p in files if re.fullmatch(r"id_\w+", posixpath.basename(p))]
    root_other = [p for p in files if p.startswith("/root/.ssh/") and p not in keys + private
                  and not (posixpath.basename(p) in KEY_FILES and _stub_only(files[p] or ""))]
    problems = []
    if keys:
        problems.append((FAILED, f"{listing(keys)} hold SSH keys: anyone with the private key logs in to every VM; "
                                 "delete them"))
    if private:
        problems.append((FAILED, f"{listing(private)} are private keys baked into the image: delete them"))
    if root_other:
        problems.append((FAILED, f"{listing(root_other)}: root's .ssh folder must be empty or absent"))
    return verdict("D1 no SSH keys in homes", problems, listing([*keys, *private, *root_other]),
                   "no authorized_keys (except the login stub), no private keys")


@rule("D2 no SSH host keys")
def host_keys(img: Image) -> list[Record]:
    keys = [f"/etc/ssh/{n}" for n in img.root.listdir("/etc/ssh") or [] if n.startswith("ssh_host_") and "key" in n]
    problems = [(FAILED, f"{listing(keys)}: every VM from this image would share host keys (MITM, known_hosts "
                         "clashes); delete /etc/ssh/ssh_host_*")] if keys else []
    return [verdict("D2 no SSH host keys", problems, listing(keys), "no /etc/ssh/ssh_host_*key*")]


@rule("D3 machine-id not baked in")
def machine_id(img: Image) -> list[Record]:
    dbus = img.root.lstat("/var/lib/dbus/machine-id")
    dbus_text = img.text("/var/lib/dbus/machine-id") if dbus is not None and dbus.kind == "file" else None
    policy = img.family.machine_id if img.family else "empty"
    return [evaluate_machine_id(img.text("/etc/machine-id"), dbus_text, policy)]


def evaluate_machine_id(etc: str | None, dbus: str | None, policy: str) -> Record:
    """/etc/machine-id empty or 'uninitialized'; /var/lib/dbus/machine-id a link or absent."""
    problems = []
    value = (etc or "").strip()
    if etc is None:
        problems.append((WARNING, "/etc/machine-id is missing: systemd creates it, but a read-only first boot "
                                  f"fails; write it {policy}"))
    elif value not in ("", "uninitialized"):
        problems.append((FAILED, f"/etc/machine-id holds {value}: every VM would share one id; empty it "
                                 "(or write 'uninitialized')"))
    if dbus is not None and dbus.strip():
        problems.append((FAILED, "/var/lib/dbus/machine-id holds an id: delete it (or link it to /etc/machine-id)"))
    actual = f"/etc/machine-id {'missing' if etc is None else repr(value)}; family policy {policy}"
    return verdict("D3 machine-id not baked in", problems, actual, "empty or 'uninitialized'")


@rule("D4 shell histories empty")
def histories(img: Image) -> list[Record]:
    sizes = {}
    for home in img.homes:
        for name in HISTORY_NAMES:
            info = img.root.stat(f"{home}/{name}")
            if info is not None:
                sizes[f"{home}/{name}"] = info.size
    return [evaluate_histories(sizes)]


def evaluate_histories(sizes: dict[str, int]) -> Record:
    full = {p: s for p, s in sizes.items() if s > 0}
    problems = [(FAILED, f"{p} is not empty, containing {s} bytes: delete it") for p, s in full.items()]
    actual = listing(f"{p} ({s} bytes)" for p, s in full.items()) if full else "No file Exist" if not sizes else \
        "empty files only"
    return verdict("D4 shell histories empty", problems, actual, "absent or empty (self-test: <= 1024 bytes)")


@rule("D5 no agent state")
def agent_state(img: Image) -> list[Record]:
    state = [p for d in AGENT_STATE_DIRS for p, info in img.root.walk(d) if info.kind != "dir"
             or posixpath.basename(p) in ("instance", "instances", "data", "seed")]
    logs = [p for p in AGENT_LOGS if img.root.exists(p)]
    return [evaluate_agent_state(state, logs)]


def evaluate_agent_state(state: list[str], logs: list[str]) -> Record:
    problems = []
    if state:
        problems.append((FAILED, f"{listing(state)}: a previous instance's provisioning state; the agent would skip "
                                 "provisioning; run 'cloud-init clean' / 'waagent -deprovision' or delete it"))
    if logs:
        problems.append((FAILED, f"{listing(logs)}: agent logs of a previous boot; delete them"))
    return verdict("D5 no agent state", problems, listing([*state, *logs]),
                   "nothing in /var/lib/waagent, /var/lib/cloud instance data, no agent logs")


@rule("D6 no network identity")
def network_identity(img: Image) -> list[Record]:
    dirs = img.family.dhcp_lease_dirs if img.family else ()
    leases = [p for d in dirs for p, info in img.root.walk(d)
              if info.kind == "file" and "lease" in posixpath.basename(p)]
    resolv = img.root.lstat("/etc/resolv.conf")
    resolv_text = img.text("/etc/resolv.conf") if resolv is not None and resolv.kind == "file" else None
    hostname = (img.text("/etc/hostname") or "").strip()
    return [evaluate_network_identity(leases, img.root.exists(PERSISTENT_NET), resolv_text, hostname)]


def evaluate_network_identity(leases: list[str], persistent_net: bool, resolv: str | None, hostname: str) -> Record:
    problems = []
    if leases:
        problems.append((FAILED, f"{listing(leases)}: DHCP leases of the build or a previous boot; delete them"))
    if persistent_net:
        problems.append((FAILED, f"{PERSISTENT_NET} pins MAC addresses: delete it"))
    servers = re.findall(r"^\s*nameserver\s+(\S+)", resolv or "", re.M)
    if servers:
        problems.append((WARNING, f"/etc/resolv.conf names {listing(servers)} (the build host's resolver): delete "
                                  "it or link it to the resolver's stub"))
    if hostname not in GENERIC_HOSTNAMES:
        problems.append((WARNING, f"host name {hostname!r} is not generic: write localhost"))
    actual = f"leases: {listing(leases)}; resolv.conf nameservers: {listing(servers)}; hostname {hostname or 'empty'}"
    return verdict("D6 no network identity", problems, actual, "no leases or persistent-net rules; generic host name")


@rule("D7 no build logs or caches")
def build_leftovers(img: Image) -> list[Record]:
    logs = [p for p, info in img.root.walk("/var/log") if info.kind == "file" and info.size > 0]
    caches = [f"{d}/{n}" for d in CACHE_DIRS for n in img.root.listdir(d) or [] if n not in CACHE_KEEP]
    temps = [f"{d}/{n}" for d in TEMP_DIRS for n in img.root.listdir(d) or []]
    return [evaluate_leftovers(logs, caches, temps)]


def evaluate_leftovers(logs: list[str], caches: list[str], temps: list[str]) -> Record:
    problems = []
    if logs:
        problems.append((WARNING, f"{listing(logs)}: logs written during the build; truncate them"))
    if caches:
        problems.append((WARNING, f"{listing(caches)}: package caches; clean them (apt-get clean, dnf clean all)"))
    if temps:
        problems.append((WARNING, f"{listing(temps)}: leftovers in temporary folders; delete them"))
    return verdict("D7 no build logs or caches", problems, f"{len(logs)} logs, {len(caches)} cache entries, "
                   f"{len(temps)} temporary files", "empty logs, caches and temporary folders")


@rule("D8 integrity")
def integrity(img: Image) -> list[Record]:
    sshd = next((p for p in ("/etc/ssh/sshd_config", "/usr/etc/ssh/sshd_config") if img.root.exists(p)),
                "/etc/ssh/sshd_config")
    modes = {p: (info.mode if (info := img.root.stat(p)) is not None and info.kind == "file" else None)
             for p in ("/etc/passwd", "/etc/shadow", sshd, *SH_PATHS)}
    return [evaluate_integrity(modes, sshd)]


def evaluate_integrity(modes: dict[str, int | None], sshd: str) -> Record:
    """Files exist; shadow has no 'other' bits; sshd_config at most 0644 (LISA verify_vm_not_compromised)."""
    problems = [(FAILED, f"{p} is missing") for p, mode in modes.items() if mode is None]
    shadow = modes.get("/etc/shadow")
    if shadow is not None and shadow & 0o007:
        problems.append((FAILED, f"/etc/shadow is {shadow:04o}: others can read it; chmod 0640"))
    config = modes.get(sshd)
    if config is not None and config & ~0o644 & 0o777:
        problems.append((FAILED, f"{sshd} is {config:04o}: at most 0644 (never group/world-writable)"))
    actual = listing(f"{p} {'missing' if m is None else format(m, '04o')}" for p, m in modes.items())
    return verdict("D8 integrity", problems, actual, "passwd, shadow (no other bits), sshd_config (<= 0644), /bin/sh")


@rule("D10 no subscription registration")
def registration(img: Image) -> list[Record]:
    certificates = [f"{d}/{n}" for d in REGISTRATION_DIRS for n in img.root.listdir(d) or [] if n.endswith(".pem")]
    credentials = [p for p in SCC_CREDENTIALS if img.root.exists(p)]
    return [evaluate_registration(sorted(certificates), credentials)]


def evaluate_registration(certificates: list[str], credentials: list[str]) -> Record:
    """No Red Hat entitlement or consumer certificate, no SUSE Customer Center credentials."""
    problems = []
    if certificates:
        problems.append((FAILED, f"{listing(certificates)}: the build's Red Hat registration ships to every VM; run "
                                 "'subscription-manager unregister' and 'subscription-manager clean' before sealing"))
    if credentials:
        problems.append((FAILED, f"{listing(credentials)}: the build's SUSE registration ships to every VM; run "
                                 "'SUSEConnect --cleanup' (or delete them) before sealing"))
    return verdict("D10 no subscription registration", problems, listing([*certificates, *credentials]),
                   "no /etc/pki/entitlement or /etc/pki/consumer certificates, no SCC credentials")


RULES = (password_hashes, home_keys, host_keys, machine_id, histories, agent_state, network_identity,
         build_leftovers, integrity, registration)
PREFETCH_STATS = ("/var/lib/dbus/machine-id", *SH_PATHS, "/usr/bin/dash", "/usr/bin/bash", *SCC_CREDENTIALS)
PREFETCH_LISTS = (*CACHE_DIRS, *REGISTRATION_DIRS)
