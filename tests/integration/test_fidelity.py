"""Azure fidelity: the Azure Linux Agent provisions by itself (DHCP option 245, HostGAPlugin), transient
platform faults are survived, ProvisionGuestAgent is honoured, and the generic variant provisions from
a NoCloud seed."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness import recipe as recipe_mod
from harness.builder.context import BuildOptions
from harness.builder.pipeline import build
from harness.buildfolder import BuildFolder
from harness.enums import Firmware, Platform
from harness.results import FAILED, PASSED, SKIPPED, WARNING, StageReport
from harness.stages.verify import VerifyOptions
from harness.stages.verify import run as verify
from tests.conftest import TEST_DISK_MIB

pytestmark = [pytest.mark.qemu, pytest.mark.network]

TRANSIENT = ("wireserver:goalstate=500x2", "hostgaplugin:status=503x1")


@pytest.fixture(scope="session")
def waagent_build() -> BuildFolder:
    return build(recipe_mod.load("debian-12"), BuildOptions(agent="waagent", disk_size_mib=TEST_DISK_MIB)).folder


@pytest.fixture(scope="session")
def waagent_reports(waagent_build: BuildFolder) -> dict[str, StageReport]:
    """SeaBIOS with transient faults injected, OVMF with ProvisionGuestAgent=false: two boots side by side."""
    runs = {
        "bios": VerifyOptions(firmwares=(Firmware.BIOS,), faults=TRANSIENT),
        "uefi": VerifyOptions(firmwares=(Firmware.UEFI,), provision_guest_agent=False),
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {fw: pool.submit(verify, waagent_build, options) for fw, options in runs.items()}
        return {fw: future.result() for fw, future in futures.items()}


def failures(report: StageReport, firmware: str | None = None) -> list[str]:
    """Failed records; with `firmware`, only that boot's (verify.json also carries the other run's boot)."""
    return [f"{r.check}: {r.actual} / {r.message}" for r in report.records
            if r.result == FAILED and firmware in (None, r.firmware)]


def evidence_of(report: StageReport, boot: str) -> Path:
    """A boot's evidence folder (verify.json names it relative to the build folder)."""
    assert report.build is not None
    return report.build.path / report.details["boots"][boot]["evidence"]


def test_waagent_build_has_no_cloud_init(waagent_build: BuildFolder) -> None:
    manifest = waagent_build.manifest()
    assert manifest.agent == "waagent"
    names = {p.name for p in manifest.packages}
    assert "cloud-init" not in names and "waagent" in names
    assert any(s.key == "Provisioning.Agent" and s.value == "waagent" for s in manifest.settings)


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_waagent_provisions_under_both_firmwares(waagent_reports: dict[str, StageReport], firmware: str) -> None:
    report = waagent_reports[firmware]
    assert failures(report, firmware) == []
    passed = {r.check for r in report.records if r.result == PASSED and r.firmware == firmware}
    # waagent writes authorized_keys 0644: the key check passes on content and warns on the mode
    key = next(r for r in report.records if r.check == "C6 exactly the injected SSH key" and r.firmware == firmware)
    assert key.result in (PASSED, WARNING) and str(key.actual).startswith("1 key(s)"), key
    for check in ("C3 Ready reported by the guest's agent", "C5 host name applied",
                  "C7 password login disabled", "C8 custom data delivered", "E1 agent provisioning marker",
                  "E1 ProvisionGuestAgent honoured", "C10 SSH host keys generated on first boot"):
        assert check in passed, check
    skipped = {r.check for r in report.records if r.result == SKIPPED and r.firmware == firmware}
    assert "C1 cloud-init finished without errors" in skipped


def test_waagent_protocol_sequence_through_wireserver_and_hostgaplugin(
        waagent_reports: dict[str, StageReport]) -> None:
    evidence = evidence_of(waagent_reports["bios"], "bios-azure")
    requests = [json.loads(line) for line in (evidence / "platform-requests.jsonl").read_text().splitlines()]
    answered = [(r["server"], r.get("endpoint")) for r in requests if not r.get("fault")]
    order = [answered.index(step) for step in (("wireserver", "versions"), ("wireserver", "goalstate"),
                                                ("wireserver", "hostingEnvironmentConfig"),
                                                ("wireserver", "sharedConfig"), ("wireserver", "health"))]
    assert order == sorted(order)
    bodies = [r["body"] for r in requests if r.get("endpoint") == "health" and not r.get("fault")]
    assert any("<State>NotReady</State>" in b and "Provisioning" in b for b in bodies)
    assert any("<State>Ready</State>" in b for b in bodies)
    events = [json.loads(line) for line in (evidence / "platform-events.jsonl").read_text().splitlines()]
    statuses = [e for e in events if e["kind"] == "status"]
    assert statuses and statuses[-1]["agent_status"] == "Ready"
    assert ("hostgaplugin", "versions") in answered or ("hostgaplugin", "status") in answered
    # Debian's agent unit and the chain it waited for, as the guest's systemd saw it
    analyze = (evidence / "systemd-analyze.txt").read_text()
    assert re.search(r"^walinuxagent\.service [@+]", analyze, re.M), analyze[-1500:]


def test_transient_faults_are_survived_and_counted(waagent_reports: dict[str, StageReport]) -> None:
    boot = waagent_reports["bios"].details["boots"]["bios-azure"]
    assert boot["passed"]
    assert boot["faults_hit"].get("wireserver:goalstate") == 2
    assert boot["faults_hit"].get("hostgaplugin:status") == 1


def test_provision_guest_agent_false_still_reports_ready(waagent_reports: dict[str, StageReport]) -> None:
    boot = waagent_reports["uefi"].details["boots"]["uefi-azure"]
    assert boot["passed"] and boot["timings_s"]["ready_s"]
    evidence = evidence_of(waagent_reports["uefi"], "uefi-azure")
    events = [json.loads(line) for line in (evidence / "platform-events.jsonl").read_text().splitlines()]
    assert not [e for e in events if e["kind"] == "status"]  # no extension handler, no status uploads


@pytest.fixture(scope="session")
def generic_build() -> BuildFolder:
    return build(recipe_mod.load("debian-12-generic"), BuildOptions(disk_size_mib=TEST_DISK_MIB)).folder


# The NoCloud seed is a purpose the product names next to the fake Azure: one such boot runs in `make test`
# (debian-12-generic: the debian-12 recipe with NoCloud in its datasource list).
def test_generic_variant_provisions_from_a_nocloud_seed(generic_build: BuildFolder) -> None:
    report = verify(generic_build, VerifyOptions(firmwares=(Firmware.BIOS,), platforms=(Platform.NOCLOUD,)))
    assert failures(report) == []
    by_name = {r.check: r for r in report.records}
    assert by_name["C2 intended datasource used"].actual.startswith("DataSourceNoCloud")
    assert by_name["C8 custom data delivered"].result == PASSED
    assert by_name["C3 Ready reported by the guest's agent"].result == SKIPPED


def test_azure_locked_image_explains_instead_of_hanging(debian12_copy: BuildFolder) -> None:
    options = VerifyOptions(firmwares=(Firmware.BIOS, Firmware.UEFI), platforms=(Platform.NOCLOUD,))
    report = verify(debian12_copy, options)
    assert [r.result for r in report.records] == [SKIPPED, SKIPPED]
    assert "only lists the Azure datasource" in report.records[0].message
    assert "boots" in report.details and report.details["boots"] == {}
