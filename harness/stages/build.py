"""Stage `build`: a recipe into a new build folder (disk.raw + manifest.json), or an identical one reused.

The steps themselves are harness/builder/pipeline.py (a flat list over one build context); this module
gives the build stage the same shape as every other: options in, one StageReport out.
"""

from __future__ import annotations

import time
from typing import Any

from harness.builder.context import BuildOptions
from harness.enums import Stage, Verdict
from harness.recipe import Recipe
from harness.results import StageReport

__all__ = ["BuildOptions", "plan", "run"]


def run(recipe: Recipe, options: BuildOptions) -> StageReport:
    """Build the recipe (or reuse an identical build: a cache hit); the report's `build` is the folder."""
    from harness.builder import pipeline

    start = time.monotonic()
    result = pipeline.build(recipe, options)
    manifest = result.folder.manifest()
    report = StageReport(
        stage=Stage.BUILD, content_digest=manifest.content_digest,
        verdict=Verdict.CACHE_HIT if result.cache_hit else Verdict.PASSED,
        duration_s=round(time.monotonic() - start, 1),
        artifacts={"disk": result.folder.disk().name, "manifest": result.folder.manifest_path.name},
        details={"cache_hit": result.cache_hit, "agent": manifest.agent.value, "kernel": manifest.kernel_version},
        summary=f"{'reused ' if result.cache_hit else ''}{result.folder.build_id}")
    report.build = result.folder
    return report


def plan(recipe: Recipe, options: BuildOptions) -> dict[str, Any]:
    """What a build would run and write, without network or root (`harness build --plan`)."""
    from harness.builder import pipeline

    return pipeline.plan(recipe, options)
