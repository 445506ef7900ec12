"""Stage `check`: the offline audit of a build's disk (no boot, no mount), written to check.json."""

from __future__ import annotations

import time
from dataclasses import dataclass

from harness.buildfolder import BuildFolder
from harness.enums import Stage
from harness.integrity import require_unchanged
from harness.log import stage
from harness.report import write_stage
from harness.results import StageReport


@dataclass(frozen=True)
class CheckOptions:
    """The audit has no knobs yet; the type keeps every stage's signature the same."""


def run(build: BuildFolder, options: CheckOptions = CheckOptions()) -> StageReport:
    """Audit the build offline and write check.json; the report fails when a rule failed."""
    from harness.checks.audit import audit

    start = time.monotonic()
    with stage("check", f"{build.recipe_name} {build.build_id}"):
        manifest = require_unchanged(build, "check")
        result = audit(build)
        report = StageReport(
            stage=Stage.CHECK, content_digest=manifest.content_digest, records=result.records,
            duration_s=round(time.monotonic() - start, 1),
            artifacts={"check": build.stage_file("check").name},
            details={"declared_settings": result.declared_settings,
                     "deviations": [d.to_json() for d in result.deviations],
                     "selftest": result.selftest})
        report.summary = report.counts_text()
        write_stage(build, report)
    return report
