"""In-guest checks after provisioning, run as one batch: one script, one SSH round trip, structured output.

Every check names the probes (shell commands) it reads; the batch runs each probe once, in order, and
returns its exit code, output and in-guest duration. A check is then a small named function over those
results returning one Record; a probe that failed is a failed check with its command, exit code and output,
never silently ok. The guest's own logs (journal, cloud-init, waagent, systemd-analyze) are probes too and
go to the evidence folder. Names follow image-checks.md (B*, C*, E*).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.enums import Agent, Platform
from harness.errors import VerifyError
from harness.manifest import Manifest
from harness.platform.config import MARKER_PATH, PlatformConfig
from harness.results import FAILED, PASSED, SKIPPED, WARNING, Record
from harness.verify.batch import Probe, ProbeResult, batch_script, parse_batch
from harness.vm.ssh import CommandResult, Guest

BATCH_TIMEOUT_S = 600.0


# Probes in the order they run (the admin user's part, then the root part in one sudo). The waits come
# first: the boot must have finished before systemd-analyze (started in the background) and the failed-units
# check, and several checks look at what cloud-init configures after Ready (sshd, custom data, growpart).
PROBES: dict[str, Probe] = {
    "system_running": Probe("systemctl is-system-running --wait"),
    # cloud-init's last stage writes result.json (after status.json): wait for it in the shell, because `cloud-init
    # status --wait` spends 9.6 s under TCG here importing cloud-init even when it is long done. C1 reads
    # both files the way `cloud-init status` does.
    # The wait ends after 450 s, inside the batch's own timeout, so the other checks still report.
    "cloud_init_wait": Probe("[ -e /run/cloud-init/enabled ] || { echo 'cloud-init is not enabled in this boot "
                             "(no /run/cloud-init/enabled)'; exit 3; }; i=0; "
                             "while [ ! -e /run/cloud-init/result.json ] && [ $i -lt 1800 ]; do "
                             "sleep 0.25; i=$((i+1)); done; cat /run/cloud-init/result.json"),
    "hostname": Probe("hostname"),
    "passwd_admin": Probe('getent passwd "$HARNESS_ADMIN"'),
    "authorized_keys": Probe("cat ~/.ssh/authorized_keys && stat -c %a ~/.ssh/authorized_keys"),
    "uid0": Probe("awk -F: '$3 == 0 {print $1}' /etc/passwd"),
    "sudo": Probe("sudo -n true"),
    "sshd_password": Probe("sshd -T | grep -i '^passwordauthentication'", root=True),
    "custom_data_waagent": Probe("cat /var/lib/waagent/CustomData", root=True),
    "custom_data_marker": Probe(f"cat {MARKER_PATH}", root=True),
    "cloud_init_result": Probe("cat /run/cloud-init/status.json"),
    "waagent_provisioned": Probe("test -s /var/lib/waagent/provisioned && echo present", root=True),
    "waagent_active": Probe("systemctl is-active walinuxagent.service waagent.service 2>/dev/null | head -1"),
    "disable_agent": Probe("test -e /var/lib/waagent/disable_agent && echo disabled || echo enabled", root=True),
    "failed_units": Probe("systemctl --failed --no-legend --plain --no-pager"),
    "root_size": Probe('findmnt -bno SIZE / && lsblk -bdno SIZE "/dev/$(lsblk -no PKNAME "$(findmnt -no SOURCE /)")"'),
    "host_keys": Probe('for f in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf "$f"; done'),
    "machine_id": Probe("cat /etc/machine-id"),
    "cmdline": Probe("cat /proc/cmdline"),
    "firmware": Probe("test -d /sys/firmware/efi && echo uefi || echo bios"),
    "eth0": Probe("ip -o -4 addr show dev eth0"),
    "dns": Probe('getent hosts "$HARNESS_HOSTNAME"'),
    "sr0_mount": Probe("findmnt -no TARGET /dev/sr0 || true"),
}
# The guest's own account of the boot, kept next to the serial log (missing files are noted in the file).
GUEST_LOGS: dict[str, Probe] = {
    "journal.txt": Probe("journalctl -b --no-pager -o short-monotonic", root=True),
    "cloud-init.log": Probe("cat /var/log/cloud-init.log", root=True),
    "cloud-init-output.log": Probe("cat /var/log/cloud-init-output.log", root=True),
    "waagent.log": Probe("cat /var/log/waagent.log", root=True),
    # what the agent's Ready waited for: the unit chain to the unit that reports it, per agent and distro, in one
    # call (each call reads every unit's times from PID 1 first: 4.8 s under TCG here, for one unit or three).
    # The blame list is read from the plot on the host (`systemd-analyze blame` reads them all once more: 12.6 s).
    "systemd-analyze.txt": Probe("systemd-analyze time; units=; "
                                 "for unit in cloud-init-local walinuxagent waagent; do "
                                 "systemctl cat $unit.service >/dev/null 2>&1 && units=\"$units $unit.service\"; "
                                 "done; [ -z \"$units\" ] || systemd-analyze critical-chain $units; true",
                                 background=True),
    # the guest's own boot chart (SVG), embedded in report.html
    "systemd-analyze-plot.svg": Probe("systemd-analyze plot", background=True),
}
BLAME_LINES = 30
CRITICAL_CHAIN_HEADER = "The time when unit became active"
# A unit's label in systemd-analyze plot: "NAME (TIMESPAN)", TIMESPAN as systemd formats it ("1min 2.345s", "870ms").
_PLOT_LABEL = re.compile(r'<text class="(?:left|right)"[^>]*>([^<>\s]+) \(([0-9a-z. ]+)\)</text>')
_TIMESPAN_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(h|min|ms|us|s)")
_UNIT_S = {"h": 3600.0, "min": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}


def blame_from_plot(svg: str, limit: int = BLAME_LINES) -> str:
    """`systemd-analyze blame` (the units that took longest to start) from the labels of its plot."""
    units = []
    for name, span in _PLOT_LABEL.findall(svg):
        parts = _TIMESPAN_PART.findall(span)
        if parts and "".join(n + u for n, u in parts) == span.replace(" ", ""):
            units.append((sum(float(n) * _UNIT_S[u] for n, u in parts), name))
    units.sort(key=lambda item: (-item[0], item[1]))
    return "".join(f"{seconds:10.3f}s {name}\n" for seconds, name in units[:limit])

@dataclass
class GuestContext:
    guest: Guest
    config: PlatformConfig
    firmware: str
    platform: str
    agent: str
    manifest: Manifest
    allowed_failed_units: tuple[str, ...]
    kernel_cmdline: tuple[str, ...]
    serial_log: str
    overlay_size_bytes: int
    host_key_fingerprint: str
    image_host_keys: list[str]
    ready_request: dict[str, Any] | None = None
    guest_ip: str = ""
    accel: str = ""
    security_type: str = "standard"
    disk_controller: str = "scsi"
    out: dict[str, ProbeResult] = field(default_factory=dict)
    probes: dict[str, Probe] = field(default_factory=dict)  # what the batch ran (PROBES + the configuration's)
    password_accepted: bool | None = None

    def probe(self, key: str) -> CommandResult:
        """The result of one probe of the batch (a probe the batch never reported is a failure, not a pass)."""
        found = self.out.get(key)
        if found is None:
            probe = self.probes.get(key) or PROBES[key]
            why = "the batch's root part (sudo -n) did not run" if probe.root else "the batch stopped before it"
            return CommandResult(probe.shell(), -1, "", f"no result for this probe: {why}")
        return found.result


@dataclass(frozen=True)
class GuestCheck:
    name: str
    probes: tuple[str, ...]
    evaluate: Callable[[GuestContext], Record]


def check_record(name: str, ok: bool | None, actual: object, required: object, message: str = "", *,
            warn: bool = False) -> Record:
    if ok is None:
        result = SKIPPED
    elif ok:
        result = PASSED
    else:
        result = WARNING if warn else FAILED
    return Record(stage="verify", check=name, result=result, actual=str(actual)[:500], required=str(required),
                  message=message)


def failed_command(name: str, result: CommandResult, required: str) -> Record:
    return check_record(name, False, f"exit {result.exit_code}", required, result.describe())


# -- provisioning (C*) -------------------------------------------------------------------------

def hostname(ctx: GuestContext) -> Record:
    name = "C5 host name applied"
    result = ctx.probe("hostname")
    if result.exit_code != 0:
        return failed_command(name, result, ctx.config.hostname)
    actual = result.stdout.strip()
    return check_record(name, actual == ctx.config.hostname, actual, ctx.config.hostname,
                   "" if actual == ctx.config.hostname else "the agent did not apply the OVF HostName")


def admin_user(ctx: GuestContext) -> Record:
    name = "C6 admin user created"
    user = ctx.config.admin_username
    result = ctx.probe("passwd_admin")
    if result.exit_code != 0:
        return failed_command(name, result, f"user {user}")
    fields = result.stdout.strip().split(":")
    ok = len(fields) == 7 and fields[5] == f"/home/{user}" and fields[6].endswith("sh")
    return check_record(name, ok, result.stdout.strip(), f"{user} with /home/{user} and a shell")


def authorized_keys(ctx: GuestContext) -> Record:
    """Exactly the injected key, not writable by others (sshd StrictModes); readable by others is a
    Warning: LISA's sanity suite wants <= 0600, and waagent 2.7 writes 0644."""
    name = "C6 exactly the injected SSH key"
    result = ctx.probe("authorized_keys")
    if result.exit_code != 0:
        return failed_command(name, result, "authorized_keys with the injected key")
    lines = [ln for ln in result.stdout.splitlines() if ln.strip()]
    mode = int(lines.pop() if lines else "777", 8)
    keys = [" ".join(ln.split()[:2]) for ln in lines if not ln.startswith("#")]
    wanted = " ".join(ctx.config.ssh_public_key.split()[:2])
    actual = f"{len(keys)} key(s), mode {mode:o}"
    required = "1 key (the injected one), mode <= 0600"
    if keys != [wanted] or mode & 0o022:
        return check_record(name, False, actual, required,
                            f"keys found: {keys}; group/world-writable: {bool(mode & 0o022)}")
    if mode & 0o077:
        return check_record(name, False, actual, required, "readable by others (LISA sanity wants <= 0600)", warn=True)
    return check_record(name, True, actual, required)


