"""SSH-ready -> every in-guest check done, per boot, with the checks run as one batch (one script, one SSH round
trip); and, in the same boot right after, the same probes the way they ran before (one SSH command each). The batch
first waits for the guest to settle (systemd's boot finished, cloud-init's last stage done): reported apart.

debian-12 (cloud-init) on the fake Azure platform under SeaBIOS, BOOT_BENCH_RUNS boots one after the other
(default 3, median reported). Target under TCG: batch <= 10 s per boot, every check still reported separately.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

from harness import recipe
from harness.builder.context import BuildOptions
from harness.builder.pipeline import build
from harness.buildfolder import BuildFolder
from harness.enums import Firmware, KeepPolicy, Platform
from harness.stages.verify import provisioned_guest, recipe_of
from harness.verify import guestchecks
from harness.verify.boot import BootRequest, BootSession
from harness.verify.prepare import choose_accel, image_host_keys

DISK_MIB = 4096


def one_boot(folder: BuildFolder) -> dict[str, object]:
    manifest = folder.manifest()
    request = BootRequest(build=folder, firmware=Firmware.BIOS, platform=Platform.AZURE,
                          accel=choose_accel(folder, "auto"), keep=KeepPolicy.NEVER, timeout_s=600)
    with BootSession(request) as session:
        ctx = provisioned_guest(session, manifest, recipe_of(manifest), image_host_keys(folder))
        start = time.monotonic()
        records = guestchecks.run_all(ctx, session.evidence)
        batch_s = time.monotonic() - start
        # the guest finishing its own boot (systemd settled, cloud-init's last stage done) is part of the batch
        settle_s = sum(ctx.out[k].duration_s for k in ("system_running", "cloud_init_wait") if k in ctx.out)
        start = time.monotonic()
        for probe in guestchecks.PROBES.values():  # the former way: one SSH round trip per command
            ctx.guest.run(probe.shell(), timeout_s=300)
        for probe in guestchecks.GUEST_LOGS.values():
            ctx.guest.run(probe.shell(), timeout_s=300)
        one_by_one_s = time.monotonic() - start
        timings = session.timings.to_json()
    return {"batch_s": round(batch_s, 1), "settle_s": round(settle_s, 1),
            "checks_after_settle_s": round(batch_s - settle_s, 1), "one_by_one_s": round(one_by_one_s, 1),
            "checks": len(records),
            "failed": [r.check for r in records if r.result == "Failed"], "ssh_ready_s": timings["ssh_ready_s"],
            "ready_s": timings["ready_s"]}


def run() -> dict[str, object]:
    os.environ.setdefault("HARNESS_BUILDS", str(Path(__file__).resolve().parents[1] / ".test-builds"))
    runs = int(os.environ.get("BOOT_BENCH_RUNS", "3"))
    folder = build(recipe.load("debian-12"), BuildOptions(disk_size_mib=DISK_MIB)).folder
    boots = [one_boot(folder) for _ in range(runs)]
    batch = [float(b["batch_s"]) for b in boots]  # type: ignore[arg-type]
    one_by_one = [float(b["one_by_one_s"]) for b in boots]  # type: ignore[arg-type]
    after = [float(b["checks_after_settle_s"]) for b in boots]  # type: ignore[arg-type]
    return {"median_batch_s": round(statistics.median(batch), 1),
            "median_checks_after_settle_s": round(statistics.median(after), 1),
            "median_one_by_one_s": round(statistics.median(one_by_one), 1),
            "runs": boots, "target_batch_s": 10}
