"""Image definition features are proven, not declared: only passing results for this content set them, a declared
but unproven capability blocks publish, a Gen1 definition never gets a Gen2-only feature, and an existing
definition's features cannot change (local gallery and Azure alike)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.enums import Stage
from harness.errors import GateRefused, PublishError
from harness.publish import features, model
from harness.report import write_stage
from harness.results import PASSED, Record, StageReport
from tests.factories import DIGEST, make_build, make_manifest

TL_NVME = {"firmware": "uefi", "security_type": "trusted-launch", "disk_controller": "nvme", "passed": True}
BIOS = {"firmware": "bios", "security_type": "standard", "disk_controller": "scsi", "passed": True}


def build_with(tmp_path: Path, boots: dict[str, dict[str, object]], offline: tuple[str, ...] = (), **manifest: object):
    build = make_build(tmp_path, security_types=["standard", "trusted-launch"], disk_controllers=["scsi", "nvme"],
                       **manifest)
    write_stage(build, StageReport(Stage.CHECK, DIGEST, [Record("check", "A1", PASSED),
                                                         *(Record("check", name, PASSED) for name in offline)]))
    records = [Record("verify", "boot", PASSED if b["passed"] else "Failed", firmware=str(b["firmware"]),
                      platform="azure", configuration=name) for name, b in boots.items()]
    write_stage(build, StageReport(Stage.VERIFY, DIGEST, records, details={"boots": boots}))
    return build


def test_passing_boots_prove_gen2_features_and_the_audit_proves_accelerated_networking(tmp_path: Path) -> None:
    build = build_with(tmp_path, {"bios-azure": BIOS, "uefi-trusted-launch-nvme-azure": TL_NVME},
                       (features.ACCELERATED_NETWORKING_RULE,))
    found = features.evidence(build, DIGEST)
    assert dict(features.proven("V2", found)) == {"SecurityType": "TrustedLaunchSupported",
                                                  "DiskControllerTypes": "SCSI, NVMe",
                                                  "IsAcceleratedNetworkSupported": "True"}
    assert dict(features.proven("V1", found)) == {"IsAcceleratedNetworkSupported": "True"}  # never Gen2-only ones
    assert features.unproven("V2", build.manifest(), features.proven("V2", found)) == []


def test_a_failed_boot_or_other_content_proves_nothing(tmp_path: Path) -> None:
    build = build_with(tmp_path, {"bios-azure": BIOS, "uefi-trusted-launch-nvme-azure": {**TL_NVME, "passed": False}})
    assert features.proven("V2", features.evidence(build, DIGEST)) == ()
    assert features.proven("V2", features.evidence(build, "sha256-sparse4m:other")) == ()
    problems = features.unproven("V2", build.manifest(), ())
    assert len(problems) == 2 and "trusted-launch is declared" in problems[0]


def test_declared_but_unproven_blocks_publish_unless_forced(tmp_path: Path) -> None:
    build = build_with(tmp_path, {"bios-azure": BIOS, "uefi-azure": {**BIOS, "firmware": "uefi"}})
    unproven = [("V2", p) for p in features.unproven("V2", build.manifest(), ())]
    with pytest.raises(GateRefused, match="trusted-launch is declared"):
        model.gate(build, ("V1", "V2"), force_unverified=False, unproven=unproven)
    forced = model.gate(build, ("V1", "V2"), force_unverified=True, unproven=unproven)
    assert forced.forced and forced.problems_for("V1") == () and len(forced.problems_for("V2")) == 2


def test_an_existing_definition_cannot_change_its_features(tmp_path: Path) -> None:
    from harness.publish.local import _check_fits

    (plain,) = model.definitions_for(make_manifest(), ("V2",))
    proven = model.ImageDefinition(**{**plain.__dict__, "features": (("SecurityType", "TrustedLaunchSupported"),)})
    with pytest.raises(PublishError, match="cannot change the features") as info:
        _check_fits(plain, proven)
    assert "--definition" in info.value.hint
    assert model.ImageDefinition.from_json(proven.to_json()) == proven