def no_other_root(ctx: GuestContext) -> Record:
    result = ctx.probe("uid0")
    users = result.stdout.split()
    return check_record("C6 no UID 0 account but root", result.exit_code == 0 and users == ["root"], users, ["root"])


def sudo_works(ctx: GuestContext) -> Record:
    result = ctx.probe("sudo")
    return check_record("C6 admin user can sudo", result.exit_code == 0, f"exit {result.exit_code}", "exit 0",
                   "" if result.exit_code == 0 else result.describe())


def password_login_disabled(ctx: GuestContext) -> Record:
    name = "C7 password login disabled"
    result = ctx.probe("sshd_password")
    if result.exit_code != 0:
        return failed_command(name, result, "passwordauthentication no")
    setting = result.stdout.strip().lower()
    accepted = ctx.password_accepted
    ok = setting == "passwordauthentication no" and accepted is False
    attempt = {True: "accepted", False: "rejected", None: "not made"}[accepted]
    return check_record(name, ok, f"{setting}; password attempt {attempt}",
                   "passwordauthentication no; password attempt rejected")


def custom_data(ctx: GuestContext) -> Record:
    """cloud-init runs custom data (our marker cloud-config); waagent only stores it, base64."""
    name = "C8 custom data delivered"
    if ctx.agent == Agent.WAAGENT:
        result = ctx.probe("custom_data_waagent")
        if result.exit_code != 0:
            return failed_command(name, result, "/var/lib/waagent/CustomData")
        try:
            decoded = base64.b64decode(result.stdout.strip()).decode(errors="replace")
        except ValueError:
            decoded = result.stdout
        ok = ctx.config.marker in decoded
        return check_record(name, ok, "marker found in CustomData" if ok else decoded[:80],
                       f"marker {ctx.config.marker} in /var/lib/waagent/CustomData")
    result = ctx.probe("custom_data_marker")
    if result.exit_code != 0:
        return failed_command(name, result, f"{MARKER_PATH} written by the custom data")
    actual = result.stdout.strip()
    return check_record(name, actual == ctx.config.marker, actual, ctx.config.marker)


