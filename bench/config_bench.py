"""Boot -> Ready seconds per Gen2 VM configuration (issue 17's targets): standard vs trusted-launch, SCSI vs NVMe.

Each boot: a fresh overlay of the built debian-12 image (cloud-init) on the fake Azure platform, one boot at a
time, timed from QEMU's start to the agent's accepted Ready report (first console byte and the kernel's banner
too). Targets: trusted-launch Ready <= 1.3x standard; nvme Ready <= 1.1x scsi. CONFIG_BENCH_RUNS (default 3)
boots per configuration, interleaved so that a change of host speed hits every configuration alike; the
median is the figure.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from harness import recipe
from harness.builder.context import BuildOptions
from harness.builder.pipeline import build
from harness.buildfolder import BuildFolder
from harness.enums import DiskController, SecurityType
from harness.verify.boot import BootRequest, BootSession
from harness.verify.prepare import choose_accel

DISK_MIB = 4096
CONFIGURATIONS = (
    (SecurityType.STANDARD, DiskController.SCSI),
    (SecurityType.TRUSTED_LAUNCH, DiskController.SCSI),
    (SecurityType.STANDARD, DiskController.NVME),
    (SecurityType.TRUSTED_LAUNCH, DiskController.NVME),
)


def boot(folder: BuildFolder, security_type: str, disk_controller: str) -> dict[str, object]:
    accel = choose_accel(folder, "auto")
    request = BootRequest(build=folder, firmware="uefi", platform="azure", accel=accel, keep="never",
                          timeout_s=600, security_type=security_type, disk_controller=disk_controller)
    with BootSession(request) as session:
        session.wait_ready()
        return {"accel": accel.accel, **session.timings.to_json()}


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def run() -> dict[str, object]:
    os.environ.setdefault("HARNESS_BUILDS", str(Path(__file__).resolve().parents[1] / ".test-builds"))
    runs = int(os.environ.get("CONFIG_BENCH_RUNS", "3"))
    folder = build(recipe.load("debian-12"), BuildOptions(disk_size_mib=DISK_MIB)).folder
    boots: dict[str, list[dict[str, object]]] = {}
    for _ in range(runs):
        for security_type, controller in CONFIGURATIONS:
            name = f"uefi-{security_type}-{controller}"
            boots.setdefault(name, []).append(boot(folder, security_type, controller))
    results: dict[str, object] = {}
    for name, series in boots.items():
        ready = [float(v) for v in (b.get("ready_s") for b in series) if isinstance(v, (int, float))]
        kernel = [float(v) for v in (b.get("kernel_s") for b in series) if isinstance(v, (int, float))]
        results[name] = {"median_ready_s": _median(ready), "median_kernel_s": _median(kernel), "ready_s": ready,
                         "runs": series}

    def ratio(a: str, b: str) -> float | None:
        x, y = (results[n]["median_ready_s"] for n in (a, b))  # type: ignore[index]
        return round(x / y, 2) if isinstance(x, float) and isinstance(y, float) and y else None

    results["ratios"] = {
        "trusted_launch_over_standard_scsi": ratio("uefi-trusted-launch-scsi", "uefi-standard-scsi"),
        "nvme_over_scsi_standard": ratio("uefi-standard-nvme", "uefi-standard-scsi"),
        "trusted_launch_nvme_over_standard_scsi": ratio("uefi-trusted-launch-nvme", "uefi-standard-scsi"),
    }
    results["targets"] = {"trusted_launch_over_standard": 1.3, "nvme_over_scsi": 1.1}
    return results
