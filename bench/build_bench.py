"""Wall time of a cold and a warm `harness build debian-12` at the default disk size (30 GiB).

cold = a full build (--rebuild; the apt download cache may be warm, as on any machine that built
before: the first build ever also downloads ~110 MB); warm = an unchanged recipe and archive,
i.e. a build-cache hit (this includes the archive probe that keeps the cache key honest).
Targets on the 2-core machine: cold <= 120 s, warm <= 15 s.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from harness import recipe
from harness.builder.context import BuildOptions
from harness.builder.pipeline import build


def run() -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-build-", dir=Path(__file__).resolve().parents[1]) as tmp:
        os.environ["HARNESS_BUILDS"] = tmp
        r = recipe.load("debian-12")
        start = time.monotonic()
        cold = build(r, BuildOptions(rebuild=True))
        cold_s = time.monotonic() - start
        start = time.monotonic()
        warm = build(r, BuildOptions())
        warm_s = time.monotonic() - start
        manifest = cold.folder.manifest()
        return {
            "recipe": "debian-12", "disk_size_mib": manifest.disk.size_mib,
            "cold_s": round(cold_s, 1), "warm_s": round(warm_s, 1), "warm_cache_hit": warm.cache_hit,
            "cold_steps_s": dict(manifest.timings_s), "allocated_mib": manifest.disk.allocated_bytes // 2**20,
            "targets": {"cold_s": 120, "warm_s": 15},
        }
