"""Stage `verify`: boot the build on the fake platform(s) under each firmware and check the guest.

One boot per firmware and platform runs every in-guest check as one batch; results go to verify.json and the
merged results, evidence to `verify/<firmware>-<platform>/`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import recipe as recipe_mod
from harness.buildfolder import BuildFolder
from harness.enums import Accel, DiskController, Firmware, KeepPolicy, Platform, SecurityType, Stage
from harness.errors import HarnessError, VerifyError
from harness.integrity import require_unchanged
from harness.log import stage
from harness.manifest import Manifest
from harness.report import write_stage
from harness.results import FAILED, PASSED, SKIPPED, WARNING, Record, StageReport, load_stage
from harness.verify import configchecks, configs, guestchecks, usertests
from harness.verify.boot import BootRequest, BootSession
from harness.verify.configs import VmConfiguration
from harness.verify.prepare import choose_accel, image_host_keys
from harness.vm.accel import AccelChoice
from harness.vm.network import GUEST_IP

log = logging.getLogger(__name__)

READY_WARN_S = 60.0  # image-checks 2.1: report-ready after power-on, WARN above 60 s


@dataclass(frozen=True)
class VerifyOptions:
    """Which boots: with no firmware, security type or disk controller given, the plan that boots every value
    the build declares at least once (verify/configs.py); otherwise every valid combination of the given ones
    (firmware: the build's generations, security type: standard, disk controller: scsi when not given)."""

    firmwares: tuple[Firmware, ...] | None = None
    security_types: tuple[SecurityType, ...] | None = None
    disk_controllers: tuple[DiskController, ...] | None = None
    every_declared: tuple[str, ...] = ()  # dimensions asked as `all`: firmwares, security_types, disk_controllers
    platforms: tuple[Platform, ...] = (Platform.AZURE,)
    keep: KeepPolicy = KeepPolicy.ON_ERROR
    faults: tuple[str, ...] = ()
    timeout_s: float | None = None
    accel: Accel = Accel.AUTO
    provision_guest_agent: bool = True
    parallel: int = 0  # boots side by side; 0 = one per CPU core
    tests: tuple[Path, ...] = ()  # the user's pytest files or folders, run inside each boot


@dataclass
class BootOutcome:
    """One boot's records and the facts verify.json keeps about it (timings, evidence, accel)."""

    records: list[Record] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


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


def provisioned_guest(session: BootSession, manifest: Manifest, recipe: recipe_mod.Recipe,
                      host_keys: list[str]) -> guestchecks.GuestContext:
    """Wait for the agent's Ready (Azure), connect over SSH, and describe what the checks compare against."""
    request = session.request
    ready_request = None
    if request.platform == Platform.AZURE:
        session.wait_ready()
        assert session.view is not None
        ready_request = session.view.ready_request()
    guest = session.guest(timeout_s=request.timeout_s)
    assert guest.host_key is not None and session.vm is not None
    return guestchecks.GuestContext(
        guest=guest, config=session.config, firmware=request.firmware, platform=request.platform,
        agent=manifest.agent, manifest=manifest, allowed_failed_units=recipe.allowed_failed_units,
        kernel_cmdline=manifest.kernel_cmdline, serial_log=session.vm.serial(),
        overlay_size_bytes=session.overlay_size_bytes, host_key_fingerprint=fingerprint(guest.host_key.asbytes()),
        image_host_keys=host_keys, ready_request=ready_request, guest_ip=GUEST_IP, accel=request.accel.accel,
        security_type=request.security_type, disk_controller=request.disk_controller)


def _user_tests(session: BootSession, tests: tuple[Path, ...]) -> list[Record]:
    """The user's own pytest checks, attached to this boot (harness/verify/usertests.py)."""
    azure = session.request.platform == Platform.AZURE
    attachment = usertests.Attachment(
        build=str(session.request.build.path), firmware=session.request.firmware, platform=session.request.platform,
        ssh_socket=str(session.ssh_socket), user=session.config.admin_username,
        private_key=str(session.key.private_path), platform_config=str(session.scratch / "platform.json"),
        events=str(session.evidence / "platform-events.jsonl") if azure else "",
        requests=str(session.evidence / "platform-requests.jsonl") if azure else "", evidence=str(session.evidence))
    return usertests.run(tests, attachment, session.evidence,
                         session.evidence_rel)


def _check_guest(session: BootSession, manifest: Manifest, recipe: recipe_mod.Recipe,
                 host_keys: list[str], tests: tuple[Path, ...]) -> list[Record]:
    """Wait for provisioning, connect, and run every in-guest check (one batch), the evidence logs and the
    user's tests."""
    ctx = provisioned_guest(session, manifest, recipe, host_keys)
    records = guestchecks.run_all(ctx, session.evidence,
                                  configchecks.probes_for(ctx.security_type, ctx.disk_controller), configchecks.CHECKS)
    if tests:
        records += _user_tests(session, tests)
    assert session.vm is not None
    session.timings.checks_done_s = session.vm.elapsed()
    if session.request.platform == Platform.AZURE:
        records.append(_protocol_record(session))
        records.append(_timing_record(session, session.request.firmware, session.request.platform))
    return records


def _protocol_record(session: BootSession) -> Record:
    """P1: every request of the boot, before and after Ready, was one real Azure takes as it came."""
    assert session.view is not None
    deviations = session.view.refresh().deviations()
    return Record(stage="verify", check="P1 requests as Azure takes them", result=FAILED if deviations else PASSED,
                  actual="; ".join(deviations[:3]) + (f" (+{len(deviations) - 3})" if len(deviations) > 3 else "")
                  if deviations else f"{len(session.view.requests)} requests, no deviation",
                  required="no deviation from the Azure protocol (headers, goal-state identity, documents)",
                  firmware=session.request.firmware, platform=session.request.platform,
                  message="real Azure would refuse or ignore these requests; see platform-events.jsonl"
                  if deviations else "")


def boot_and_check(request: BootRequest, manifest: Manifest, recipe: recipe_mod.Recipe,
                   host_keys: list[str], tests: tuple[Path, ...] = ()) -> BootOutcome:
    """One boot: wait for provisioning, run every in-guest check, collect timings and evidence."""
    outcome = BootOutcome(info={"firmware": request.firmware, "platform": request.platform,
                                "security_type": request.security_type, "disk_controller": request.disk_controller,
                                "accel": request.accel.accel, "accel_reason": request.accel.reason})
    session = BootSession(request)
    with session:
        outcome.info["evidence"] = session.evidence_rel
        try:
            outcome.records = _check_guest(session, manifest, recipe, host_keys, tests)
        except HarnessError as exc:
            session.failed = True
            outcome.records.append(_boot_failed(request.firmware, request.platform, exc))
        for record in outcome.records:
            record.configuration = request.name
        if any(r.result == FAILED for r in outcome.records):
            session.failed = True
        outcome.info["timings_s"] = session.timings.to_json()
        if session.view is not None:
            session.view.refresh()
            outcome.info["faults_hit"] = session.view.faulted()
            outcome.info["platform_events"] = [e.get("kind") for e in session.view.events]
        outcome.info["passed"] = not session.failed
        (session.evidence / "timings.json").write_text(json.dumps(outcome.info, indent=2) + "\n", encoding="utf-8")
    return outcome


def _nocloud_refused(recipe: recipe_mod.Recipe, firmware: str) -> Record:
    return Record(
        stage="verify", check="boot and provisioning", result=SKIPPED, firmware=firmware, platform="nocloud",
        actual="datasource_list locked to [ Azure ]", required="NoCloud allowed",
        message=f"{recipe.name} only lists the Azure datasource, so cloud-init would ignore a NoCloud seed; "
                "verify its -generic variant with --platform nocloud instead")


def recipe_of(manifest: Manifest) -> recipe_mod.Recipe:
    """The recipe the build was made from: as recorded in its manifest (older manifests: by name)."""
    if manifest.recipe_data:
        return recipe_mod.from_data(manifest.recipe_data, manifest.recipe_source or f"{manifest.recipe}.toml")
    return recipe_mod.load(manifest.recipe)


def recipe_tests(manifest: Manifest, recipe: recipe_mod.Recipe) -> tuple[Path, ...]:
    """The recipe's `[checks] tests`, relative to the folder its file is in (found again by its name)."""
    if not recipe.tests:
        return ()
    try:
        folder = recipe_mod.resolve_path(manifest.recipe).parent
    except HarnessError as exc:
        raise VerifyError(f"recipe {manifest.recipe} declares [checks] tests but its folder is not found: "
                          f"{exc.message}", "pass the folder holding the recipe with --recipes DIR (or HARNESS_RECIPES)"
                          ) from exc
    return tuple(folder / entry for entry in recipe.tests)


def configurations(manifest: Manifest, options: VerifyOptions) -> list[VmConfiguration]:
    """The VM configurations this verify boots (see VerifyOptions)."""
    firmwares = [Firmware(f) for f in manifest.firmwares]
    security = [SecurityType(s) for s in manifest.security_types]
    controllers = [DiskController(c) for c in manifest.disk_controllers]
    given = (options.firmwares, options.security_types, options.disk_controllers)
    if all(g is None for g in given) and not options.every_declared:
        return configs.plan(firmwares, security, controllers)
    every = set(options.every_declared)
    return configs.explicit(
        firmwares if "firmwares" in every else options.firmwares or firmwares,
        security if "security_types" in every else options.security_types or (SecurityType.STANDARD,),
        controllers if "disk_controllers" in every else options.disk_controllers or (DiskController.SCSI,))


def _requests(build: BuildFolder, manifest: Manifest, recipe: recipe_mod.Recipe, options: VerifyOptions, *,
              choice: AccelChoice, report: StageReport) -> list[BootRequest]:
    """One boot per configuration and platform (a NoCloud boot of an Azure-only image is a skipped record)."""
    requests: list[BootRequest] = []
    for config in configurations(manifest, options):
        for platform in options.platforms:
            if platform == Platform.NOCLOUD and Platform.NOCLOUD not in recipe.platforms:
                report.records.append(_nocloud_refused(recipe, config.firmware))
                continue
            requests.append(BootRequest(build=build, firmware=config.firmware, platform=platform, accel=choice,
                                        keep=options.keep, faults=options.faults,
                                        timeout_s=options.timeout_s or recipe.boot_timeout_s,
                                        provision_guest_agent=options.provision_guest_agent,
                                        security_type=config.security_type, disk_controller=config.disk_controller))
    return requests


def run(build: BuildFolder, options: VerifyOptions) -> StageReport:
    """Boot every requested firmware x platform (concurrently, see VerifyOptions.parallel); write verify.json.

    A TCG boot keeps about one host core busy (the guest's first boot is mostly sequential), so on
    this kind of machine two boots side by side take little longer than one.
    """
    start = time.monotonic()
    with stage("verify", f"{build.recipe_name} {build.build_id}"):
        manifest = require_unchanged(build, "verify")
        recipe = recipe_of(manifest)
        tests = (*options.tests, *recipe_tests(manifest, recipe))
        report = StageReport(stage=Stage.VERIFY, content_digest=manifest.content_digest)
        choice = choose_accel(build, options.accel)
        host_keys = image_host_keys(build)
        requests = _requests(build, manifest, recipe, options, choice=choice, report=report)
        if not requests and not report.records:
            raise VerifyError("nothing was verified", "choose at least one firmware and platform")
        boots: dict[str, Any] = {}
        workers = max(1, min(options.parallel or os.cpu_count() or 1, len(requests) or 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="boot") as pool:
            futures = [pool.submit(_one_boot, request, manifest, recipe, host_keys, tests) for request in requests]
            for request, future in zip(requests, futures, strict=True):
                outcome = future.result()
                report.records.extend(outcome.records)
                boots[request.name] = outcome.info
        report.details = {"accel": choice.accel, "accel_reason": choice.reason, "boots": boots,
                          "parallel_boots": workers}
        report.duration_s = round(time.monotonic() - start, 1)
        report.artifacts = {name: info["evidence"] for name, info in boots.items()}
        write_stage(build, report, amend=keep_other_boots)
    report.summary = report.counts_text() + "".join(
        f"; {name} Ready {info.get('timings_s', {}).get('ready_s')} s" for name, info in boots.items()
        if info.get("timings_s", {}).get("ready_s") is not None)
    report.build = build
    return report


def keep_other_boots(build: BuildFolder, report: StageReport) -> None:
    """Carry over the previous run's boots this run did not repeat, when they verified the same content.

    Re-verifying one firmware (say, bios) must not erase the other firmware's result for the same
    disk: publishing to V2 still needs the uefi verification.
    """
    previous = load_stage(build, Stage.VERIFY)
    if previous is None or previous.content_digest != report.content_digest:
        return
    done = {r.where for r in report.records}
    report.records.extend(r for r in previous.records if r.where not in done)
    for name, boot in previous.details.get("boots", {}).items():
        report.details["boots"].setdefault(name, boot)
    report.artifacts = {name: str(boot.get("evidence", "")) for name, boot in report.details["boots"].items()}


def _one_boot(request: BootRequest, manifest: Manifest, recipe: recipe_mod.Recipe,
              host_keys: list[str], tests: tuple[Path, ...]) -> BootOutcome:
    name = f"{request.firmware}-{request.platform}"
    log.info("verify: booting %s (%s)", name, request.accel.accel)
    outcome = boot_and_check(request, manifest, recipe, host_keys, tests)
    failed = [r for r in outcome.records if r.result == FAILED]
    timings = outcome.info.get("timings_s", {})
    log.info("verify: %s %s; Ready at %s s, SSH at %s s, checks done at %s s", name,
             "passed" if not failed else f"FAILED ({len(failed)} checks)", timings.get("ready_s"),
             timings.get("ssh_ready_s"), timings.get("checks_done_s"))
    return outcome
