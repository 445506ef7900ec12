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

from harness.cli import make_parser
from harness.runner import run_pipeline


def once(gallery: Path) -> tuple[float, dict[str, object]]:
    args = make_parser().parse_args(["run", "debian-12", "--to", f"local:{gallery}"])
    start = time.monotonic()
    summary = run_pipeline(args)
    elapsed = time.monotonic() - start
    stages = {o.name: {"result": o.result, "s": o.duration_s} for o in summary.outcomes}
    return elapsed, {"stages": stages, "ready_s": summary.facts.get("ready_s"), "passed": summary.passed}


def run() -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-run-", dir=Path(__file__).resolve().parents[1]) as tmp:
        os.environ["HARNESS_BUILDS"] = str(Path(tmp) / "builds")
        gallery = Path(tmp) / "gallery"
        cold_s, cold = once(gallery)
        warm_s, warm = once(gallery)
        return {"cold_s": round(cold_s, 1), "warm_s": round(warm_s, 1), "cold": cold, "warm": warm,
                "targets": {"cold_s": 240, "warm_s": 90}}
