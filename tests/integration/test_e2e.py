"""`harness run debian-12` end to end on a fresh build folder, then again with nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.buildfolder import BuildFolder
from harness.enums import Stage
from harness.publish.local import LocalGallery
from harness.stages.pipeline import RunReport
from tests.integration.pipeline_fixtures import run_harness

pytestmark = [pytest.mark.e2e, pytest.mark.qemu, pytest.mark.network]


def test_first_run_builds_verifies_converts_and_publishes(e2e_first_run: RunReport, e2e_dirs: dict[str, Path]) -> None:
    summary = e2e_first_run
    assert [(o.stage, o.verdict) for o in summary.outcomes] == [
        ("build", "passed"), ("check", "passed"), ("verify", "passed"), ("convert", "passed"), ("publish", "passed")]
    build = summary.build
    assert build is not None and build.path.parent.parent == e2e_dirs["builds"]
    for name in ("disk.vhd", "manifest.json", "check.json", "verify.json", "publish.json", "results.json",
                 "junit.xml", "summary.md", "report.html", "sbom.spdx.json", "verify/bios-azure/serial.log",
                 "verify/uefi-trusted-launch-nvme-azure/serial.log", "verify/bios-azure/platform-requests.jsonl",
                 "verify/uefi-trusted-launch-nvme-azure/qemu-argv.txt"):
        assert (build.path / name).exists(), name
    assert not (build.path / "disk.raw").exists()
    results = json.loads((build.path / "results.json").read_text())
    assert set(results["stages"]) == {"check", "verify", "publish"}
    assert all(stage["passed"] for stage in results["stages"].values())
    assert "<testsuites" in (build.path / "junit.xml").read_text()
    gallery = LocalGallery.at(e2e_dirs["gallery"])
    names = sorted(d.name for d in gallery.definitions())
    assert names == ["debian-12-gen1", "debian-12-gen2"]
    for name in names:
        latest = gallery.latest(name)
        assert latest is not None and latest.content_digest == build.manifest().content_digest
    # features proven by this content's boots and audit, only on the definition they apply to
    gen1, gen2 = (dict(gallery.definition(n).features) for n in names)
    assert gen2 == {"SecurityType": "TrustedLaunchSupported", "DiskControllerTypes": "SCSI, NVMe",
                    "IsAcceleratedNetworkSupported": "True"}
    assert gen1 == {"IsAcceleratedNetworkSupported": "True"}
    assert build.manifest().boot_chain == "signed"


def test_second_run_is_a_cache_hit_and_publishes_nothing_new(e2e_first_run: RunReport,
                                                               e2e_dirs: dict[str, Path]) -> None:
    first_build = e2e_first_run.build
    assert first_build is not None
    gallery = LocalGallery.at(e2e_dirs["gallery"])
    before = {d.name: [v.version for v in gallery.versions(d.name)] for d in gallery.definitions()}
    # Nothing changed: build is a cache hit, convert and publish are no-ops. The second run skips
    # verify to keep the test budget (each boot costs minutes under TCG); `make bench` times the full
    # warm run, verify of both firmwares included.
    second = run_harness(e2e_dirs, "build,check,convert,publish")
    assert second.build is not None and second.build.path == first_build.path
    assert [(o.stage, o.verdict) for o in second.outcomes] == [
        ("build", "cache hit"), ("check", "passed"), ("convert", "no-op"), ("publish", "no-op")]
    assert second.passed
    after = {d.name: [v.version for v in gallery.versions(d.name)] for d in gallery.definitions()}
    assert after == before
    publish = second.outcome(Stage.PUBLISH).report
    assert publish is not None and all(not item["created"] for item in publish.details["published"])


def test_failing_gate_stops_before_publish(debian12_build: BuildFolder, tmp_path: Path) -> None:
    """A defect planted in a copy of the recipe's customization fails the audit; nothing is published."""
    from harness import recipe
    from harness.errors import GateError
    from harness.stages import pipeline
    from tests.conftest import copy_build
    from tests.integration.pipeline_fixtures import run_options
    from tests.integration.plant import rehash, remove

    broken = copy_build(debian12_build, tmp_path / "builds")
    remove(broken, "/etc/cloud/cloud.cfg.d/91-azure_datasource.cfg")
    rehash(broken)  # as if the broken image had been built: the gate, not the integrity check, must stop it
    gallery = tmp_path / "gallery"
    # harness run debian-12 --stages check,verify,convert,publish --build BROKEN --to local:GALLERY
    options = run_options(gallery, "check,verify,convert,publish", existing_build=str(broken.path))
    summary = pipeline.run(recipe.load("debian-12"), options)
    assert [(o.stage, o.verdict) for o in summary.outcomes] == [
        ("check", "failed"), ("verify", "not run"), ("convert", "not run"), ("publish", "not run")]
    assert isinstance(summary.error, GateError)
    assert summary.build is not None and summary.build.path == broken.path
    assert "A11" in summary.outcomes[0].detail or "datasource" in summary.outcomes[0].detail
    assert not gallery.exists() or not list(gallery.glob("*/*/version.json"))
    assert (broken.path / "disk.raw").exists()  # never converted either
