"""Guest configuration rules (image-checks A12-A16, E3, E5): udev and network hygiene, sudoers, sshd's
ClientAliveInterval, software minimums, DHCP client timeout, time synchronisation.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable

from harness.checks.image import Image
from harness.checks.rulebase import FAILED, WARNING, Record, listing, record, rule, skipped, verdict
from harness.checks.textparse import (
    dhclient_timeout,
    glob_names,
    kv_values,
    sshd_effective,
    sshd_seconds,
    upstream_version,
)

UDEV_DIRS = ("/etc/udev/rules.d", "/lib/udev/rules.d", "/usr/lib/udev/rules.d", "/usr/lib64/udev/rules.d")
PERSISTENT_NET = ("70-persistent-net.rules", "75-persistent-net-generator.rules")
AZURE_RULES = ("66-azure-storage.rules", "99-azure-product-uuid.rules")
SRIOV_RULES = ("68-azure-sriov-nm-unmanaged.rules", "10-azure-unmanaged-sriov.rules")
NM_CONF = "/etc/NetworkManager/NetworkManager.conf"
NM_CONF_D = "/etc/NetworkManager/conf.d"
DHCLIENT_CONF = "/etc/dhcp/dhclient.conf"
DHCLIENT_BINARIES = ("/sbin/dhclient", "/usr/sbin/dhclient")
SLES_DHCP = "/etc/sysconfig/network/dhcp"
SUDOERS = "/etc/sudoers"
# Defaults targetpw   # ask for the password of the target user i.e. root   ('Defaults !targetpw' turns it off)
TARGETPW_LINE = re.compile(r"^\s*Defaults\b[^#]*(?<![!\w-])targetpw\b")
# ALL   ALL=(ALL) ALL   # WARNING! Only use this together with 'Defaults targetpw'!
EVERYONE_LINE = re.compile(r"^\s*ALL\s+ALL\s*=\s*\(\s*ALL\s*(?::\s*ALL\s*)?\)\s*ALL\b")
SSHD_MAIN = ("/etc/ssh/sshd_config", "/usr/etc/ssh/sshd_config")
TIME_CONFIGS = ("/etc/chrony/chrony.conf", "/etc/chrony.conf", "/etc/ntp.conf", "/etc/ntpsec/ntp.conf",
                "/etc/systemd/timesyncd.conf")
CLIENT_ALIVE_MAX_S = 235
CLIENT_ALIVE_RECOMMENDED_S = 180
DHCP_TIMEOUT_MIN_S = 300
NM_DHCP_TIMEOUT_DEFAULT_S = 45  # NetworkManager's ipv4.dhcp-timeout when nothing sets it
NM_DHCP_DROP_IN = "/etc/NetworkManager/conf.d/90-azure-dhcp-timeout.conf"
# Package names per component, across families (data, looked up in one place).
WAAGENT_PACKAGES = ("waagent", "walinuxagent", "WALinuxAgent", "python3-azure-agent", "python-azure-agent")
PYTHON_PACKAGES = ("python3", "python3-minimal", "python3.12", "python3.11", "python311", "python39")
OPENSSL_PACKAGES = ("openssl", "libssl3", "libssl3t64", "openssl-libs", "libopenssl3", "libssl1.1")
MIN_WAAGENT = (2, 2, 53, 1)
MIN_PYTHON = (3, 10)
OPENSSL_OK = ((3,), (1, 1, 1), (1, 0, 2))
MIN_OMI = (1, 6, 8, 1)
ARCHITECTURES = ("x86_64", "aarch64")


def rules_found(img: Image, names: tuple[str, ...]) -> list[str]:
    return [f"{d}/{n}" for d in UDEV_DIRS for n in img.root.listdir(d) or [] if n in names]


@rule("A12 persistent-net rules")
def persistent_net(img: Image) -> list[Record]:
    found = rules_found(img, PERSISTENT_NET)
    problems = [(FAILED, f"{listing(found)} pin a MAC address to eth0 and break clones: delete them")] if found else []
    azure = {posixpath.basename(p) for p in rules_found(img, AZURE_RULES)}
    missing = [n for n in AZURE_RULES if n not in azure]
    azure_problems = [(WARNING, f"{listing(missing)} missing: /dev/disk/azure links are not created (they come with "
                                "WALinuxAgent or azure-vm-utils)")] if missing else []
    return [verdict("A12 persistent-net rules", problems, listing(found), "absent"),
            verdict("A12 Azure udev rules", azure_problems, listing(sorted(azure)), listing(AZURE_RULES))]


def network_manager(img: Image) -> bool:
    return img.root.exists(NM_CONF) or any(p in img.packages for p in ("network-manager", "NetworkManager"))


@rule("A13 SR-IOV VF unmanaged")
def sriov_unmanaged(img: Image) -> list[Record]:
    if not network_manager(img):
        return [skipped("A13 SR-IOV VF unmanaged", "NetworkManager is not installed: nothing would manage the VF")]
    found = rules_found(img, SRIOV_RULES)
    problems = [] if found else [(WARNING, "NetworkManager would configure the accelerated-networking VF: add "
                                           "68-azure-sriov-nm-unmanaged.rules (WALinuxAgent) or azure-vm-utils")]
    return [verdict("A13 SR-IOV VF unmanaged", problems, listing(found), listing(SRIOV_RULES))]


@rule("A14 distribution configuration")
def distro_config(img: Image) -> list[Record]:
    sudoers = [SUDOERS] + [f"/etc/sudoers.d/{n}" for n in sorted(img.root.listdir("/etc/sudoers.d") or [])]
    records = [evaluate_sudoers({p: img.text(p) or "" for p in sudoers})]
    dhcp = img.text(SLES_DHCP)
    if dhcp is not None:
        value = kv_values(dhcp).get("DHCLIENT_SET_HOSTNAME", "unset")
        problems = [] if value == "no" else [(WARNING, "DHCP would overwrite the host name Azure sets: "
                                                       f'set DHCLIENT_SET_HOSTNAME="no" in {SLES_DHCP}')]
        records.append(verdict("A14 DHCP does not set the host name", problems, f"DHCLIENT_SET_HOSTNAME={value}",
                               "no"))
    return records


def evaluate_sudoers(texts: dict[str, str]) -> Record:
    """targetpw alone is a WARN; with an active 'ALL ALL=(ALL) ALL' every user may run anything as root by
    typing the target's password (SUSE's default), which Azure's SUSE guide requires removing: FAIL."""
    targetpw = [p for p, text in texts.items() if _active(text, TARGETPW_LINE)]
    everyone = [p for p, text in texts.items() if _active(text, EVERYONE_LINE)]
    problems = []
    if targetpw and everyone:
        where = listing(dict.fromkeys(targetpw + everyone))
        problems.append((FAILED, f"'Defaults targetpw' and 'ALL ALL=(ALL) ALL' in {where} let any user run anything "
                                 f"as root with root's password: comment both out in {SUDOERS}"))
    elif targetpw:
        problems.append((WARNING, f"Defaults targetpw active in {listing(targetpw)}: sudo asks for root's password, "
                                  "which Azure users do not have"))
    actual = f"targetpw: {listing(targetpw)}; ALL ALL=(ALL) ALL: {listing(everyone)}"
    return verdict("A14 sudoers targetpw", problems, actual, "no active Defaults targetpw (nor ALL ALL=(ALL) ALL)")


