"""Page-blob upload benchmark: harness's sparse uploader vs the SDK's upload_blob(PageBlob), same run, same target.

A 30 GiB sparse fixed VHD holding BENCH_UPLOAD_DATA_MIB (default 1024) MiB of data in scattered extents is
uploaded to Azurite (in memory) through the counting proxy of tests/fakes, once by each path, each in its own
child process (started through harness.proc) so wall time and peak RSS (VmHWM) are its own. The data is 1 GiB
rather than 2 GiB because Azurite ingests only ~41 MiB/s and the SDK path must read all 30 GiB anyway;
BENCH_UPLOAD_DATA_MIB=2048 runs the full-size variant. Scratch files live next to the repository (same disk,
not tmpfs) and are removed afterwards.

Targets: bytes sent <= 1.05 x data bytes, >= 3x faster than the SDK path, peak RSS <= 200 MiB.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import proc
from harness.digest import CHUNK, chunk_indices, data_extents

REPO = Path(__file__).resolve().parent.parent
VIRTUAL_GIB = 30
MIB = 1024 * 1024
CONCURRENCY = 8
CONTAINER = "bench"
TARGET_BYTES_RATIO = 1.05
TARGET_SPEEDUP = 3.0
TARGET_RSS_MIB = 200


def make_image(path: Path, data_mib: int, virtual_gib: int = VIRTUAL_GIB, seed: int = 30) -> Path:
    """Sparse fixed VHD: 256 scattered 4 KiB blocks (file-system metadata) + extents of 1-64 MiB (files)."""
    from harness.vhd import to_fixed_vhd

    virtual_bytes = virtual_gib * 1024**3
    rnd = random.Random(seed)  # noqa: S311 - reproducible test data, not crypto
    pool = rnd.randbytes(64 * MIB)
    slots = list(range(1, virtual_bytes // (64 * MIB) - 1))  # one extent per 64 MiB slot: no overlaps
    rnd.shuffle(slots)
    with path.open("wb") as handle:
        handle.truncate(virtual_bytes)
        left = data_mib * MIB - 256 * 4096
        while left > 0:
            length = min(left, rnd.randrange(1, 65) * MIB)
            handle.seek(slots.pop() * 64 * MIB + rnd.randrange(0, 64 * MIB - length + 1, 4096))
            start = rnd.randrange(0, len(pool) - length + 1)
            handle.write(pool[start:start + length])
            left -= length
        for _ in range(256):
            handle.seek(rnd.randrange(0, virtual_bytes // 4096) * 4096)
            handle.write(rnd.randbytes(4096))
    return to_fixed_vhd(path)


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):  # "VmHWM:     123456 kB"
            return round(int(line.split()[1]) / 1024, 1)
    return -1.0


def child(mode: str, vhd: str, blob_name: str) -> None:
    """Run one upload path in this (child) process and print its own figures as JSON."""
    from azure.storage.blob import BlobClient

    conn = os.environ["BENCH_CONNECTION_STRING"]
    path = Path(vhd)
    started = time.monotonic()
    figures: dict[str, Any] = {}
    if mode == "harness":
        from harness.publish.azure import blob_client
        from harness.publish.azure_settings import AzureTarget
        from harness.publish.upload import UploadOptions, upload_vhd

        target = AzureTarget(subscription_id="bench", resource_group="bench", location="local", kind="gallery",
                             gallery="bench", container=CONTAINER, storage_connection_string=conn)
        result = upload_vhd(blob_client(target, blob_name), path, UploadOptions(concurrency=CONCURRENCY))
        figures.update(data_bytes=result.data_bytes, retries=result.retries)
    else:
        blob = BlobClient.from_connection_string(conn, CONTAINER, blob_name)
        with path.open("rb") as stream:
            blob.upload_blob(stream, blob_type="PageBlob", length=path.stat().st_size, max_concurrency=CONCURRENCY,
                             overwrite=True)
    figures.update(wall_s=round(time.monotonic() - started, 2), peak_rss_mib=_peak_rss_mib())
    print(json.dumps(figures))


def _measure(mode: str, vhd: Path, conn: str, proxy: Any) -> dict[str, Any]:
    proxy.reset()
    env = {**os.environ, "BENCH_CONNECTION_STRING": conn, "PYTHONPATH": str(REPO)}
    done = proc.run([sys.executable, "-m", "bench.upload_bench", "child", mode, str(vhd), f"{mode}.vhd"],
                      cwd=REPO, env=env, timeout_s=3600, hint="the upload child failed; see its output")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    total = proxy.total()
    figures.update(bytes_sent=total.put_page_bytes, put_requests=total.put_pages, requests=total.requests,
                   max_put_bytes=total.max_put_page_bytes, rejected=total.rejected)
    return figures


def _spot_check(service: Any, name: str, vhd: Path, samples: int = 24) -> bool:
    """Compare random 4 MiB windows (data and holes alike) and the footer of the blob with the file."""
    blob = service.get_blob_client(CONTAINER, name)
    size = vhd.stat().st_size
    rnd = random.Random(name)  # noqa: S311 - reproducible sampling, not crypto
    offsets = [rnd.randrange(0, size // CHUNK) * CHUNK for _ in range(samples)] + [size - 512]
    with vhd.open("rb") as handle:
        offsets += [i * CHUNK for i in chunk_indices(data_extents(handle.fileno(), size))[::40]]
        for offset in offsets:
            length = min(CHUNK, size - offset)
            handle.seek(offset)
            if blob.download_blob(offset=offset, length=length).readall() != handle.read(length):
                return False
    return True


def run() -> dict[str, object]:
    """Build the image, start Azurite + proxy, time both upload paths; figures as a dict."""
    from azure.storage.blob import BlobServiceClient

    from tests.fakes.azurite import connection_string, running_azurite
    from tests.fakes.blobproxy import running_proxy

    data_mib = int(os.environ.get("BENCH_UPLOAD_DATA_MIB", "1024"))
    virtual_gib = int(os.environ.get("BENCH_UPLOAD_VIRTUAL_GIB", str(VIRTUAL_GIB)))  # smaller only to smoke-test
    scratch = Path(tempfile.mkdtemp(prefix=".bench-upload-", dir=REPO))
    try:
        started = time.monotonic()
        vhd = make_image(scratch / "disk.vhd", data_mib, virtual_gib)
        image_s = round(time.monotonic() - started, 1)
        with running_azurite(scratch / "azurite") as azurite, running_proxy(azurite.port) as proxy:
            direct = BlobServiceClient.from_connection_string(azurite.connection_string)
            direct.create_container(CONTAINER)
            results: dict[str, dict[str, Any]] = {}
            for mode in ("harness", "sdk"):
                results[mode] = _measure(mode, vhd, connection_string(proxy.port), proxy)
                results[mode]["content_matches"] = _spot_check(direct, f"{mode}.vhd", vhd)
                direct.get_blob_client(CONTAINER, f"{mode}.vhd").delete_blob()  # frees Azurite memory
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return _figures(results, data_mib, virtual_gib, image_s)


def _figures(results: dict[str, dict[str, Any]], data_mib: int, virtual_gib: int,
             image_s: float) -> dict[str, object]:
    ours, sdk = results["harness"], results["sdk"]
    data_bytes = int(ours["data_bytes"])
    ratio = ours["bytes_sent"] / data_bytes
    speedup = sdk["wall_s"] / ours["wall_s"]
    return {
        "virtual_gib": virtual_gib, "data_mib_requested": data_mib,
        "data_bytes": data_bytes, "image_build_s": image_s, "concurrency": CONCURRENCY,
        "harness": ours, "sdk": sdk,
        "bytes_sent_over_data": round(ratio, 4), "speedup_vs_sdk": round(speedup, 2),
        "targets_met": {
            f"bytes_sent <= {TARGET_BYTES_RATIO} x data": ratio <= TARGET_BYTES_RATIO,
            f">= {TARGET_SPEEDUP}x faster than the SDK": speedup >= TARGET_SPEEDUP,
            f"peak RSS <= {TARGET_RSS_MIB} MiB": ours["peak_rss_mib"] <= TARGET_RSS_MIB,
            "no request over 4 MiB": ours["max_put_bytes"] <= 4 * MIB and ours["rejected"] == 0,
            "content matches": bool(ours["content_matches"] and sdk["content_matches"]),
        },
    }


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "child":
        child(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        print(json.dumps(run(), indent=2))
