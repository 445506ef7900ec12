"""Cold and warm `harness run debian-12` (default 30 GiB disk, both firmwares, local gallery).

cold = a fresh builds folder (full build); warm = the same command again: a build-cache hit, the
audit, verify booting both firmwares again, convert and publish as no-ops.
Targets on the 2-core TCG machine: cold <= 240 s, warm <= 90 s.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from harness import recipe
from harness.enums import Stage
from harness.stages import pipeline
from harness.stages.pipeline import RunOptions
from harness.stages.publish import LocalTarget, PublishOptions


def once(gallery: Path) -> tuple[float, dict[str, object]]:
    """`harness run debian-12 --to local:GALLERY` (every stage, both firmwares)."""
    start = time.monotonic()
    result = pipeline.run(recipe.load("debian-12"), RunOptions(publish=PublishOptions(target=LocalTarget(gallery))))
    elapsed = time.monotonic() - start
    stages = {o.stage.value: {"result": o.verdict.value, "s": o.duration_s} for o in result.outcomes}
    verify = result.outcome(Stage.VERIFY).report
    boots = verify.details.get("boots", {}) if verify is not None else {}
    ready = {name: boot.get("timings_s", {}).get("ready_s") for name, boot in boots.items()}
    return elapsed, {"stages": stages, "ready_s": ready, "passed": result.passed}


def run() -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-run-", dir=Path(__file__).resolve().parents[1]) as tmp:
        os.environ["HARNESS_BUILDS"] = str(Path(tmp) / "builds")
        gallery = Path(tmp) / "gallery"
        cold_s, cold = once(gallery)
        warm_s, warm = once(gallery)
        return {"cold_s": round(cold_s, 1), "warm_s": round(warm_s, 1), "cold": cold, "warm": warm,
                "targets": {"cold_s": 240, "warm_s": 90}}