def _active(text: str, pattern: re.Pattern[str]) -> bool:
    return any(pattern.match(line) for line in text.splitlines())


@rule("A15 ClientAliveInterval")
def client_alive(img: Image) -> list[Record]:
    main = next((p for p in SSHD_MAIN if img.root.exists(p)), SSHD_MAIN[0])

    def expand(pattern: str) -> list[str]:
        folder = posixpath.dirname(pattern)
        return [posixpath.join(folder, n) for n in glob_names(pattern, img.root.listdir(folder) or [])]

    found = sshd_effective("ClientAliveInterval", img.text, expand, main)
    return [evaluate_client_alive(found.value, found.source)]


def evaluate_client_alive(value: str | None, source: str | None) -> Record:
    """1..235 s or Azure drops idle sessions badly (FAIL); anything but 180 is a WARN."""
    check, required = "A15 ClientAliveInterval", f"1..{CLIENT_ALIVE_MAX_S} (recommended {CLIENT_ALIVE_RECOMMENDED_S})"
    seconds = sshd_seconds(value) if value is not None else 0
    actual = f"{value} (first match, {source})" if value is not None else "not set (sshd default 0)"
    if seconds is None or not 1 <= seconds <= CLIENT_ALIVE_MAX_S:
        where = source or "/etc/ssh/sshd_config.d/50-azure.conf"
        return record(check, FAILED, actual, required, f"set ClientAliveInterval {CLIENT_ALIVE_RECOMMENDED_S} in "
                                                       f"{where} (sshd uses the first value it reads)")
    problems = [] if seconds == CLIENT_ALIVE_RECOMMENDED_S else [
        (WARNING, f"{seconds} s works; {CLIENT_ALIVE_RECOMMENDED_S} is the recommended value")]
    return verdict(check, problems, actual, required)


