"""Pure publishing rules: latest resolution, option parsing, generations/definitions, the publish gate."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from harness.buildfolder import BuildFolder
from harness.commands.publish import parse_target
from harness.enums import Stage
from harness.errors import PublishError, UsageError
from harness.manifest import Manifest
from harness.publish import model
from harness.publish.model import ImageVersion, TargetRegion
from harness.report import write_stage
from harness.results import FAILED, PASSED, Record, StageReport
from harness.stages.publish import LocalTarget
from tests.factories import make_build, make_manifest

DIGEST = "sha256-sparse4m:" + "ab" * 32


def _v(version: str, *, excluded: bool = False, eol: str | None = None) -> ImageVersion:
    return ImageVersion(version=version, content_digest=f"d-{version}", published="2026-01-01T00:00:00Z",
                        source_build="/b", build_id="b", exclude_from_latest=excluded, end_of_life=eol)


# -- latest -----------------------------------------------------------------------------------------

def test_latest_is_highest_version_numerically() -> None:
    found = model.latest([_v("1.9.0"), _v("1.10.0"), _v("1.2.3")])
    assert found is not None and found.version == "1.10.0"


def test_latest_skips_excluded_and_past_end_of_life() -> None:
    items = [_v("1.0.0"), _v("1.0.1", eol="2030-06-30"), _v("1.0.2", excluded=True)]
    before = model.latest(items, dt.date(2030, 6, 30))  # the end-of-life day itself still counts
    after = model.latest(items, dt.date(2030, 7, 1))
    assert before is not None and before.version == "1.0.1"
    assert after is not None and after.version == "1.0.0"


def test_latest_none_when_nothing_eligible() -> None:
    assert model.latest([_v("1.0.0", excluded=True), _v("2.0.0", eol="2020-01-01")], dt.date(2026, 1, 1)) is None
    assert model.latest([]) is None


def test_image_version_json_round_trip_keeps_extra_fields() -> None:
    item = ImageVersion(version="2026.1126.0", content_digest=DIGEST, published="t", source_build="/b", build_id="x",
                        target_regions=(TargetRegion("westeurope", 2),), force_unverified=True,
                        unverified_reasons=("verify missing",), extra={"definition": "d-gen1"})
    data = item.to_json()
    assert data["definition"] == "d-gen1"
    assert data["target_regions"] == [{"name": "westeurope", "replicas": 2, "storage_account_type": "Standard_LRS"}]
    assert ImageVersion.from_json(data) == item


# -- option parsing ---------------------------------------------------------------------------------

def test_target_regions_parse_and_default() -> None:
    assert model.parse_target_regions(None) == (TargetRegion("local", 1),)
    assert model.parse_target_regions(["westeurope=2", "eastus"]) == (TargetRegion("westeurope", 2),
                                                                      TargetRegion("eastus", 1))


@pytest.mark.parametrize("text", ["westeurope=0", "westeurope=x", "west/europe=1", "=2", "eu=101"])
def test_bad_target_region_refused(text: str) -> None:
    with pytest.raises(PublishError, match="target region"):
        model.parse_target_region(text)


def test_an_excluded_region_must_be_a_target_region() -> None:
    regions = model.parse_target_regions(["westeurope=2", "eastus"], excluded=["EastUS"])
    assert regions == (TargetRegion("westeurope", 2), TargetRegion("eastus", 1, exclude_from_latest=True))
    assert regions[1].to_json() == {"name": "eastus", "replicas": 1, "storage_account_type": "Standard_LRS",
                                    "exclude_from_latest": True}
    assert TargetRegion.from_json(regions[1].to_json()) == regions[1]
    assert "exclude_from_latest" not in regions[0].to_json()  # galleries written before stay byte-identical
    with pytest.raises(PublishError, match="--exclude-region northeurope is not a target region") as err:
        model.parse_target_regions(["westeurope=2"], excluded=["northeurope"])
    assert "--target-region northeurope=REPLICAS" in err.value.hint


def test_duplicate_target_region_refused() -> None:
    with pytest.raises(PublishError, match="given twice: eu"):
        model.parse_target_regions(["eu=1", "eu=2"])


@pytest.mark.parametrize("text", ["2027-13-01", "27-01-01", "tomorrow", "2027-02-30"])
def test_bad_end_of_life_refused(text: str) -> None:
    with pytest.raises(PublishError, match="not a date"):
        model.parse_end_of_life(text)


def test_end_of_life_and_version_pass_through() -> None:
    assert model.parse_end_of_life("2027-02-28") == "2027-02-28"
    assert model.parse_end_of_life(None) is None
    assert model.check_version("auto") == "auto"
    assert model.check_version("1.2.3") == "1.2.3"
    with pytest.raises(PublishError):
        model.check_version("1.2")


def test_parse_target() -> None:
    args = argparse.Namespace()
    assert parse_target("local:/tmp/g", args) == LocalTarget(Path("/tmp/g"))
    assert parse_target("local", args) == LocalTarget(Path("gallery"))
    with pytest.raises(UsageError, match="unknown publish target"):
        parse_target("s3:bucket", args)


# -- generations and definitions --------------------------------------------------------------------

def _manifest(**changes: Any) -> Manifest:
    return make_manifest(**changes)


def test_generations_default_to_the_build_and_refuse_unbuilt() -> None:
    assert model.generations_to_publish(_manifest(), None) == ("V1", "V2")
    assert model.generations_to_publish(_manifest(), "both") == ("V1", "V2")
    assert model.generations_to_publish(_manifest(), "V2") == ("V2",)
    with pytest.raises(PublishError, match="made for V1, not V2"):
        model.generations_to_publish(_manifest(generations=["V1"]), "V2")
    with pytest.raises(PublishError, match="unknown"):
        model.generations_to_publish(_manifest(), "V3")


def test_hybrid_build_gives_one_definition_per_generation() -> None:
    defs = model.definitions_for(_manifest(), ("V1", "V2"))
    assert [(d.name, d.hyper_v_generation, d.os_state, d.firmware) for d in defs] == [
        ("debian-12-gen1", "V1", "Generalized", "bios"), ("debian-12-gen2", "V2", "Generalized", "uefi")]
    assert {(d.publisher, d.offer, d.sku, d.architecture) for d in defs} == {("harness", "debian", "12", "x64")}


def test_specialized_build_gets_specialized_definition() -> None:
    (only,) = model.definitions_for(_manifest(os_state="specialized"), ("V2",))
    assert only.os_state == "Specialized"
    assert only.name == "debian-12-gen2-specialized"


def test_definition_names_from_options() -> None:
    manifest = _manifest()
    assert model.definition_names(("V2",), ["mine"], manifest) == {"V2": "mine"}
    assert model.definition_names(("V1", "V2"), ["v1=a", "V2=b"], manifest) == {"V1": "a", "V2": "b"}
    assert model.definition_names(("V1", "V2"), ["V2=b"], manifest) == {"V1": "debian-12-gen1", "V2": "b"}
    with pytest.raises(PublishError, match="ambiguous"):
        model.definition_names(("V1", "V2"), ["mine"], manifest)
    with pytest.raises(PublishError, match="different image definitions"):
        model.definition_names(("V1", "V2"), ["V1=x", "V2=x"], manifest)
    with pytest.raises(PublishError, match="not being published"):
        model.definition_names(("V1",), ["V2=x"], manifest)
    with pytest.raises(PublishError, match="invalid"):
        model.definition_names(("V1",), [".hidden"], manifest)


def test_definition_mismatches_name_each_property() -> None:
    (gen1,) = model.definitions_for(_manifest(), ("V1",))
    (spec2,) = model.definitions_for(_manifest(os_state="specialized"), ("V2",))
    problems = gen1.mismatches(spec2)
    assert len(problems) == 2
    assert "os_state is 'Generalized', the build needs 'Specialized'" in problems


# -- the gate ---------------------------------------------------------------------------------------

def _build(tmp_path: Path, *, check: str | None = PASSED, verify: dict[str, str] | None = None,
           digest: str = DIGEST) -> BuildFolder:
    build = make_build(tmp_path)
    if check is not None:
        write_stage(build, StageReport(Stage.CHECK, digest, [Record("check", "azure-readiness", check)]))
    verify = {"bios": PASSED, "uefi": PASSED} if verify is None else verify
    if verify:
        write_stage(build, StageReport(Stage.VERIFY, digest, [Record("verify", "boot", result, firmware=fw,
                                                                 platform="azure") for fw, result in verify.items()]))
    return build


def test_gate_passes_a_verified_build(tmp_path: Path) -> None:
    result = model.gate(_build(tmp_path), ("V1", "V2"), force_unverified=False)
    assert result.verified and not result.forced


def test_gate_refuses_v2_when_only_bios_verified(tmp_path: Path) -> None:
    build = _build(tmp_path, verify={"bios": PASSED, "uefi": FAILED})
    assert model.gate(build, ("V1",), force_unverified=False).verified
    with pytest.raises(PublishError, match=r"verify has not passed on uefi \(V2\)"):
        model.gate(build, ("V1", "V2"), force_unverified=False)


def test_gate_refuses_results_for_other_content(tmp_path: Path) -> None:
    build = _build(tmp_path, digest="sha256-sparse4m:other")
    with pytest.raises(PublishError, match="check has not passed") as info:
        model.gate(build, ("V1",), force_unverified=False)
    assert "--force-unverified" in info.value.hint


def test_gate_forced_returns_problems_to_record(tmp_path: Path) -> None:
    build = _build(tmp_path, check=None, verify={})
    result = model.gate(build, ("V1", "V2"), force_unverified=True)
    assert result.forced and not result.verified
    assert len(result.problems) == 3  # check, bios, uefi
    assert result.problems_for("V1") == ("check has not passed for content " + DIGEST,
                                         "verify has not passed on bios (V1) for this content")


def test_forced_gate_keeps_problems_per_generation(tmp_path: Path) -> None:
    build = _build(tmp_path, verify={"bios": PASSED})
    result = model.gate(build, ("V1", "V2"), force_unverified=True)
    assert result.forced
    assert result.problems_for("V1") == ()
    assert result.problems_for("V2") == ("verify has not passed on uefi (V2) for this content",)


def test_force_flag_not_recorded_when_build_is_verified(tmp_path: Path) -> None:
    result = model.gate(_build(tmp_path), ("V2",), force_unverified=True)
    assert result.verified and not result.forced


# -- the VHD pre-flight check ------------------------------------------------------------------------

def test_vhd_problems_check_size_and_every_rule(tmp_path: Path) -> None:
    from harness import vhd

    good = tmp_path / "good.vhd"
    good.write_bytes(bytes(32 * 1024 * 1024))
    vhd.to_fixed_vhd(good)
    assert model.vhd_problems(good, 32 * 1024 * 1024) == []
    size = 32 * 1024 * 1024 + 512
    assert model.vhd_problems(good, 64 * 1024 * 1024) == [
        f"good.vhd is {size} bytes, expected the disk size {64 * 1024 * 1024} + 512"]
    raw = tmp_path / "raw.vhd"
    raw.write_bytes(bytes(size))
    assert any("footer cookie is damaged" in p for p in model.vhd_problems(raw, 32 * 1024 * 1024))
    assert model.vhd_problems(tmp_path / "missing.vhd", 1) == [f"{tmp_path / 'missing.vhd'} does not exist"]
