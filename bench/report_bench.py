"""report.html generation time: a build of 500 packages and 60 records (check + two verify boots + publish), the
previous build and 18 more of the same recipe for the Ready trend, a 300 KB systemd-analyze plot per boot, and a
local gallery version to diff against. Fake data written through harness.report, no VM.

Figures: `merge` (results.json, junit.xml, summary.md and report.html, as after every stage) and report.html
alone (collect + render + atomic write), median and worst of RUNS; target: report.html under 1 s.
"""

from __future__ import annotations

import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import htmlreport
from harness.buildfolder import BuildFolder, write_json_atomic
from harness.enums import Stage, Verdict
from harness.report import merge, write_stage
from harness.results import FAILED, PASSED, WARNING, Record, StageReport, load_stage

RUNS = 7
BUILDS = 20
PACKAGES = 500
BOOTS = ("bios-azure", "uefi-azure")
SEED = 20261203
TARGET_S = 1.0


def manifest(recipe: str, build_id: str, digest: str, rng: random.Random) -> dict[str, Any]:
    packages = [{"name": f"package-{i:03d}", "version": f"{1 + i % 7}.{rng.randint(0, 3)}-{rng.randint(1, 2)}",
                 "arch": "amd64"} for i in range(PACKAGES)]
    return {"schema": 2, "recipe": recipe, "build_id": build_id, "family": "apt", "release": "bookworm",
            "agent": "cloud-init", "content_digest": digest, "os_state": "generalized", "generations": ["V1", "V2"],
            "gallery": {"publisher": "harness", "offer": "debian", "sku": "12"}, "kernel_version": "6.1.0-28-cloud",
            "disk": {"file": "disk.raw", "size_bytes": 4096 * 1024 * 1024, "layout": []}, "packages": packages}


def plot_svg(rng: random.Random, units: int = 1500) -> str:
    """About 300 KB in the shape of `systemd-analyze plot` (one bar and one label per unit)."""
    rows = "".join(f'<rect class="activating" x="{rng.randint(0, 800)}" y="{i * 20}" width="{rng.randint(1, 200)}" '
                   f'height="19"/><text x="10" y="{i * 20 + 14}">unit-{i}.service ({rng.randint(1, 900)}ms)</text>\n'
                   for i in range(units))
    return f'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="{units * 20}">' \
           f"\n{rows}</svg>\n"


def verify_report(build: BuildFolder, digest: str, rng: random.Random) -> StageReport:
    records, boots = [], {}
    for name in BOOTS:
        firmware = name.split("-")[0]
        records += [Record("verify", f"B{i} in-guest check", PASSED if i % 9 else WARNING, actual="ok",
                           firmware=firmware, platform="azure") for i in range(22)]
        ready = round(rng.uniform(45, 70), 1)
        boots[name] = {"accel": "tcg", "evidence": f"verify/{name}", "passed": True, "timings_s": {
            "first_serial_s": 1.2, "kernel_s": 9.5, "imds_first_s": 21.0, "goalstate_first_s": 22.0,
            "ready_s": ready, "ssh_ready_s": ready + 3, "checks_done_s": ready + 15}}
        evidence = build.path / "verify" / name
        evidence.mkdir(parents=True, exist_ok=True)
        (evidence / "serial.log").write_text("console\n" * 2000)
        (evidence / "journal.txt").write_text("journal\n" * 2000)
        (evidence / "systemd-analyze-plot.svg").write_text(plot_svg(rng))
    records[3] = Record("verify", "B4 failed units", FAILED, message="<script>x</script> failed", firmware="bios",
                        platform="azure")
    return StageReport(Stage.VERIFY, digest, records, details={"accel": "tcg", "boots": boots})


def make_build(root: Path, index: int, gallery: Path, rng: random.Random) -> BuildFolder:
    build = BuildFolder(root / "debian-12" / f"2026{index:04d}-000000-{index:06x}")
    build.path.mkdir(parents=True)
    digest = f"sha256-sparse4m:{index:064x}"
    write_json_atomic(build.manifest_path, manifest("debian-12", build.build_id, digest, rng))
    write_stage(build, StageReport(Stage.CHECK, digest, [
        Record("check", f"A{i} offline rule", PASSED if i % 5 else WARNING, message="deviation" if i % 5 == 0 else "")
        for i in range(15)]))
    write_stage(build, verify_report(build, digest, rng))
    history = [{"time": f"2026-12-0{i + 1}T00:00:00Z", "target": f"local:{gallery}", "result": "passed",
                "versions": {"debian-12-gen1": f"2026.120{i + 1}.0"}} for i in range(3)]
    write_stage(build, StageReport(Stage.PUBLISH, digest, [Record("publish", "publish to debian-12-gen1", PASSED)],
                                   verdict=Verdict.PASSED, details={"target": f"local:{gallery}", "history": history}))
    return build


def make_gallery(gallery: Path, source: BuildFolder) -> None:
    version = gallery / "debian-12-gen1" / "2026.1201.0"
    version.mkdir(parents=True)
    write_json_atomic(gallery / "debian-12-gen1" / "definition.json", {
        "name": "debian-12-gen1", "publisher": "harness", "offer": "debian", "sku": "12", "os_state": "Generalized",
        "hyper_v_generation": "V1"})
    manifest_data = source.manifest().to_json()
    write_json_atomic(version / "version.json", {"version": "2026.1201.0", "content_digest": manifest_data[
        "content_digest"], "build_id": source.build_id, "recipe": "debian-12"})
    for name in ("manifest.json", "results.json", "verify.json"):
        shutil.copyfile(source.path / name, version / name)


def timed(action: Any) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def run() -> dict[str, object]:
    rng = random.Random(SEED)  # noqa: S311 - reproducible fake data, nothing secret
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        root, gallery = Path(tmp) / "builds", Path(tmp) / "gallery"
        builds = [make_build(root, i, gallery, rng) for i in range(BUILDS)]
        make_gallery(gallery, builds[0])
        build = builds[-1]
        manifest_obj = build.manifest()
        stages = {str(s): r for s in (Stage.CHECK, Stage.VERIFY, Stage.PUBLISH)
                  if (r := load_stage(build, s)) is not None}
        records = sum(len(r.records) for r in stages.values())
        merge_s = [timed(lambda: merge(build)) for _ in range(RUNS)]
        html_s = [timed(lambda: htmlreport.write(build, manifest_obj, stages)) for _ in range(RUNS)]
        size = (build.path / htmlreport.REPORT).stat().st_size
    return {"packages": PACKAGES, "records": records, "trend_builds": BUILDS, "report_bytes": size,
            "report_html_median_s": round(statistics.median(html_s), 3), "report_html_max_s": round(max(html_s), 3),
            "merge_median_s": round(statistics.median(merge_s), 3), "merge_max_s": round(max(merge_s), 3),
            "target_s": TARGET_S}