@rule("A16 software minimums")
def software(img: Image) -> list[Record]:
    conf = img.text("/etc/waagent.conf")
    auto_update = kv_values(conf).get("AutoUpdate.Enabled", "y") if conf is not None else "n"
    return evaluate_software(img.packages, img.arch, img.agent, auto_update)


def _installed(packages: dict[str, tuple[str, str]], names: tuple[str, ...]) -> tuple[str, str] | None:
    """(package, version) of the first of names that is installed."""
    for name in names:
        if name in packages:
            return name, packages[name][0]
    return None


def evaluate_software(packages: dict[str, tuple[str, str]], arch: str, agent: str, auto_update: str) -> list[Record]:
    records = [verdict("A16 architecture", [] if arch in ARCHITECTURES else [
        (FAILED, f"{arch} images are not accepted by Azure")], arch, listing(ARCHITECTURES))]
    agent_pkg = _installed(packages, WAAGENT_PACKAGES)
    if agent_pkg is None:
        problems = [(FAILED, "the Azure Linux Agent provisions this image but is not installed")] \
            if agent == "waagent" else []
        records.append(verdict("A16 waagent version", problems, "not installed", "2.2.53.1 or newer, or auto-update"))
    else:
        old = upstream_version(agent_pkg[1]) < MIN_WAAGENT and auto_update.lower() != "y"
        records.append(verdict("A16 waagent version", [(FAILED, "update WALinuxAgent or set AutoUpdate.Enabled=y")]
                               if old else [], f"{agent_pkg[0]} {agent_pkg[1]} (AutoUpdate.Enabled={auto_update})",
                               "2.2.53.1 or newer, or auto-update"))
    records.append(_version_rule("A16 python version", _installed(packages, PYTHON_PACKAGES),
                                 lambda v: v[:2] >= MIN_PYTHON, "3.10 or newer"))
    records.append(_version_rule("A16 openssl version", _installed(packages, OPENSSL_PACKAGES),
                                 lambda v: any(v[:len(ok)] == ok for ok in OPENSSL_OK) or v >= (3,),
                                 "3.0 or newer (1.1.1/1.0.2 with extended support)"))
    omi = _installed(packages, ("omi",))
    if omi is not None:
        records.append(_version_rule("A16 omi version", omi, lambda v: v >= MIN_OMI, "1.6.8.1 or newer (OMIGOD)"))
    return records


def _version_rule(check: str, found: tuple[str, str] | None, ok: Callable[[tuple[int, ...]], bool],
                  required: str) -> Record:
    if found is None:
        return verdict(check, [(WARNING, "not installed or not found under a known package name")], "not found",
                       required)
    version = upstream_version(found[1])
    return verdict(check, [] if ok(version) else [(WARNING, f"{found[1]} is older than {required}: update it")],
                   f"{found[0]} {found[1]}", required)