def cloud_init_status(ctx: GuestContext) -> Record:
    name = "C1 cloud-init finished without errors"
    if ctx.agent != Agent.CLOUD_INIT:
        return check_record(name, None, f"agent is {ctx.agent}", "cloud-init provisioning", "not applicable")
    required = "status: done (every stage that started finished, no errors or warnings)"
    result = ctx.probe("cloud_init_wait")
    if result.exit_code != 0:
        return failed_command(name, result, required)
    status = ctx.probe("cloud_init_result")
    actual = cloud_init_outcome(result.stdout, status.stdout if status.exit_code == 0 else "")
    return check_record(name, actual == "status: done", actual, required)


def cloud_init_outcome(result_json: str, status_json: str) -> str:
    """'status: done', or what is wrong, from /run/cloud-init/result.json and status.json, by the rules of
    `cloud-init status`: a stage started but not finished is running, any stage's errors (and, since 23.4, its
    recoverable errors, which make `cloud-init status` exit 2) are errors."""
    try:
        result = json.loads(result_json)["v1"]
        stages = json.loads(status_json)["v1"] if status_json else {}
    except (ValueError, KeyError, TypeError):
        return f"unreadable result.json or status.json: {(result_json or status_json)[:120]!r}"
    problems = [str(e) for e in result.get("errors") or []]
    running = [str(stages["stage"])] if stages.get("stage") else []
    for stage, info in stages.items():
        if not isinstance(info, dict):
            continue
        problems += [f"{stage}: {e}" for e in info.get("errors") or []]
        problems += [f"{stage}: {level}: {m}" for level, messages in (info.get("recoverable_errors") or {}).items()
                     for m in messages]
        if info.get("start") and not info.get("finished"):
            running.append(stage)
    if running:
        return f"status: running ({', '.join(running)})"
    return f"status: error: {'; '.join(problems)}"[:500] if problems else "status: done"


