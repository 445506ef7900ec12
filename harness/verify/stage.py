"""`harness verify`: boot the build on the fake platform(s) under each firmware and check the guest.

One boot per firmware and platform runs every in-guest check; results go to verify.json and the
merged results, evidence to `verify/<firmware>-<platform>/`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import recipe as recipe_mod
from harness import run
from harness.buildfolder import BuildFolder
from harness.checks import guest as guest_checks
from harness.errors import HarnessError, VerifyError
from harness.log import stage
from harness.report import FAILED, PASSED, SKIPPED, WARNING, Record, StageReport, load_stage, write_stage
from harness.verify.boot import BootRequest, BootSession
from harness.vm import accel as accel_mod
from harness.vm.network import GUEST_IP
from harness.vm.ssh import Guest

log = logging.getLogger(__name__)

READY_WARN_S = 60.0  # image-checks 2.1: report-ready after power-on, WARN above 60 s


@dataclass(frozen=True)
class VerifyOptions:
    firmwares: tuple[str, ...] = ("bios", "uefi")
    platforms: tuple[str, ...] = ("azure",)
    keep: str = "on-error"
    faults: tuple[str, ...] = ()
    timeout_s: float | None = None
    accel: str = "auto"
    provision_guest_agent: bool = True
    parallel: int = 0  # boots side by side; 0 = one per CPU core


def root_offset(manifest: dict[str, Any]) -> int:
    """Byte offset of the root file system (vendor images need not be MiB-aligned)."""
    root = next(p for p in manifest["disk"]["layout"] if p["name"] == "root")
    return int(root.get("start_bytes") or int(root["start_mib"]) * 1024 * 1024)


def debugfs(disk: Path, offset: int, request: str) -> str:
    return run.run(["debugfs", "-c", "-R", request, f"{disk}?offset={offset}"]).stdout


def image_host_keys(build: BuildFolder) -> list[str]:
    """SSH host key files in the image as built (there must be none: they appear at first boot)."""
    listing = debugfs(build.disk(), root_offset(build.manifest()), "ls -p /etc/ssh")
    # debugfs -p lines look like: /1043/100644/0/0/moduli/573928/
    names = [line.split("/")[5] for line in listing.splitlines() if line.count("/") >= 6]
    return [n for n in names if n.startswith("ssh_host_")]


def extract_kernel(build: BuildFolder, dest: Path) -> Path | None:
    manifest = build.manifest()
    version = manifest.get("kernel_version")
    if not version:
        return None
    target = dest / "vmlinuz"
    debugfs(build.disk(), root_offset(manifest), f"dump /boot/vmlinuz-{version} {target}")
    return target if target.exists() and target.stat().st_size > 0 else None


def choose_accel(build: BuildFolder, requested: str) -> accel_mod.AccelChoice:
    with tempfile.TemporaryDirectory(prefix="harness-accel-") as tmp:
        kernel = None if requested in ("kvm", "tcg") else extract_kernel(build, Path(tmp))
        return accel_mod.choose(kernel, requested)


def fingerprint(key_bytes: bytes) -> str:
    """OpenSSH-style SHA256 fingerprint of a public key blob."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key_bytes).digest()).decode().rstrip("=")


def _boot_failed(firmware: str, platform: str, exc: HarnessError) -> Record:
    return Record(stage="verify", check="boot and provisioning", result=FAILED, actual="failed",
                  required="Ready, then SSH", message=str(exc), firmware=firmware, platform=platform)


def _timing_record(session: BootSession, firmware: str, platform: str) -> Record:
    ready = session.timings.ready_s
    if ready is None:
        return Record(stage="verify", check="boot to Ready time", result=SKIPPED, actual="no Ready",
                      required=f"<= {READY_WARN_S:.0f} s", firmware=firmware, platform=platform)
    return Record(stage="verify", check="boot to Ready time", result=PASSED if ready <= READY_WARN_S else WARNING,
                  actual=f"{ready:.1f} s ({session.request.accel.accel})", required=f"<= {READY_WARN_S:.0f} s",
                  firmware=firmware, platform=platform)


GUEST_LOGS = {
    "journal.txt": "journalctl -b --no-pager -o short-monotonic",
    "cloud-init.log": "cat /var/log/cloud-init.log",
    "cloud-init-output.log": "cat /var/log/cloud-init-output.log",
    "waagent.log": "cat /var/log/waagent.log",
    # what the agent's Ready waited for: the unit chain to the unit that reports it, per agent and distro
    "systemd-analyze.txt": "systemd-analyze time; systemd-analyze blame | head -30; "
                           "for unit in cloud-init-local walinuxagent waagent; do "
                           "systemctl cat $unit.service >/dev/null 2>&1 && "
                           "systemd-analyze critical-chain $unit.service; done; true",
}


def collect_guest_logs(guest: Guest, evidence: Path) -> None:
    """Keep the guest's own account of the boot next to the serial log (missing files are noted)."""
    for name, command in GUEST_LOGS.items():
        result = guest.run(f"sudo -n sh -c '{command}'", timeout_s=60)
        text = result.stdout if result.exit_code == 0 else f"{result.describe()}\n"
        (evidence / name).write_text(text, encoding="utf-8")


