"""In-guest checks over SSH after provisioning: each a small named function returning one Record.

A check's failure message carries the command, its exit code and its output; a remote command
that fails is a failed check, never silently ok. Names follow image-checks.md (B*, C*, E*).
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.platform.config import MARKER_PATH, PlatformConfig
from harness.report import FAILED, PASSED, SKIPPED, WARNING, Record
from harness.vm.ssh import CommandResult, Guest


@dataclass
class GuestContext:
    guest: Guest
    config: PlatformConfig
    firmware: str
    platform: str
    agent: str
    manifest: dict[str, Any]
    allowed_failed_units: tuple[str, ...]
    kernel_cmdline: tuple[str, ...]
    serial_log: str
    overlay_size_bytes: int
    host_key_fingerprint: str
    image_host_keys: list[str]
    ready_request: dict[str, Any] | None = None
    guest_ip: str = ""
    accel: str = ""
    facts: dict[str, Any] = field(default_factory=dict)


Check = Callable[[GuestContext], Record]


def _record(name: str, ok: bool | None, actual: object, required: object, message: str = "", *,
            warn: bool = False) -> Record:
    if ok is None:
        result = SKIPPED
    elif ok:
        result = PASSED
    else:
        result = WARNING if warn else FAILED
    return Record(stage="verify", check=name, result=result, actual=str(actual)[:500], required=str(required),
                  message=message)


def _failed_command(name: str, result: CommandResult, required: str) -> Record:
    return _record(name, False, f"exit {result.exit_code}", required, result.describe())


def _sudo(ctx: GuestContext, command: str) -> CommandResult:
    return ctx.guest.run(f"sudo -n sh -c {_quote(command)}")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


# -- provisioning (C*) -------------------------------------------------------------------------

def hostname(ctx: GuestContext) -> Record:
    result = ctx.guest.run("hostname")
    if result.exit_code != 0:
        return _failed_command("C5 host name applied", result, ctx.config.hostname)
    actual = result.stdout.strip()
    return _record("C5 host name applied", actual == ctx.config.hostname, actual, ctx.config.hostname,
                   "" if actual == ctx.config.hostname else "the agent did not apply the OVF HostName")


def admin_user(ctx: GuestContext) -> Record:
    user = ctx.config.admin_username
    result = ctx.guest.run(f"getent passwd {user}")
    if result.exit_code != 0:
        return _failed_command("C6 admin user created", result, f"user {user}")
    fields = result.stdout.strip().split(":")
    ok = len(fields) == 7 and fields[5] == f"/home/{user}" and fields[6].endswith("sh")
    return _record("C6 admin user created", ok, result.stdout.strip(), f"{user} with /home/{user} and a shell")


def authorized_keys(ctx: GuestContext) -> Record:
    """Exactly the injected key, not writable by others (sshd StrictModes); readable by others is a
    Warning: LISA's sanity suite wants <= 0600, and waagent 2.7 writes 0644."""
    name = "C6 exactly the injected SSH key"
    result = ctx.guest.run("cat ~/.ssh/authorized_keys && stat -c %a ~/.ssh/authorized_keys")
    if result.exit_code != 0:
        return _failed_command(name, result, "authorized_keys with the injected key")
    lines = [ln for ln in result.stdout.splitlines() if ln.strip()]
    mode = int(lines.pop() if lines else "777", 8)
    keys = [" ".join(ln.split()[:2]) for ln in lines if not ln.startswith("#")]
    wanted = " ".join(ctx.config.ssh_public_key.split()[:2])
    actual = f"{len(keys)} key(s), mode {mode:o}"
    required = "1 key (the injected one), mode <= 0600"
    if keys != [wanted] or mode & 0o022:
        return _record(name, False, actual, required, f"keys found: {keys}; group/world-writable: {bool(mode & 0o022)}")
    if mode & 0o077:
        return _record(name, False, actual, required, "readable by others (LISA sanity wants <= 0600)", warn=True)
    return _record(name, True, actual, required)


def no_other_root(ctx: GuestContext) -> Record:
    result = ctx.guest.run("awk -F: '$3 == 0 {print $1}' /etc/passwd")
    users = result.stdout.split()
    return _record("C6 no UID 0 account but root", result.exit_code == 0 and users == ["root"], users, ["root"])