@rule("E3 DHCP client timeout")
def dhcp_timeout(img: Image) -> list[Record]:
    dhclient = img.text(DHCLIENT_CONF)
    uses_dhclient = dhclient is not None or any(img.root.exists(p) for p in DHCLIENT_BINARIES)
    nm_values = _nm_dhcp_timeouts(img) if network_manager(img) else None
    if not uses_dhclient and nm_values is None:
        return [skipped("E3 DHCP client timeout", "neither dhclient nor NetworkManager is the DHCP client")]
    return [evaluate_dhcp_timeout(dhclient_timeout(dhclient or "") if uses_dhclient else None, uses_dhclient,
                                  nm_values)]


def _nm_dhcp_timeouts(img: Image) -> list[int]:
    # NetworkManager reads NetworkManager.conf, then conf.d/*.conf in name order: the last value wins.
    names = sorted(n for n in img.root.listdir(NM_CONF_D) or [] if n.endswith(".conf"))
    files = [NM_CONF] + [f"{NM_CONF_D}/{n}" for n in names]
    texts = img.root.texts(files)
    return nm_dhcp_timeouts(texts.get(p) for p in files)


def nm_dhcp_timeouts(texts: Iterable[str | None]) -> list[int]:
    """Every ipv4.dhcp-timeout value in NetworkManager configuration texts, in reading order."""
    values = []
    for text in texts:
        # ipv4.dhcp-timeout=300
        values += [int(v) for v in re.findall(r"^\s*ipv4\.dhcp-timeout\s*=\s*(\d+)", text or "", re.M)]
    return values


def evaluate_dhcp_timeout(dhclient: int | None, uses_dhclient: bool, nm_values: list[int] | None) -> Record:
    """dhclient and NetworkManager wait at least 300 s for a lease (unset: dhclient 60 s, NetworkManager 45 s)."""
    check, required = "E3 DHCP client timeout", f">= {DHCP_TIMEOUT_MIN_S} s"
    problems, actual = [], []
    if uses_dhclient:
        effective = dhclient if dhclient is not None else 60  # dhclient's built-in default
        actual.append(f"dhclient timeout {effective}" + ("" if dhclient is not None else " (default)"))
        if effective < DHCP_TIMEOUT_MIN_S:
            problems.append((FAILED, f"dhclient gives up after {effective} s: add 'timeout 300;' to {DHCLIENT_CONF}"))
    if nm_values is not None:
        nm_effective = nm_values[-1] if nm_values else NM_DHCP_TIMEOUT_DEFAULT_S
        actual.append(f"NetworkManager ipv4.dhcp-timeout {nm_effective}" + ("" if nm_values else " (default)"))
        if nm_effective < DHCP_TIMEOUT_MIN_S:
            problems.append((FAILED, f"NetworkManager gives up after {nm_effective} s: write '[connection]' and "
                                     f"'ipv4.dhcp-timeout=300' to {NM_DHCP_DROP_IN}"))
    return verdict(check, problems, "; ".join(actual), required)


@rule("E5 time synchronisation")
def time_sync(img: Image) -> list[Record]:
    found = [p for p in TIME_CONFIGS if img.root.exists(p)]
    problems = [] if found else [(WARNING, "no chrony, ntp or timesyncd configuration: install chrony")]
    return [verdict("E5 time synchronisation", problems, listing(found), "chrony, ntp or timesyncd configured")]


RULES = (persistent_net, sriov_unmanaged, distro_config, client_alive, software, dhcp_timeout, time_sync)
PREFETCH_STATS = (*DHCLIENT_BINARIES, *TIME_CONFIGS, NM_CONF, SLES_DHCP, *SSHD_MAIN)
PREFETCH_LISTS = (*UDEV_DIRS, NM_CONF_D)