def boot_and_check(request: BootRequest, recipe: recipe_mod.Recipe, host_keys: list[str]) -> tuple[list[Record],
                                                                                                   dict[str, Any]]:
    """One boot: wait for provisioning, run every in-guest check, collect timings and evidence."""
    manifest = request.build.manifest()
    records: list[Record] = []
    info: dict[str, Any] = {"firmware": request.firmware, "platform": request.platform,
                            "accel": request.accel.accel, "accel_reason": request.accel.reason}
    session = BootSession(request)
    with session:
        info["evidence"] = str(session.evidence)
        try:
            ready_request = None
            if request.platform == "azure":
                session.wait_ready()
                assert session.view is not None
                ready_request = session.view.ready_request()
            guest = session.guest(timeout_s=request.timeout_s)
            assert guest.host_key is not None
            assert session.vm is not None
            ctx = guest_checks.GuestContext(
                guest=guest, config=session.config, firmware=request.firmware, platform=request.platform,
                agent=str(manifest.get("agent")), manifest=manifest,
                allowed_failed_units=recipe.allowed_failed_units,
                kernel_cmdline=tuple(manifest.get("kernel_cmdline", [])), serial_log=session.vm.serial(),
                overlay_size_bytes=session.overlay_size_bytes, host_key_fingerprint=fingerprint(
                    guest.host_key.asbytes()), image_host_keys=host_keys, ready_request=ready_request,
                guest_ip=GUEST_IP, accel=request.accel.accel)
            records = guest_checks.run_all(ctx, request.firmware, request.platform)
            collect_guest_logs(guest, session.evidence)
            if request.platform == "azure":
                records.append(_timing_record(session, request.firmware, request.platform))
        except HarnessError as exc:
            session.failed = True
            records.append(_boot_failed(request.firmware, request.platform, exc))
        if any(r.result == FAILED for r in records):
            session.failed = True
        info["timings_s"] = session.timings.to_json()
        if session.view is not None:
            session.view.refresh()
            info["faults_hit"] = session.view.faulted()
            info["platform_events"] = [e.get("kind") for e in session.view.events]
        info["passed"] = not session.failed
        (session.evidence / "timings.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return records, info


def _nocloud_refused(recipe: recipe_mod.Recipe, firmware: str) -> Record:
    return Record(
        stage="verify", check="boot and provisioning", result=SKIPPED, firmware=firmware, platform="nocloud",
        actual="datasource_list locked to [ Azure ]", required="NoCloud allowed",
        message=f"{recipe.name} only lists the Azure datasource, so cloud-init would ignore a NoCloud seed; "
                "verify its -generic variant with --platform nocloud instead")


def verify(build: BuildFolder, options: VerifyOptions) -> StageReport:
    """Boot every requested firmware x platform (concurrently, see VerifyOptions.parallel); write verify.json.

    A TCG boot keeps about one host core busy (the guest's first boot is mostly sequential), so on
    this kind of machine two boots side by side take little longer than one.
    """
    manifest = build.manifest()
    recipe = recipe_mod.load(manifest.get("recipe_path") or manifest["recipe"])
    report = StageReport(stage="verify", content_digest=str(manifest["content_digest"]))
    with stage("verify", f"{build.recipe_name} {build.build_id}: {', '.join(options.firmwares)} x "
                         f"{', '.join(options.platforms)}"):
        choice = choose_accel(build, options.accel)
        host_keys = image_host_keys(build)
        requests: list[BootRequest] = []
        for firmware in options.firmwares:
            for platform in options.platforms:
                if platform == "nocloud" and "nocloud" not in recipe.platforms:
                    report.records.append(_nocloud_refused(recipe, firmware))
                    continue
                requests.append(BootRequest(build=build, firmware=firmware, platform=platform, accel=choice,
                                            keep=options.keep, faults=options.faults,
                                            timeout_s=options.timeout_s or recipe.boot_timeout_s,
                                            provision_guest_agent=options.provision_guest_agent))
        boots: dict[str, Any] = {}
        workers = max(1, min(options.parallel or os.cpu_count() or 1, len(requests) or 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="boot") as pool:
            futures = [pool.submit(_one_boot, request, recipe, host_keys) for request in requests]
            for request, future in zip(requests, futures, strict=True):
                records, info = future.result()
                report.records.extend(records)
                boots[f"{request.firmware}-{request.platform}"] = info
        report.extra = {"accel": choice.accel, "accel_reason": choice.reason, "boots": boots,
                        "parallel_boots": workers}
        write_stage(build, report, amend=keep_other_boots)
    if not report.records:
        raise VerifyError("nothing was verified", "choose at least one firmware and platform")
    return report


def keep_other_boots(build: BuildFolder, report: StageReport) -> None:
    """Carry over the previous run's boots this run did not repeat, when they verified the same content.

    Re-verifying one firmware (say, bios) must not erase the other firmware's result for the same
    disk: publishing to V2 still needs the uefi verification.
    """
    previous = load_stage(build, "verify")
    if not previous or previous.get("content_digest") != report.content_digest:
        return
    done = {(r.firmware, r.platform) for r in report.records}
    for data in previous.get("records", []):
        record = Record.from_json(data)
        if (record.firmware, record.platform) not in done:
            report.records.append(record)
    for name, boot in previous.get("boots", {}).items():
        report.extra["boots"].setdefault(name, boot)


def _one_boot(request: BootRequest, recipe: recipe_mod.Recipe, host_keys: list[str]) -> tuple[list[Record],
                                                                                                 dict[str, Any]]:
    name = f"{request.firmware}-{request.platform}"
    log.info("verify: booting %s (%s)", name, request.accel.accel)
    records, info = boot_and_check(request, recipe, host_keys)
    failed = [r for r in records if r.result == FAILED]
    log.info("verify: %s %s; Ready at %s s, SSH at %s s", name, "passed" if not failed else
             f"FAILED ({len(failed)} checks)", info.get("timings_s", {}).get("ready_s"),
             info.get("timings_s", {}).get("ssh_ready_s"))
    return records, info