def password_login_disabled(ctx: GuestContext) -> Record:
    name = "C7 password login disabled"
    result = _sudo(ctx, "sshd -T | grep -i '^passwordauthentication'")
    if result.exit_code != 0:
        return _failed_command(name, result, "passwordauthentication no")
    setting = result.stdout.strip().lower()
    accepted = ctx.guest.try_password("harness-" + base64.b32encode(ctx.config.marker.encode()[:10]).decode())
    ok = setting == "passwordauthentication no" and not accepted
    return _record(name, ok, f"{setting}; password attempt {'accepted' if accepted else 'rejected'}",
                   "passwordauthentication no; password attempt rejected")


def custom_data(ctx: GuestContext) -> Record:
    """cloud-init runs custom data (our marker cloud-config); waagent only stores it, base64."""
    name = "C8 custom data delivered"
    if ctx.agent == "waagent":
        result = _sudo(ctx, "cat /var/lib/waagent/CustomData")
        if result.exit_code != 0:
            return _failed_command(name, result, "/var/lib/waagent/CustomData")
        try:
            decoded = base64.b64decode(result.stdout.strip()).decode(errors="replace")
        except ValueError:
            decoded = result.stdout
        ok = ctx.config.marker in decoded
        return _record(name, ok, "marker found in CustomData" if ok else decoded[:80],
                       f"marker {ctx.config.marker} in /var/lib/waagent/CustomData")
    result = _sudo(ctx, f"cat {MARKER_PATH}")
    if result.exit_code != 0:
        return _failed_command(name, result, f"{MARKER_PATH} written by the custom data")
    actual = result.stdout.strip()
    return _record(name, actual == ctx.config.marker, actual, ctx.config.marker)


def cloud_init_status(ctx: GuestContext) -> Record:
    name = "C1 cloud-init finished without errors"
    if ctx.agent != "cloud-init":
        return _record(name, None, "agent is waagent", "cloud-init provisioning", "not applicable")
    result = ctx.guest.run("cloud-init status --wait --long", timeout_s=300)
    ok = result.exit_code == 0 and "status: done" in result.stdout
    return _record(name, ok, result.stdout.strip().replace("\n", "; ")[:300] or f"exit {result.exit_code}",
                   "exit 0, status: done", "" if ok else result.describe())


def datasource(ctx: GuestContext) -> Record:
    """cloud-init used the intended datasource, and on Azure the OVF from the provisioning CD (not an
    IMDS-only fallback, which silently drops custom data and the password policy)."""
    name = "C2 intended datasource used"
    if ctx.agent != "cloud-init":
        return _record(name, None, "agent is waagent", "cloud-init datasource", "not applicable")
    wanted = "DataSourceAzure [seed=/dev/sr0]" if ctx.platform == "azure" else "DataSourceNoCloud"
    result = ctx.guest.run("cat /run/cloud-init/status.json")
    if result.exit_code != 0:
        return _failed_command(name, result, wanted)
    match = re.search(r'"datasource":\s*"([^"]*)"', result.stdout)
    actual = match.group(1) if match else "none"
    return _record(name, actual.startswith(wanted), actual, wanted)


def agent_provisioned(ctx: GuestContext) -> Record:
    """waagent's own marker that provisioning finished for this instance."""
    name = "E1 agent provisioning marker"
    if ctx.platform != "azure":
        return _record(name, None, ctx.platform, "azure platform", "not applicable on NoCloud")
    result = _sudo(ctx, "test -s /var/lib/waagent/provisioned && echo present")
    ok = result.exit_code == 0
    required = "/var/lib/waagent/provisioned (waagent saw provisioning finish)"
    return _record(name, ok, "present" if ok else "absent", required, "" if ok else result.describe(),
                   warn=ctx.agent == "cloud-init")