def datasource(ctx: GuestContext) -> Record:
    """cloud-init used the intended datasource, and on Azure the OVF from the provisioning CD (not an
    IMDS-only fallback, which silently drops custom data and the password policy)."""
    name = "C2 intended datasource used"
    if ctx.agent != Agent.CLOUD_INIT:
        return check_record(name, None, f"agent is {ctx.agent}", "cloud-init datasource", "not applicable")
    wanted = "DataSourceAzure [seed=/dev/sr0]" if ctx.platform == Platform.AZURE else "DataSourceNoCloud"
    result = ctx.probe("cloud_init_result")
    if result.exit_code != 0:
        return failed_command(name, result, wanted)
    match = re.search(r'"datasource":\s*"([^"]*)"', result.stdout)
    actual = match.group(1) if match else "none"
    return check_record(name, actual.startswith(wanted), actual, wanted)


def agent_provisioned(ctx: GuestContext) -> Record:
    """waagent's own marker that provisioning finished for this instance."""
    name = "E1 agent provisioning marker"
    if ctx.platform != Platform.AZURE:
        return check_record(name, None, ctx.platform, "azure platform", "not applicable on NoCloud")
    result = ctx.probe("waagent_provisioned")
    ok = result.exit_code == 0
    required = "/var/lib/waagent/provisioned (waagent saw provisioning finish)"
    return check_record(name, ok, "present" if ok else "absent", required, "" if ok else result.describe(),
                   warn=ctx.agent == Agent.CLOUD_INIT)


def waagent_running(ctx: GuestContext) -> Record:
    name = "E1 Azure Linux Agent running"
    if ctx.platform != Platform.AZURE:
        return check_record(name, None, ctx.platform, "azure platform", "not applicable on NoCloud")
    states = ctx.probe("waagent_active").stdout.split()
    return check_record(name, "active" in states, states or "not installed", "active")


def guest_agent_setting(ctx: GuestContext) -> Record:
    """ProvisionGuestAgent from the OVF is honoured: false makes waagent disable extension handling."""
    name = "E1 ProvisionGuestAgent honoured"
    if ctx.platform != Platform.AZURE or ctx.agent != Agent.WAAGENT:
        return check_record(name, None, f"{ctx.agent} on {ctx.platform}", "waagent on azure", "not applicable")
    # waagent's marker is disable_agent (conf.get_disable_agent_file_path); its log names it on disabling.
    result = ctx.probe("disable_agent")
    actual = result.stdout.strip()
    wanted = "enabled" if ctx.config.provision_guest_agent else "disabled"
    return check_record(name, result.exit_code == 0 and actual == wanted, f"extension handling {actual}",
                   f"extension handling {wanted} (ProvisionGuestAgent={str(ctx.config.provision_guest_agent).lower()})")


