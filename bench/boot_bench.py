"""Boot -> Ready seconds per firmware under the harness's accelerator (TCG here), for both agents.

Each boot: a fresh overlay of the built debian-12 image on the fake Azure platform, timed from
QEMU's start to the agent's accepted Ready report (plus first console byte, the kernel's banner, i.e.
the end of firmware + bootloader, first IMDS request and SSH). Targets on TCG: cloud-init <= 35 s,
waagent <= 60 s.

Emulated boots on a shared 2-core host vary by +-20 % from run to run, so each boot is repeated
(BOOT_BENCH_RUNS, default 3) and the median Ready is the figure; every run's timings are kept.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from harness import recipe
from harness.builder.context import BuildOptions
from harness.builder.pipeline import build
from harness.verify.boot import BootRequest, BootSession
from harness.verify.prepare import choose_accel

DISK_MIB = 4096


def boot(folder_path: Path, firmware: str) -> dict[str, object]:
    from harness.buildfolder import BuildFolder

    folder = BuildFolder(folder_path)
    accel = choose_accel(folder, "auto")
    request = BootRequest(build=folder, firmware=firmware, platform="azure", accel=accel, keep="never",
                          timeout_s=600)
    with BootSession(request) as session:
        session.wait_ready()
        session.guest(timeout_s=600)
        timings = session.timings.to_json()
    return {"accel": accel.accel, **timings}


def _series(boots: list[dict[str, object]], key: str) -> list[float]:
    return [v for v in (b.get(key) for b in boots) if isinstance(v, float)]


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def run() -> dict[str, object]:
    os.environ.setdefault("HARNESS_BUILDS", str(Path(__file__).resolve().parents[1] / ".test-builds"))
    runs = int(os.environ.get("BOOT_BENCH_RUNS", "3"))
    results: dict[str, object] = {}
    for agent in ("cloud-init", "waagent"):
        folder = build(recipe.load("debian-12"), BuildOptions(agent=agent, disk_size_mib=DISK_MIB)).folder
        for firmware in ("bios", "uefi"):
            boots = [boot(folder.path, firmware) for _ in range(runs)]
            ready, kernel = _series(boots, "ready_s"), _series(boots, "kernel_s")
            results[f"{agent}-{firmware}"] = {
                "median_ready_s": _median(ready), "median_kernel_s": _median(kernel), "ready_s": ready, "runs": boots}
    results["targets_ready_s"] = {"cloud-init": 35, "waagent": 60}
    return results