def guest_agent_setting(ctx: GuestContext) -> Record:
    """ProvisionGuestAgent from the OVF is honoured: false makes waagent disable extension handling."""
    name = "E1 ProvisionGuestAgent honoured"
    if ctx.platform != "azure" or ctx.agent != "waagent":
        return _record(name, None, f"{ctx.agent} on {ctx.platform}", "waagent on azure", "not applicable")
    # waagent's marker is disable_agent (conf.get_disable_agent_file_path); its log names it on disabling.
    result = _sudo(ctx, "test -e /var/lib/waagent/disable_agent && echo disabled || echo enabled")
    actual = result.stdout.strip()
    wanted = "enabled" if ctx.config.provision_guest_agent else "disabled"
    return _record(name, result.exit_code == 0 and actual == wanted, f"extension handling {actual}",
                   f"extension handling {wanted} (ProvisionGuestAgent={str(ctx.config.provision_guest_agent).lower()})")


def ready_from_guest(ctx: GuestContext) -> Record:
    name = "C3 Ready reported by the guest's agent"
    if ctx.platform != "azure":
        return _record(name, None, ctx.platform, "azure platform", "not applicable on NoCloud")
    request = ctx.ready_request
    if request is None:
        return _record(name, False, "no accepted Ready report", "a Ready health report from the guest")
    client = str(request.get("client", ""))
    agent = {k.lower(): v for k, v in dict(request.get("headers", {})).items()}.get("x-ms-agent-name", "")
    ok = client.split(":", 1)[0] == ctx.guest_ip
    return _record(name, ok, f"from {client} ({agent or 'no x-ms-agent-name'})", f"from the guest {ctx.guest_ip}")


# -- boot and system (B*, E*) ---------------------------------------------------------------

def failed_units(ctx: GuestContext) -> Record:
    name = "B5 no failed systemd units"
    ctx.guest.run("systemctl is-system-running --wait", timeout_s=180)
    result = ctx.guest.run("systemctl --failed --no-legend --plain --no-pager")
    if result.exit_code != 0:
        return _failed_command(name, result, "no failed units")
    units = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    unexpected = [u for u in units if u not in ctx.allowed_failed_units]
    return _record(name, not unexpected, units or "none", f"none (allowed: {list(ctx.allowed_failed_units)})",
                   f"failed: {', '.join(unexpected)}" if unexpected else "")


def root_grown(ctx: GuestContext) -> Record:
    name = "C12 root file system grown to the disk"
    result = ctx.guest.run("findmnt -bno SIZE / && lsblk -bdno SIZE $(findmnt -no SOURCE / | sed 's/[0-9]*$//')")
    if result.exit_code != 0:
        return _failed_command(name, result, "root file system spanning the disk")
    numbers = [int(x) for x in result.stdout.split() if x.isdigit()]
    if len(numbers) < 2:
        return _record(name, False, result.stdout.strip(), "file system and disk sizes")
    fs_size, disk_size = numbers[0], numbers[1]
    # A file system that was not grown cannot be larger than the root partition the image shipped.
    shipped = next(int(p["size_mib"]) for p in ctx.manifest["disk"]["layout"] if p["name"] == "root") * 1024**2
    ok = disk_size == ctx.overlay_size_bytes and fs_size > shipped
    return _record(name, ok, f"file system {fs_size} B on a {disk_size} B disk",
                   f"disk {ctx.overlay_size_bytes} B and a file system larger than the shipped partition ({shipped} B)")


def host_keys_fresh(ctx: GuestContext) -> Record:
    name = "C10 SSH host keys generated on first boot"
    result = ctx.guest.run("for f in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf \"$f\"; done")
    if result.exit_code != 0:
        return _failed_command(name, result, "host keys present in the guest")
    fingerprints = [line.split()[1] for line in result.stdout.splitlines() if len(line.split()) > 1]
    ok = bool(fingerprints) and ctx.host_key_fingerprint in fingerprints and not ctx.image_host_keys
    return _record(name, ok, f"{len(fingerprints)} keys in the guest, served {ctx.host_key_fingerprint}; "
                   f"image had {ctx.image_host_keys or 'none'}",
                   "keys present in the guest, the served one among them, none in the image")


def machine_id(ctx: GuestContext) -> Record:
    result = ctx.guest.run("cat /etc/machine-id")
    value = result.stdout.strip()
    ok = result.exit_code == 0 and bool(re.fullmatch(r"[0-9a-f]{32}", value)) and set(value) != {"0"}
    return _record("C10 machine-id set", ok, value or f"exit {result.exit_code}", "32 hex digits, fresh")