def ready_from_guest(ctx: GuestContext) -> Record:
    name = "C3 Ready reported by the guest's agent"
    if ctx.platform != Platform.AZURE:
        return check_record(name, None, ctx.platform, "azure platform", "not applicable on NoCloud")
    request = ctx.ready_request
    if request is None:
        return check_record(name, False, "no accepted Ready report", "a Ready health report from the guest")
    client = str(request.get("client", ""))
    agent = {k.lower(): v for k, v in dict(request.get("headers", {})).items()}.get("x-ms-agent-name", "")
    ok = client.split(":", 1)[0] == ctx.guest_ip
    return check_record(name, ok, f"from {client} ({agent or 'no x-ms-agent-name'})", f"from the guest {ctx.guest_ip}")


# -- boot and system (B*, E*) ---------------------------------------------------------------

def failed_units(ctx: GuestContext) -> Record:
    name = "B5 no failed systemd units"
    result = ctx.probe("failed_units")
    if result.exit_code != 0:
        return failed_command(name, result, "no failed units")
    units = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    unexpected = [u for u in units if u not in ctx.allowed_failed_units]
    return check_record(name, not unexpected, units or "none", f"none (allowed: {list(ctx.allowed_failed_units)})",
                   f"failed: {', '.join(unexpected)}" if unexpected else "")


def root_grown(ctx: GuestContext) -> Record:
    name = "C12 root file system grown to the disk"
    result = ctx.probe("root_size")
    if result.exit_code != 0:
        return failed_command(name, result, "root file system spanning the disk")
    numbers = [int(x) for x in result.stdout.split() if x.isdigit()]
    if len(numbers) < 2:
        return check_record(name, False, result.stdout.strip(), "file system and disk sizes")
    fs_size, disk_size = numbers[0], numbers[1]
    # A file system that was not grown cannot be larger than the root partition the image shipped.
    root = ctx.manifest.disk.partition("root")
    shipped = root.size_bytes if root else 0
    ok = disk_size == ctx.overlay_size_bytes and fs_size > shipped
    return check_record(name, ok, f"file system {fs_size} B on a {disk_size} B disk",
                   f"disk {ctx.overlay_size_bytes} B and a file system larger than the shipped partition ({shipped} B)")


def host_keys_fresh(ctx: GuestContext) -> Record:
    name = "C10 SSH host keys generated on first boot"
    result = ctx.probe("host_keys")
    if result.exit_code != 0:
        return failed_command(name, result, "host keys present in the guest")
    fingerprints = [line.split()[1] for line in result.stdout.splitlines() if len(line.split()) > 1]
    ok = bool(fingerprints) and ctx.host_key_fingerprint in fingerprints and not ctx.image_host_keys
    return check_record(name, ok, f"{len(fingerprints)} keys in the guest, served {ctx.host_key_fingerprint}; "
                   f"image had {ctx.image_host_keys or 'none'}",
                   "keys present in the guest, the served one among them, none in the image")


def machine_id(ctx: GuestContext) -> Record:
    result = ctx.probe("machine_id")
    value = result.stdout.strip()
    ok = result.exit_code == 0 and bool(re.fullmatch(r"[0-9a-f]{32}", value)) and set(value) != {"0"}
    return check_record("C10 machine-id set", ok, value or f"exit {result.exit_code}", "32 hex digits, fresh")


def kernel_cmdline(ctx: GuestContext) -> Record:
    result = ctx.probe("cmdline")
    tokens = result.stdout.split()
    missing = [t for t in ctx.kernel_cmdline if t not in tokens]
    return check_record("A9 Azure kernel parameters present", result.exit_code == 0 and not missing,
                   result.stdout.strip(), " ".join(ctx.kernel_cmdline),
                   f"missing: {' '.join(missing)}" if missing else "")


def serial_console(ctx: GuestContext) -> Record:
    ok = bool(re.search(r"console \[ttyS0\] enabled", ctx.serial_log))
    return check_record("B1 serial console carries kernel output", ok,
                   "console [ttyS0] enabled" if ok else "no 'console [ttyS0] enabled' line",
                   "console [ttyS0] enabled in the serial log")


