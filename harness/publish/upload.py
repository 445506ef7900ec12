"""Sparse, parallel, resumable page-blob upload of a fixed VHD (reference/vhd-and-publishing.md §2.3).

Only the 4 MiB windows that hold data are read (SEEK_DATA/SEEK_HOLE); all-zero windows are dropped by
comparing with a zero buffer (a memcmp), and each window is trimmed to its outer non-zero 512-byte pages,
so a Put Page is never over 4 MiB and always 512-aligned. The last window (the VHD footer) is always sent.

Markers in blob metadata make a rerun cheap: `harness_resume` (written when the blob is created: size,
mtime, chunking) lets a rerun list the blob's page ranges and send only what is missing; `harness_digest`
(written last) is the completion marker. It holds the sparse content digest of harness.digest over the
whole VHD, not an MD5: hashlib.md5 runs at ~515 MiB/s here, ~60 s of CPU for the zeros of a 30 GiB disk
(MD5 cannot skip a zero run: its state after a zero block depends on the state before), while the sparse
digest costs only the data bytes. A true whole-file Content-MD5, for tools that expect one, is opt-in
(`content_md5=True`); it is computed in a thread that runs alongside the upload.
"""

from __future__ import annotations

import base64
import bisect
import functools
import hashlib
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import ContentSettings

from harness.digest import CHUNK, ZERO_CHUNK, chunk_indices, content_digest, data_extents
from harness.errors import PublishError
from harness.publish.azerrors import publish_error

log = logging.getLogger(__name__)

PAGE = 512
MAX_PUT_BYTES = 4 * 1024 * 1024  # Put Page body limit of the service (413 RequestBodyTooLarge above)
RESUME_KEY = "harness_resume"
DIGEST_KEY = "harness_digest"
RETRY_STATUS = frozenset({408, 500, 502, 503, 504})
# Zero runs at least this long split a window into separate Put Pages; shorter ones are sent as zeros. At 60 MiB/s
# 128 KiB costs ~2 ms, about one request's round trip, so splitting at shorter gaps would not pay off.
ZERO_GAP = 128 * 1024
_NONZERO = re.compile(rb"[^\x00]")

Progress = Callable[[int, int], None]
"""progress(done_bytes, total_bytes): data bytes handled (sent, already in the blob, or found zero) of all."""


@dataclass(frozen=True)
class UploadOptions:
    """How to upload; the defaults suit a blob in a storage account."""

    concurrency: int = 8
    existing_blob: bool = False  # managed-disk SAS: the blob exists at its final size; no create, no markers
    content_md5: bool = False  # also compute the whole-file MD5 and set Content-MD5 (see module doc for cost)
    transactional_md5: bool = True  # per-request Content-MD5 the service checks (MD5 of the data bytes only)
    retries: int = 4
    backoff_s: float = 1.0


@dataclass
class UploadResult:
    """What an upload did; `to_json()` is safe to log and record (the URL carries no SAS)."""

    url: str
    size_bytes: int
    data_bytes: int  # bytes in the file's data extents: a sparse upload sends about this much at most
    state: str = "uploaded"  # uploaded | resumed | unchanged
    bytes_sent: int = 0
    put_requests: int = 0
    bytes_present: int = 0  # already in the blob from an earlier, interrupted run
    ranges_cleared: int = 0
    retries: int = 0
    digest: str = ""
    content_md5: str | None = None
    duration_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort [start, end) ranges and merge the ones that overlap or touch."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        elif end > start:
            merged.append((start, end))
    return merged