def kernel_cmdline(ctx: GuestContext) -> Record:
    result = ctx.guest.run("cat /proc/cmdline")
    tokens = result.stdout.split()
    missing = [t for t in ctx.kernel_cmdline if t not in tokens]
    return _record("A9 Azure kernel parameters present", result.exit_code == 0 and not missing,
                   result.stdout.strip(), " ".join(ctx.kernel_cmdline),
                   f"missing: {' '.join(missing)}" if missing else "")


def serial_console(ctx: GuestContext) -> Record:
    ok = bool(re.search(r"console \[ttyS0\] enabled", ctx.serial_log))
    return _record("B1 serial console carries kernel output", ok,
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
        return _record(name, not hard, hard or "none", "none")
    starved = ctx.accel == "tcg"
    message = ("CPU stall under TCG: the emulator starved the vCPU on a busy host, not an image defect "
               "(confirm under KVM)") if starved else "CPU stall reported"
    return _record(name, False, stalls[:3], "none", message, warn=starved)


def firmware_matches(ctx: GuestContext) -> Record:
    result = ctx.guest.run("test -d /sys/firmware/efi && echo uefi || echo bios")
    actual = result.stdout.strip()
    return _record("E12 booted by the expected firmware", actual == ctx.firmware, actual, ctx.firmware)


def network_eth0(ctx: GuestContext) -> Record:
    result = ctx.guest.run("ip -o -4 addr show dev eth0")
    ok = result.exit_code == 0 and f" {ctx.guest_ip}/" in result.stdout
    return _record("C11 primary NIC eth0 configured by DHCP", ok, result.stdout.strip()[:200] or result.describe(),
                   f"eth0 with {ctx.guest_ip}")


def dns_resolves(ctx: GuestContext) -> Record:
    result = ctx.guest.run(f"getent hosts {ctx.config.hostname}")
    ok = result.exit_code == 0 and ctx.guest_ip in result.stdout.split()
    return _record("C11 DNS resolves the VM's name", ok, result.stdout.strip() or f"exit {result.exit_code}",
                   f"{ctx.config.hostname} -> {ctx.guest_ip}", warn=True)


def media_ejected(ctx: GuestContext) -> Record:
    result = ctx.guest.run("findmnt -no TARGET /dev/sr0 || true")
    mounted = result.stdout.strip()
    return _record("C9 provisioning media not mounted", not mounted, mounted or "not mounted", "not mounted",
                   warn=True)


def waagent_running(ctx: GuestContext) -> Record:
    name = "E1 Azure Linux Agent running"
    if ctx.platform != "azure":
        return _record(name, None, ctx.platform, "azure platform", "not applicable on NoCloud")
    result = ctx.guest.run("systemctl is-active walinuxagent.service waagent.service 2>/dev/null | head -1")
    states = result.stdout.split()
    ok = "active" in states
    return _record(name, ok, states or "not installed", "active")


def sudo_works(ctx: GuestContext) -> Record:
    result = ctx.guest.run("sudo -n true")
    return _record("C6 admin user can sudo", result.exit_code == 0, f"exit {result.exit_code}", "exit 0",
                   "" if result.exit_code == 0 else result.describe())


# cloud_init_status goes first: it waits for cloud-init's last stage, and several later checks look at
# what cloud-init configures after Ready (sshd settings, custom data, growpart).
CHECKS: tuple[Check, ...] = (
    cloud_init_status, ready_from_guest, hostname, admin_user, authorized_keys, no_other_root, sudo_works,
    password_login_disabled, custom_data, datasource, agent_provisioned, waagent_running, guest_agent_setting,
    failed_units, root_grown,
    host_keys_fresh, machine_id, kernel_cmdline, serial_console, console_clean, firmware_matches, network_eth0,
    dns_resolves, media_ejected,
)


def run_all(ctx: GuestContext, firmware: str, platform: str) -> list[Record]:
    records = []
    for check in CHECKS:
        start = time.monotonic()
        record = check(ctx)
        record.duration_s = round(time.monotonic() - start, 2)
        record.firmware = firmware
        record.platform = platform
        records.append(record)
    return records