PANIC_RE = re.compile(r"(Kernel panic - not syncing:|BUG: |kernel NULL pointer|Call Trace:|soft lockup|"
                      r"hung_task|Oops:)")
# A CPU-stall report (RCU stall, soft lockup) says a vCPU did not run for ~20 s. Under TCG on a busy host
# that is the emulator starving the guest, not the image; its call trace belongs to the report.
STALL_RE = re.compile(r"rcu: INFO: \S+ (?:self-)?detected stalls?|watchdog: BUG: soft lockup")
STALL_TRACE_LINES = 80


def console_problems(serial_log: str) -> tuple[list[str], list[str]]:
    """(panic/oops/trace markers not explained by a stall report, the stall reports) in the serial log."""
    hard: set[str] = set()
    stalls: list[str] = []
    stall_until = -1
    for number, line in enumerate(serial_log.splitlines()):
        if STALL_RE.search(line):
            stalls.append(line.strip()[:160])
            stall_until = number + STALL_TRACE_LINES
            continue
        match = PANIC_RE.search(line)
        if match and not (match.group(1) == "Call Trace:" and number <= stall_until):
            hard.add(match.group(1))
    return sorted(hard), stalls


def console_clean(ctx: GuestContext) -> Record:
    name = "B2 no panic, oops or call trace"
    hard, stalls = console_problems(ctx.serial_log)
    if hard or not stalls:
        return check_record(name, not hard, hard or "none", "none")
    starved = ctx.accel == "tcg"
    message = ("CPU stall under TCG: the emulator starved the vCPU on a busy host, not an image defect "
               "(confirm under KVM)") if starved else "CPU stall reported"
    return check_record(name, False, stalls[:3], "none", message, warn=starved)


def firmware_matches(ctx: GuestContext) -> Record:
    actual = ctx.probe("firmware").stdout.strip()
    return check_record("E12 booted by the expected firmware", actual == ctx.firmware, actual, ctx.firmware)


def network_eth0(ctx: GuestContext) -> Record:
    result = ctx.probe("eth0")
    ok = result.exit_code == 0 and f" {ctx.guest_ip}/" in result.stdout
    return check_record("C11 primary NIC eth0 configured by DHCP", ok, result.stdout.strip()[:200] or result.describe(),
                   f"eth0 with {ctx.guest_ip}")


def dns_resolves(ctx: GuestContext) -> Record:
    result = ctx.probe("dns")
    ok = result.exit_code == 0 and ctx.guest_ip in result.stdout.split()
    return check_record("C11 DNS resolves the VM's name", ok, result.stdout.strip() or f"exit {result.exit_code}",
                   f"{ctx.config.hostname} -> {ctx.guest_ip}", warn=True)


def media_ejected(ctx: GuestContext) -> Record:
    mounted = ctx.probe("sr0_mount").stdout.strip()
    return check_record("C9 provisioning media not mounted", not mounted, mounted or "not mounted", "not mounted",
                   warn=True)


CHECKS: tuple[GuestCheck, ...] = (
    GuestCheck("C1", ("cloud_init_wait", "cloud_init_result"), cloud_init_status),
    GuestCheck("C3", (), ready_from_guest),
    GuestCheck("C5", ("hostname",), hostname),
    GuestCheck("C6 user", ("passwd_admin",), admin_user),
    GuestCheck("C6 keys", ("authorized_keys",), authorized_keys),
    GuestCheck("C6 uid0", ("uid0",), no_other_root),
    GuestCheck("C6 sudo", ("sudo",), sudo_works),
    GuestCheck("C7", ("sshd_password",), password_login_disabled),
    GuestCheck("C8", ("custom_data_waagent", "custom_data_marker"), custom_data),
    GuestCheck("C2", ("cloud_init_result",), datasource),
    GuestCheck("E1 marker", ("waagent_provisioned",), agent_provisioned),
    GuestCheck("E1 running", ("waagent_active",), waagent_running),
    GuestCheck("E1 guest agent", ("disable_agent",), guest_agent_setting),
    GuestCheck("B5", ("system_running", "failed_units"), failed_units),
    GuestCheck("C12", ("root_size",), root_grown),
    GuestCheck("C10 keys", ("host_keys",), host_keys_fresh),
    GuestCheck("C10 machine-id", ("machine_id",), machine_id),
    GuestCheck("A9", ("cmdline",), kernel_cmdline),
    GuestCheck("B1", (), serial_console),
    GuestCheck("B2", (), console_clean),
    GuestCheck("E12", ("firmware",), firmware_matches),
    GuestCheck("C11 eth0", ("eth0",), network_eth0),
    GuestCheck("C11 dns", ("dns",), dns_resolves),
    GuestCheck("C9", ("sr0_mount",), media_ejected),
)


