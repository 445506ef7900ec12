"""Verify boots real builds through their own bootloaders on the fake Azure platform (TCG here).

One verify run per recipe covers both firmwares, and every in-guest check runs in that one boot
per firmware (DESIGN test budget). Negative tests use short timeouts and must fail fast.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.buildfolder import BuildFolder
from harness.digest import content_digest
from harness.enums import DiskController, Firmware, KeepPolicy, SecurityType
from harness.errors import HarnessError
from harness.results import FAILED, PASSED, Record, StageReport
from harness.stages.verify import VerifyOptions
from harness.stages.verify import run as verify
from tests.integration.conftest import UnsignedGen2Run
from tests.integration.plant import rehash, remove, replace_in, strip_secure_boot_chain

pytestmark = [pytest.mark.qemu, pytest.mark.network]


# ubuntu-24.04's linux-azure kernel reaches Ready 3-4x later than Debian's under TCG (about 200 s alone here):
# `make test` boots it once, in the configuration with the most to prove (Gen2, Trusted Launch, NVMe), and the
# nightly tier boots its whole plan. Gen1 (SeaBIOS, hybrid GPT) is booted in `make test` by debian-12.
UBUNTU_MAKE_TEST = VerifyOptions(firmwares=(Firmware.UEFI,), security_types=(SecurityType.TRUSTED_LAUNCH,),
                                 disk_controllers=(DiskController.NVME,))
PLAN = {"bios-azure", "uefi-trusted-launch-nvme-azure"}  # what the default plan of both recipes boots


@pytest.fixture(scope="session")
def ubuntu2404_verified(ubuntu2404_build: BuildFolder) -> StageReport:
    return verify(ubuntu2404_build, UBUNTU_MAKE_TEST)


@pytest.fixture(scope="session")
def ubuntu2404_verified_plan(ubuntu2404_build: BuildFolder) -> StageReport:
    return verify(ubuntu2404_build, VerifyOptions())  # the plan: bios, and uefi with trusted-launch on nvme


def failures(report: StageReport) -> list[str]:
    return [f"{r.firmware}-{r.platform} {r.check}: {r.actual} / {r.message}" for r in report.records
            if r.result == FAILED]


@pytest.mark.parametrize("fixture", [
    "debian12_verified", "ubuntu2404_verified",
    pytest.param("ubuntu2404_verified_plan", marks=pytest.mark.nightly)])
def test_every_check_passes_in_every_boot(fixture: str, request: pytest.FixtureRequest) -> None:
    report: StageReport = request.getfixturevalue(fixture)
    assert failures(report) == []
    boots = {r.where for r in report.records}
    if fixture == "ubuntu2404_verified":  # the one boot asked for (verify.json keeps an earlier run's other boots)
        assert "uefi-trusted-launch-nvme-azure" in boots and boots <= PLAN, boots
    else:  # every value the build declares booted once: the plan
        assert boots == PLAN
    names = {r.check for r in report.records if r.result == PASSED}
    gen2 = {r.check for r in report.records if r.result == PASSED and r.where == "uefi-trusted-launch-nvme-azure"}
    for required in ("TL1 Secure Boot enforced", "TL2 kernel lockdown", "TL3 TPM 2.0 present",
                     "TL4 measured boot: Secure Boot state in PCR 7", "NV1 root file system on an NVMe namespace"):
        assert required in gen2, required
    for required in ("C3 Ready reported by the guest's agent", "C5 host name applied",
                     "C6 exactly the injected SSH key", "C7 password login disabled", "C8 custom data delivered",
                     "C1 cloud-init finished without errors", "C2 intended datasource used",
                     "B5 no failed systemd units", "C12 root file system grown to the disk",
                     "C10 SSH host keys generated on first boot", "C10 machine-id set",
                     "A9 Azure kernel parameters present", "E12 booted by the expected firmware",
                     "P1 requests as Azure takes them"):
        assert required in names, required


@pytest.mark.parametrize("fixture", ["debian12_verified", "ubuntu2404_verified"])
def test_evidence_timings_and_untouched_disk(fixture: str, request: pytest.FixtureRequest) -> None:
    report: StageReport = request.getfixturevalue(fixture)
    folder = report.build
    assert folder is not None
    manifest = folder.manifest()
    assert content_digest(folder.disk(), manifest.disk.size_bytes) == manifest.content_digest
    for name, boot in report.details["boots"].items():
        evidence = folder.path / boot["evidence"]
        assert evidence.parent == folder.path / "verify", boot["evidence"]
        argv = (evidence / "qemu-argv.txt").read_text()
        assert "-kernel" not in argv and "overlay.qcow2" in argv and str(folder.disk()) not in argv
        serial = (evidence / "serial.log").read_text(errors="replace")
        # booted through its own bootloader, systemd running from the root file system
        assert "GRUB" in serial or "grub" in serial
        assert "systemd[1]" in serial or "Welcome to" in serial
        timings = boot["timings_s"]
        assert 0 < timings["first_serial_s"] <= timings["kernel_s"] < timings["ready_s"] < timings["ssh_ready_s"], name
        assert timings["ssh_ready_s"] <= timings["checks_done_s"], name
        assert (evidence / "checks-batch.txt").exists(), name  # every in-guest check ran in one batch
        requests = [json.loads(line) for line in (evidence / "platform-requests.jsonl").read_text().splitlines()]
        ready = [r for r in requests if "<State>Ready</State>" in r.get("body", "")]
        assert ready and ready[0]["client"].startswith("10.0.0.4")
        if fixture == "debian12_verified":  # the unit chain cloud-init's Ready waited for (checked on Debian 12)
            analyze = (evidence / "systemd-analyze.txt").read_text()
            assert re.search(r"^cloud-init-local\.service [@+]", analyze, re.M), analyze[-1500:]
    stage_file = json.loads(folder.stage_file("verify").read_text())
    assert stage_file["passed"] and stage_file["content_digest"] == manifest.content_digest
    assert (folder.path / "results.json").exists() and (folder.path / "junit.xml").exists()


def without_nvme_driver(folder: BuildFolder) -> None:
    """An image whose kernel never gets an NVMe driver (Debian's cloud kernel builds it in: keep it from starting)."""
    replace_in(folder, "/boot/grub/grub.cfg", " ro ", " ro initcall_blacklist=nvme_init ")


CLOUD_INIT_AZURE_HELPER = "/usr/lib/python3/dist-packages/cloudinit/sources/helpers/azure.py"


def without_wireserver_version_header(folder: BuildFolder) -> None:
    """cloud-init that no longer sends x-ms-version to the WireServer (a regression real Azure would refuse)."""
    replace_in(folder, CLOUD_INIT_AZURE_HELPER, '"x-ms-version": "2012-11-30",', '"x-ms-versio": "2012-11-30",')


NEGATIVE_CASES = {
    # cloud-init removed from a copy of the disk: the guest boots but no agent ever talks to the platform
    "broken-cloud-init": (VerifyOptions(firmwares=(Firmware.BIOS,), timeout_s=600, keep=KeepPolicy.NEVER),
                          lambda folder: remove(folder, "/usr/bin/cloud-init")),
    # the WireServer answers 500 to every health report, forever
    "wireserver-500": (VerifyOptions(firmwares=(Firmware.BIOS,), faults=("wireserver:health=500",), timeout_s=600,
                                     keep=KeepPolicy.NEVER), None),
    # IMDS insists on a header no agent sends: the agent provisions blind from the OVF (cloud-init 22.4
    # still reports Ready), and verify fails naming IMDS and the header
    "imds-header": (VerifyOptions(firmwares=(Firmware.BIOS,), faults=("imds:*=require-header:X-Harness",),
                                  timeout_s=600, keep=KeepPolicy.NEVER), None),
    # shim and GRUB stripped of their signatures: Secure Boot refuses the loader at once (the same disk still passes
    # a standard Gen2 boot: the `unsigned_gen2` fixture)
    "unsigned-trusted-launch": (VerifyOptions(firmwares=(Firmware.UEFI,), security_types=(SecurityType.TRUSTED_LAUNCH,),
                                              timeout_s=600, keep=KeepPolicy.NEVER), strip_secure_boot_chain),
    # the agent breaks the WireServer protocol: not provisioned, the deviation named, long before the timeout
    "protocol-deviation": (VerifyOptions(firmwares=(Firmware.BIOS,), timeout_s=600, keep=KeepPolicy.NEVER),
                           without_wireserver_version_header),
    # no NVMe driver: the NVMe boot cannot find its root file system
    "no-nvme-driver": (VerifyOptions(firmwares=(Firmware.UEFI,), disk_controllers=(DiskController.NVME,),
                                     timeout_s=600, keep=KeepPolicy.NEVER), without_nvme_driver),
}


@pytest.fixture(scope="session")
def negative_reports(debian12_build: BuildFolder, tmp_path_factory: pytest.TempPathFactory) -> dict[
        str, tuple[StageReport, float]]:
    """The negative boots, three side by side (each fails fast, long before its 600 s timeout)."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.conftest import copy_build

    def one(name: str) -> tuple[StageReport, float]:
        options, plant = NEGATIVE_CASES[name]
        folder = copy_build(debian12_build, tmp_path_factory.mktemp(name))
        if plant is not None:
            plant(folder)
            rehash(folder)  # the planted defect is the build's content, as verify should see it
        start = time.monotonic()
        report = verify(folder, options)
        return report, time.monotonic() - start

    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(one, name) for name in NEGATIVE_CASES}
        return {name: future.result() for name, future in futures.items()}


def _failed(report: StageReport) -> list[Record]:
    return [r for r in report.records if r.result == FAILED]


def test_broken_cloud_init_fails_with_a_clear_message(negative_reports: dict[str, tuple[StageReport, float]]) -> None:
    report, elapsed = negative_reports["broken-cloud-init"]
    failed = _failed(report)
    assert [r.check for r in failed] == ["boot and provisioning"]
    assert "finished booting" in failed[0].message
    assert "no provisioning agent contacted IMDS or the WireServer" in failed[0].message
    assert elapsed < 600


def test_wireserver_failing_forever_names_the_endpoint(negative_reports: dict[str, tuple[StageReport, float]]) -> None:
    report, elapsed = negative_reports["wireserver-500"]
    failed = _failed(report)
    assert failed and "permanent fault: wireserver:health" in failed[0].message
    assert report.details["boots"]["bios-azure"]["faults_hit"]["wireserver:health"] >= 20
    assert elapsed < 600


def test_imds_header_the_guest_does_not_send_fails_fast(negative_reports: dict[str, tuple[StageReport, float]]) -> None:
    report, elapsed = negative_reports["imds-header"]
    failed = _failed(report)
    assert failed and "IMDS answered all" in failed[0].message and "X-Harness" in failed[0].message
    assert elapsed < 600


def test_an_agent_that_breaks_the_wireserver_protocol_is_not_provisioned(
        negative_reports: dict[str, tuple[StageReport, float]]) -> None:
    report, elapsed = negative_reports["protocol-deviation"]
    (failed,) = _failed(report)
    assert "not provisioned: the guest's agent broke the Azure protocol" in failed.message, failed.message
    assert "wireserver goalstate (missing-header)" in failed.message and "x-ms-version" in failed.message
    assert elapsed < 400


def test_secure_boot_refuses_an_unsigned_chain_within_seconds(
        negative_reports: dict[str, tuple[StageReport, float]]) -> None:
    report, elapsed = negative_reports["unsigned-trusted-launch"]
    (failed,) = _failed(report)
    assert "Secure Boot" in failed.message and "refused" in failed.message, failed.message
    boot = report.details["boots"]["uefi-trusted-launch-azure"]
    assert boot["timings_s"]["kernel_s"] is None  # no kernel ever ran
    assert (report.build.path / boot["evidence"] / "serial.log").stat().st_size > 0  # the firmware's own words kept
    assert elapsed < 240


def test_the_unsigned_disk_still_passes_a_standard_gen2_boot(unsigned_gen2: UnsignedGen2Run) -> None:
    """The control of the refusal above: with Secure Boot off, the stripped chain boots and every built-in check
    passes (the boot also runs the user's checks of test_pytest_plugin.py; one of those fails on purpose)."""
    report = unsigned_gen2.report
    builtin = [r for r in report.records if not r.check.startswith("user ")]
    assert builtin and [r for r in builtin if r.result == FAILED] == []
    assert {r.where for r in builtin} == {"uefi-azure"}
    assert "C3 Ready reported by the guest's agent" in {r.check for r in builtin if r.result == PASSED}


def test_an_image_without_an_nvme_driver_fails_the_nvme_boot(
        negative_reports: dict[str, tuple[StageReport, float]]) -> None:
    report, elapsed = negative_reports["no-nvme-driver"]
    failed = _failed(report)
    assert failed and "root file system not found" in failed[0].message, failed[0].message if failed else report
    assert elapsed < 600


def _processes() -> dict[int, tuple[int, str]]:
    """Every live (not zombie) process: pid -> (parent pid, command name), read from /proc."""
    found: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if rest[0] != "Z":
            found[int(entry.name)] = (int(rest[1]), name)
    return found


def _descendants(pid: int) -> dict[int, str]:
    """Every live process below pid (pid -> command name)."""
    children: dict[int, list[int]] = {}
    processes = _processes()
    for child, (parent, _) in processes.items():
        children.setdefault(parent, []).append(child)
    found: dict[int, str] = {}
    stack = list(children.get(pid, []))
    while stack:
        child = stack.pop()
        found[child] = processes[child][1]
        stack += children.get(child, [])
    return found


def test_sigterm_stops_the_vm_and_the_fake_platform(debian12_build: BuildFolder) -> None:
    """SIGTERM (a CI job's timeout, `kill`) stops `harness boot` like Ctrl-C: QEMU, dnsmasq and the platform daemon
    are stopped, the request log printed, and the scratch folder removed as --keep never asks."""
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "boot", str(debian12_build.path),
                             "--console", "file", "--keep", "never"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        below: dict[int, str] = {}
        while time.monotonic() < deadline and proc.poll() is None:
            below = _descendants(proc.pid)
            if any(name.startswith("qemu-system") for name in below.values()):
                break
            time.sleep(0.5)
        assert any(name.startswith("qemu-system") for name in below.values()), f"QEMU never started: {below}"
        assert any(name == "dnsmasq" for name in below.values()), below
        time.sleep(3)  # let the guest run a little
        below = _descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    alive = _processes()
    left = {pid: name for pid, name in below.items() if pid in alive}
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"left running after SIGTERM: {left}"
    assert proc.returncode == 0, err
    assert "stopping the VM" in err and "platform request log:" in err
    scratch = next(line for line in err.splitlines() if "ssh -i " in line).split("ssh -i ")[1].split("/id_")[0]
    assert not Path(scratch).exists(), f"scratch folder left: {scratch}"


def test_unknown_build_is_a_one_line_error() -> None:
    from harness.buildfolder import resolve

    with pytest.raises(HarnessError, match="no builds of 'nope'"):
        resolve("nope@latest")


def test_records_round_trip() -> None:
    record = Record(stage="verify", check="x", result=PASSED, firmware="bios", platform="azure")
    assert Record.from_json(record.to_json()) == record
