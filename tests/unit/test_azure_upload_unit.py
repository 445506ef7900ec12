"""Page-blob uploader logic against an in-memory page blob: ranges, trimming, retries, memory bound, markers."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceResponseError

from harness.digest import CHUNK, content_digest
from harness.errors import PublishError
from harness.publish.upload import (
    DIGEST_KEY,
    RESUME_KEY,
    ZERO_GAP,
    UploadOptions,
    check_put,
    data_pieces,
    is_covered,
    merge_ranges,
    subtract_ranges,
    upload_vhd,
)
from tests.factories import sparse_file

MIB = 1024 * 1024


class MemoryPageBlob:
    """Just enough of azure.storage.blob.BlobClient for upload_vhd, keeping pages in a dict."""

    url = "https://acct.blob.core.windows.net/vhds/disk.vhd?sv=2025-01-01&sig=SECRETSIG"

    def __init__(self, delay_s: float = 0.0) -> None:
        self.size: int | None = None
        self.pages: dict[int, bytes] = {}
        self.metadata: dict[str, str] = {}
        self.content_md5: bytes | None = None
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay_s = delay_s
        self.failures: list[BaseException] = []  # raised by the next Put Pages, in order
        self.puts: list[tuple[int, int]] = []

    def get_blob_properties(self) -> Any:
        if self.size is None:
            raise ResourceNotFoundError("The specified blob does not exist.")
        return SimpleNamespace(size=self.size, blob_type="PageBlob", metadata=dict(self.metadata),
                               content_settings=SimpleNamespace(content_md5=self.content_md5))

    def create_page_blob(self, size: int, metadata: dict[str, str]) -> None:
        self.size, self.metadata, self.pages = size, dict(metadata), {}

    def upload_page(self, data: bytes, offset: int, length: int, validate_content: bool = False) -> None:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            failure = self.failures.pop(0) if self.failures else None
        try:
            time.sleep(self.delay_s)
            if failure is not None:
                raise failure
            assert len(data) == length
            with self.lock:
                self.pages[offset] = bytes(data)
                self.puts.append((offset, length))
        finally:
            with self.lock:
                self.in_flight -= 1

    def clear_page(self, offset: int, length: int) -> None:
        self.pages = {o: d for o, d in self.pages.items() if o + len(d) <= offset or o >= offset + length}

    def list_page_ranges(self) -> list[Any]:
        return [SimpleNamespace(start=o, end=o + len(d) - 1, cleared=False) for o, d in sorted(self.pages.items())]

    def set_blob_metadata(self, metadata: dict[str, str]) -> None:
        self.metadata = dict(metadata)

    def set_http_headers(self, settings: Any) -> None:
        self.content_md5 = bytes(settings.content_md5)

    def content(self) -> bytes:
        assert self.size is not None
        out = bytearray(self.size)
        for offset, data in self.pages.items():
            out[offset:offset + len(data)] = data
        return bytes(out)


def http_error(status: int) -> HttpResponseError:
    error = HttpResponseError(message=f"status {status}")
    error.status_code = status
    return error


def test_merge_subtract_and_cover() -> None:
    merged = merge_ranges([(1024, 2048), (0, 512), (512, 1024), (4096, 8192), (5000, 6000)])
    assert merged == [(0, 2048), (4096, 8192)]
    assert subtract_ranges([(0, 10_000)], merged) == [(2048, 4096), (8192, 10_000)]
    assert subtract_ranges(merged, [(0, 10_000)]) == []
    assert is_covered(merged, 512, 2048) and is_covered(merged, 4096, 4608)
    assert not is_covered(merged, 1536, 2560) and not is_covered(merged, 9000, 9512) and not is_covered([], 0, 512)


def test_data_pieces_split_at_long_zero_runs_and_keep_whole_pages() -> None:
    data = bytearray(CHUNK)
    assert data_pieces(bytes(data)) == []
    data[1000] = 1
    data[1000 + ZERO_GAP - 1] = 1  # a zero run shorter than the gap: one piece
    data[CHUNK - 600] = 1  # far away: its own piece
    # bytes 1000 and 132071 -> pages [512, 132096); byte CHUNK-600 -> page [CHUNK-1024, CHUNK-512)
    assert data_pieces(bytes(data)) == [(512, 132096), (CHUNK - 1024, CHUNK - 512)]
    data[1000 + ZERO_GAP * 2] = 1  # after a zero run of exactly the gap: split
    assert data_pieces(bytes(data))[1][0] == (1000 + ZERO_GAP * 2) // 512 * 512
    data[0] = data[CHUNK - 1] = 1
    assert data_pieces(bytes(data))[0][0] == 0 and data_pieces(bytes(data))[-1][1] == CHUNK
    full = bytes([7]) * CHUNK
    assert data_pieces(full) == [(0, CHUNK)]
    short = bytes(4096) + b"\x01" + bytes(100)
    assert data_pieces(short) == [(4096, 4608)]


def test_check_put_refuses_anything_azure_would() -> None:
    check_put(0, 4 * MIB)
    check_put(512, 512)
    for offset, length in ((0, 4 * MIB + 512), (100, 512), (0, 1000), (0, 0)):
        with pytest.raises(PublishError, match="internal error"):
            check_put(offset, length)


def test_upload_sends_trimmed_pieces_and_always_the_footer(tmp_path: Path) -> None:
    size = 40 * MIB + 512
    path = sparse_file(tmp_path / "d.vhd", size, [(CHUNK + 4096, b"\x01" * 100), (9 * CHUNK, b"\x02" * 8192),
                                                   (size - 512, b"conectix" + bytes(504))])
    blob = MemoryPageBlob()
    result = upload_vhd(blob, path, UploadOptions(concurrency=3))
    assert sorted(blob.puts) == [(CHUNK + 4096, 512), (9 * CHUNK, 8192), (size - 512, 512)]
    assert blob.content() == path.read_bytes()
    assert result.bytes_sent == 512 + 8192 + 512 and result.put_requests == 3
    assert result.url == "https://acct.blob.core.windows.net/vhds/disk.vhd"  # no SAS in what we report
    assert blob.metadata[DIGEST_KEY] == content_digest(path) == result.digest
    assert blob.metadata[RESUME_KEY] == f"v1 size={size} mtime_ns={path.stat().st_mtime_ns} chunk={CHUNK} page=512"


def test_footer_is_sent_even_when_it_is_zero(tmp_path: Path) -> None:
    path = sparse_file(tmp_path / "d.vhd", 8 * MIB + 512, [])
    blob = MemoryPageBlob()
    upload_vhd(blob, path)
    assert blob.puts == [(8 * MIB, 512)]


def test_huge_sparse_disk_reads_and_sends_only_its_data(tmp_path: Path) -> None:
    size = 64 * 1024 * MIB + 512  # 64 GiB virtual: only the data extents may be touched
    path = sparse_file(tmp_path / "d.vhd", size, [(7 * MIB, b"\x05" * MIB), (50 * 1024 * MIB, b"\x06" * 4096),
                                                   (size - 512, b"conectix" + bytes(504))])
    blob = MemoryPageBlob()
    started = time.monotonic()
    result = upload_vhd(blob, path)
    assert time.monotonic() - started < 5
    assert result.bytes_sent == MIB + 4096 + 512


def test_at_most_concurrency_pieces_are_in_flight(tmp_path: Path) -> None:
    path = sparse_file(tmp_path / "d.vhd", 48 * MIB + 512, [(0, b"\x07" * 48 * MIB)])
    blob = MemoryPageBlob(delay_s=0.02)
    upload_vhd(blob, path, UploadOptions(concurrency=3))
    assert blob.max_in_flight == 3
    assert blob.content() == path.read_bytes()


def test_retries_5xx_and_broken_connections_but_not_403(tmp_path: Path) -> None:
    path = sparse_file(tmp_path / "d.vhd", 8 * MIB + 512, [(0, b"\x01" * MIB)])
    blob = MemoryPageBlob()
    blob.failures = [http_error(503), ServiceResponseError("connection reset"), http_error(500)]
    result = upload_vhd(blob, path, UploadOptions(concurrency=1, retries=3, backoff_s=0.001))
    assert result.retries == 3 and blob.content() == path.read_bytes()

    denied = MemoryPageBlob()
    denied.failures = [http_error(403)]
    with pytest.raises(PublishError, match=r"HTTP 403") as err:
        upload_vhd(denied, path, UploadOptions(concurrency=1, retries=3, backoff_s=0.001))
    assert "SECRETSIG" not in str(err.value)
    assert DIGEST_KEY not in denied.metadata  # an interrupted upload is never marked complete


def test_whole_file_md5_when_asked(tmp_path: Path) -> None:
    path = sparse_file(tmp_path / "d.vhd", 12 * MIB + 512, [(5 * MIB, b"\x09" * 3000)])
    blob = MemoryPageBlob()
    result = upload_vhd(blob, path, UploadOptions(content_md5=True))
    assert blob.content_md5 == hashlib.md5(path.read_bytes(), usedforsecurity=False).digest()
    assert result.content_md5 is not None


def test_rerun_with_matching_marker_is_a_no_op_and_a_stale_marker_reuploads(tmp_path: Path) -> None:
    path = sparse_file(tmp_path / "d.vhd", 8 * MIB + 512, [(0, b"\x01" * MIB)])
    blob = MemoryPageBlob()
    upload_vhd(blob, path)
    blob.puts.clear()
    assert upload_vhd(blob, path).state == "unchanged" and blob.puts == []
    blob.metadata[DIGEST_KEY] = "sha256-sparse4m:other"
    assert upload_vhd(blob, path).state == "uploaded" and len(blob.puts) == 2


def test_a_file_that_is_not_whole_pages_is_refused(tmp_path: Path) -> None:
    path = sparse_file(tmp_path / "d.raw", 1000, [])
    with pytest.raises(PublishError, match="not a whole number of 512-byte pages"):
        upload_vhd(MemoryPageBlob(), path)


def test_a_blob_not_written_by_harness_is_never_overwritten(tmp_path: Path) -> None:
    path = sparse_file(tmp_path / "d.vhd", 8 * MIB + 512, [(0, b"\x01" * MIB)])
    blob = MemoryPageBlob()
    blob.create_page_blob(8 * MIB + 512, metadata={"owner": "someone else"})
    with pytest.raises(PublishError, match="already exists and was not written by harness"):
        upload_vhd(blob, path)
    assert blob.puts == [] and blob.metadata == {"owner": "someone else"}