def _try_password(ctx: GuestContext) -> None:
    """A password login attempt (it must be refused), made beside the batch: its own SSH handshake."""
    password = "harness-" + base64.b32encode(ctx.config.marker.encode()[:10]).decode()
    try:
        ctx.password_accepted = ctx.guest.try_password(password)
    except (OSError, VerifyError):
        ctx.password_accepted = None


def run_batch(ctx: GuestContext, probes: dict[str, Probe]) -> dict[str, ProbeResult]:
    """Run the probes in one SSH command; a lost connection or a batch that could not start is an error."""
    env = {"HARNESS_ADMIN": ctx.config.admin_username, "HARNESS_HOSTNAME": ctx.config.hostname}
    result = ctx.guest.run_script(batch_script(probes, env), timeout_s=BATCH_TIMEOUT_S)
    found = parse_batch(result.stdout, probes)
    if not found:
        raise VerifyError(f"the in-guest check batch produced no results ({result.describe()})",
                          "the admin user's shell could not run it; see the serial log")
    return found


def _add_blame(evidence: Path) -> None:
    """Insert the blame list (from the plot) after the `systemd-analyze time` lines of systemd-analyze.txt."""
    analyze, plot = evidence / "systemd-analyze.txt", evidence / "systemd-analyze-plot.svg"
    blame = blame_from_plot(plot.read_text(encoding="utf-8", errors="replace")) if plot.exists() else ""
    if not blame or not analyze.exists():
        return
    text = analyze.read_text(encoding="utf-8")
    at = text.find(CRITICAL_CHAIN_HEADER)  # the critical chains follow the `time` lines
    head, chains = (text, "") if at < 0 else (text[:at], text[at:])
    head = head.rstrip("\n")
    section = f"\nunits by start-up time (systemd-analyze blame, read from the plot):\n{blame}\n"
    analyze.write_text(f"{head}\n{section}{chains}", encoding="utf-8")


def run_all(ctx: GuestContext, evidence: Path, extra_probes: dict[str, Probe] | None = None,
            extra_checks: tuple[GuestCheck, ...] = ()) -> list[Record]:
    """Every check from one batch (probes + the guest's logs + the VM configuration's own), each reported
    separately with its duration."""
    password = threading.Thread(target=_try_password, args=(ctx,), name="password-attempt", daemon=True)
    password.start()
    start = time.monotonic()
    ctx.probes = {**PROBES, **(extra_probes or {}), **{f"log:{name}": probe for name, probe in GUEST_LOGS.items()}}
    ctx.out = run_batch(ctx, ctx.probes)
    password.join(timeout=60)
    for name in GUEST_LOGS:
        found = ctx.out.get(f"log:{name}")
        text = "" if found is None else (found.result.stdout if found.result.exit_code == 0
                                         else f"{found.result.describe()}\n")
        (evidence / name).write_text(text, encoding="utf-8")
    _add_blame(evidence)
    records = []
    for check in (*CHECKS, *extra_checks):
        record = check.evaluate(ctx)
        record.duration_s = round(sum(ctx.out[p].duration_s for p in check.probes if p in ctx.out), 3)
        record.firmware = ctx.firmware
        record.platform = ctx.platform
        records.append(record)
    batch = round(time.monotonic() - start, 2)
    (evidence / "checks-batch.txt").write_text(
        f"one SSH round trip, {len(ctx.out)} probes, {batch} s\n" + "".join(
            f"{key}\texit {r.result.exit_code}\t{r.duration_s} s\n" for key, r in ctx.out.items()), encoding="utf-8")
    return records