def subtract_ranges(ranges: list[tuple[int, int]], minus: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Parts of merged `ranges` not inside any of merged `minus`."""
    left: list[tuple[int, int]] = []
    for start, end in ranges:
        cursor = start
        for m_start, m_end in minus:
            if m_end <= cursor or m_start >= end:
                continue
            if m_start > cursor:
                left.append((cursor, m_start))
            cursor = max(cursor, m_end)
        if cursor < end:
            left.append((cursor, end))
    return left


def is_covered(merged: list[tuple[int, int]], start: int, end: int) -> bool:
    """Whether [start, end) lies inside one range of the merged, sorted list."""
    pos = bisect.bisect_right(merged, (start, float("inf"))) - 1
    return pos >= 0 and merged[pos][0] <= start and merged[pos][1] >= end


def data_pieces(data: bytes, gap: int = ZERO_GAP) -> list[tuple[int, int]]:
    """[lo, hi) page-aligned runs of `data` that hold non-zero bytes, split wherever >= gap zero bytes separate
    them (a hole or written zeros: not worth sending), ends trimmed to whole 512-byte pages."""
    if data == ZERO_CHUNK[: len(data)]:  # the common all-zero case at memcmp speed
        return []
    zeros = ZERO_CHUNK[:gap]
    pieces: list[tuple[int, int]] = []
    pos = 0
    while (found := _NONZERO.search(data, pos)) is not None:
        start = found.start()
        run_end = data.find(zeros, start)  # the leftmost such run starts right after a non-zero byte
        end = len(data.rstrip(b"\0")) if run_end < 0 else run_end
        pieces.append((start // PAGE * PAGE, -(-end // PAGE) * PAGE))
        if run_end < 0:
            break
        pos = run_end + gap
    return pieces


def remote_ranges(blob: Any) -> list[tuple[int, int]]:
    """Merged [start, end) ranges holding data in the blob; ItemPaged follows continuation markers."""
    return merge_ranges((r.start, r.end + 1) for r in blob.list_page_ranges())


def resume_marker(size: int, mtime_ns: int) -> str:
    return f"v1 size={size} mtime_ns={mtime_ns} chunk={CHUNK} page={PAGE}"


def check_put(offset: int, length: int) -> None:
    """Every Put Page is at most 4 MiB and 512-aligned; anything else is a bug here, not a service error."""
    if length <= 0 or length > MAX_PUT_BYTES or offset % PAGE or length % PAGE:
        raise PublishError(f"internal error: refusing a Put Page of {length} bytes at offset {offset}",
                           "Put Page bodies must be 512-aligned and at most 4 MiB; please report this bug")


def _layout(extents: list[tuple[int, int]], size: int) -> tuple[list[int], dict[int, int]]:
    """Windows to read (the footer's always included) and the extent bytes in each, for progress."""
    windows = chunk_indices(extents)
    last = (size - 1) // CHUNK
    if not windows or windows[-1] != last:
        windows.append(last)
    per_window = dict.fromkeys(windows, 0)
    for start, end in extents:
        for index in range(start // CHUNK, (end - 1) // CHUNK + 1):
            per_window[index] += min(end, (index + 1) * CHUNK) - max(start, index * CHUNK)
    return windows, per_window


class _WholeFileMd5(threading.Thread):
    """MD5 of the whole file, zero runs fed from a zero buffer; runs alongside the upload."""

    def __init__(self, path: Path, size: int, windows: set[int]) -> None:
        super().__init__(name="whole-file-md5", daemon=True)
        self.path, self.size, self.windows = path, size, windows
        self.stop = threading.Event()
        self.digest: bytes | None = None

    def run(self) -> None:
        md5 = hashlib.md5(usedforsecurity=False)
        zero = memoryview(ZERO_CHUNK)
        with self.path.open("rb", buffering=0) as handle:
            for index in range((self.size + CHUNK - 1) // CHUNK):
                if self.stop.is_set():
                    return
                start = index * CHUNK
                length = min(CHUNK, self.size - start)
                md5.update(os.pread(handle.fileno(), length, start) if index in self.windows else zero[:length])
        self.digest = md5.digest()


class _Pipeline:
    """One reader (the caller's thread) feeding a pool of Put Page workers; at most `concurrency` windows
    are held in memory (a semaphore slot is taken before a window is read and given back when it is sent)."""

    def __init__(self, blob: Any, options: UploadOptions, result: UploadResult, progress: Progress | None) -> None:
        self.blob, self.options, self.result, self.progress = blob, options, result, progress
        self.size, self.total = result.size_bytes, result.data_bytes
        self.done = 0
        self.lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(options.concurrency)
        self.failure: tuple[str, BaseException] | None = None
        self.pieces: list[tuple[int, int]] = []

    def run(self, fd: int, windows: list[int], per_window: dict[int, int], remote: list[tuple[int, int]]) -> str:
        """Send every piece not already in `remote`, clear remote data the file does not have; return the digest."""
        digest = hashlib.sha256(b"harness-sparse4m-v1\0" + self.size.to_bytes(8, "big"))
        last = windows[-1]
        with ThreadPoolExecutor(self.options.concurrency, thread_name_prefix="put-page") as pool:
            futures: list[Future[None]] = []
            for index in windows:
                self.slots.acquire()
                if self.failure is not None:
                    self.slots.release()
                    break
                todo = []
                for offset, piece in self._read(fd, index, last, digest):
                    if is_covered(remote, offset, offset + len(piece)):
                        self.result.bytes_present += len(piece)
                    else:
                        todo.append((offset, piece))
                if todo:
                    futures.append(pool.submit(self._put, todo, per_window[index]))
                else:
                    self.slots.release()
                    self._advance(per_window[index])
            if remote and self.failure is None:
                for start, end in subtract_ranges(remote, merge_ranges(self.pieces)):
                    self.slots.acquire()
                    futures.append(pool.submit(self._clear, start, end))
            for future in futures:
                future.result()  # workers never raise; this only waits
        if self.failure is not None:
            what, exc = self.failure
            if isinstance(exc, AzureError):
                raise publish_error(what, exc) from exc
            raise exc
        return "sha256-sparse4m:" + digest.hexdigest()

    def _read(self, fd: int, index: int, last: int, digest: Any) -> list[tuple[int, bytes]]:
        """The window's pieces as (offset, bytes); feeds the sparse digest with the whole window."""
        start = index * CHUNK
        length = min(CHUNK, self.size - start)
        data = os.pread(fd, length, start)
        if len(data) != length:
            raise PublishError(f"the VHD shrank while uploading (short read at {start})", "do not modify it meanwhile")
        spans = data_pieces(data)
        if spans:
            digest.update(index.to_bytes(8, "big") + hashlib.sha256(data).digest())
        if index == last and (not spans or spans[-1][1] != length):  # the footer page is always sent
            spans.append((length - PAGE, length))
        self.pieces.extend((start + lo, start + hi) for lo, hi in spans)
        return [(start + lo, data if (lo, hi) == (0, length) else data[lo:hi]) for lo, hi in spans]

    def _advance(self, nbytes: int) -> None:
        with self.lock:  # called under the lock so the callback sees done_bytes only grow
            self.done += nbytes
            if self.progress is not None:
                self.progress(self.done, self.total)

    def _call(self, what: str, call: Callable[[], object]) -> None:
        """Run one request, retrying with exponential back-off on 408/5xx and on timeouts or broken connections."""
        for attempt in range(self.options.retries + 1):
            try:
                call()
                return
            except HttpResponseError as exc:
                if exc.status_code not in RETRY_STATUS or attempt == self.options.retries:
                    raise
                reason = f"HTTP {exc.status_code}"
            except (ServiceRequestError, ServiceResponseError) as exc:
                if attempt == self.options.retries:
                    raise
                reason = type(exc).__name__
            delay = self.options.backoff_s * 2**attempt * random.uniform(0.5, 1.0)  # noqa: S311 - jitter
            log.debug("%s: %s, retry %d in %.2f s", what, reason, attempt + 1, delay)
            with self.lock:
                self.result.retries += 1
            time.sleep(delay)

    def _put(self, pieces: list[tuple[int, bytes]], progress_bytes: int) -> None:
        what = "Put Page"
        try:
            for offset, data in pieces:
                if self.failure is not None:
                    return
                what = f"Put Page of {len(data)} bytes at offset {offset}"
                check_put(offset, len(data))
                self._call(what, functools.partial(self.blob.upload_page, data, offset=offset, length=len(data),
                                                   validate_content=self.options.transactional_md5))
                with self.lock:
                    self.result.bytes_sent += len(data)
                    self.result.put_requests += 1
            self._advance(progress_bytes)
        except BaseException as exc:  # recorded and re-raised by run() in the caller's thread
            with self.lock:
                self.failure = self.failure or (what, exc)
        finally:
            self.slots.release()

    def _clear(self, start: int, end: int) -> None:
        what = f"Clear Page {start}-{end - 1}"
        try:
            self._call(what, lambda: self.blob.clear_page(offset=start, length=end - start))
            with self.lock:
                self.result.ranges_cleared += 1
        except BaseException as exc:
            with self.lock:
                self.failure = self.failure or (what, exc)
        finally:
            self.slots.release()


def _prepare_new_blob(blob: Any, path: Path, size: int, marker: str, result: UploadResult
                      ) -> list[tuple[int, int]] | None:
    """Create the blob, or find what an earlier run left: None means it is complete and matches."""
    try:
        props = blob.get_blob_properties()
    except ResourceNotFoundError:
        props = None
    metadata = dict(props.metadata or {}) if props is not None else {}
    if props is not None and RESUME_KEY not in metadata:
        raise PublishError(f"{result.url} already exists and was not written by harness",
                           "choose another blob name (--blob-name) or delete that blob")
    if props is not None and props.blob_type == "PageBlob" and props.size == size \
            and metadata.get(RESUME_KEY) == marker:
        recorded = metadata.get(DIGEST_KEY)
        if not recorded:
            result.state = "resumed"
            remote = remote_ranges(blob)
            log.info("resuming the upload of %s: the blob already holds %d bytes", result.url,
                     sum(e - s for s, e in remote))
            return remote
        result.digest = content_digest(path, size)
        if recorded == result.digest:
            result.state = "unchanged"
            return None
        log.info("%s holds other content (completion marker %s): uploading again", result.url, recorded)
    blob.create_page_blob(size, metadata={RESUME_KEY: marker})
    return []


def _prepare_existing_blob(blob: Any, size: int) -> list[tuple[int, int]]:
    props = blob.get_blob_properties()
    if props.size != size:
        raise PublishError(f"the upload target holds {props.size} bytes but the VHD has {size}",
                           "create the upload disk with upload_size_bytes equal to the VHD file size")
    return remote_ranges(blob)


def upload_vhd(blob: Any, path: Path, options: UploadOptions | None = None,
               progress: Progress | None = None) -> UploadResult:
    """Upload the fixed VHD at `path` to the page blob `blob` (an azure.storage.blob.BlobClient).

    Creates the blob at its final size (unless options.existing_blob), sends only non-zero pages in parallel
    Put Page calls of <= 4 MiB, resumes an interrupted run, and is a no-op when the blob's completion marker
    matches. `progress` is called from worker threads.
    """
    opts = options or UploadOptions()
    started = time.monotonic()
    stat = path.stat()
    size = stat.st_size
    if size == 0 or size % PAGE:
        raise PublishError(f"{path} is {size} bytes, not a whole number of 512-byte pages",
                           "convert it to a fixed VHD first ('harness convert')")
    result = UploadResult(url=str(blob.url).split("?", 1)[0], size_bytes=size, data_bytes=0)
    with path.open("rb", buffering=0) as handle:
        extents = data_extents(handle.fileno(), size)
        result.data_bytes = sum(end - start for start, end in extents)
        windows, per_window = _layout(extents, size)
        try:
            if opts.existing_blob:
                remote: list[tuple[int, int]] | None = _prepare_existing_blob(blob, size)
            else:
                remote = _prepare_new_blob(blob, path, size, resume_marker(size, stat.st_mtime_ns), result)
        except AzureError as exc:
            raise publish_error(f"preparing blob {result.url}", exc) from exc
        if remote is None:
            log.info("%s is already complete (completion marker matches): nothing to send", result.url)
            result.duration_s = round(time.monotonic() - started, 3)
            return result
        hasher = _WholeFileMd5(path, size, set(windows)) if opts.content_md5 else None
        if hasher is not None:
            hasher.start()
        try:
            pipeline = _Pipeline(blob, opts, result, progress)
            result.digest = pipeline.run(handle.fileno(), windows, per_window, remote)
        except BaseException:
            if hasher is not None:
                hasher.stop.set()
            raise
        finally:
            if hasher is not None:
                hasher.join()
    _finish(blob, opts, result, hasher.digest if hasher is not None else None, stat.st_mtime_ns)
    result.duration_s = round(time.monotonic() - started, 3)
    return result


def _finish(blob: Any, opts: UploadOptions, result: UploadResult, md5: bytes | None, mtime_ns: int) -> None:
    """Content-MD5 first, then the completion marker, last of all (never on a managed-disk SAS upload)."""
    if opts.existing_blob:
        return
    try:
        if md5 is not None:
            result.content_md5 = base64.b64encode(md5).decode()
            blob.set_http_headers(ContentSettings(content_type="application/octet-stream", content_md5=bytearray(md5)))
        blob.set_blob_metadata({RESUME_KEY: resume_marker(result.size_bytes, mtime_ns), DIGEST_KEY: result.digest})
    except AzureError as exc:
        raise publish_error(f"marking {result.url} complete", exc) from exc
