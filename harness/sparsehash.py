"""The plain sha256 of a whole file, as `sha256sum` prints it, without reading the holes of a sparse file.

Holes read as zeros, so they are hashed as zeros: a precomputed zero chunk fed to the hash again and again (no
read, no allocation). Data extents are read in 4 MiB chunks, the next one read by a helper thread while the
current one is hashed (hashlib and os.pread both release the GIL), so a 30 GiB VHD holding 1 GiB costs a 1 GiB
read and runs at about the speed of sha256 itself.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from harness.digest import CHUNK, ZERO_CHUNK, data_extents
from harness.errors import IntegrityError

_ZEROS = memoryview(ZERO_CHUNK)


class _Hash(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...


def _hash_zeros(digest: _Hash, length: int) -> None:
    """Feed `length` zero bytes (a hole) to the hash."""
    full, rest = divmod(length, CHUNK)
    for _ in range(full):
        digest.update(_ZEROS)
    if rest:
        digest.update(_ZEROS[:rest])


def _pieces(start: int, end: int) -> Iterator[tuple[int, int]]:
    """(offset, length) reads of at most one chunk covering [start, end)."""
    for offset in range(start, end, CHUNK):
        yield offset, min(CHUNK, end - offset)


def _read(fd: int, length: int, offset: int) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) != length:  # the file shrank under us: a digest of it would describe no file
        raise IntegrityError(f"file changed while it was hashed: {length} bytes expected at {offset}, "
                             f"{len(data)} read", "nothing may write the disk while it is converted or published")
    return data


def _hash_data(digest: _Hash, fd: int, start: int, end: int, reader: ThreadPoolExecutor) -> None:
    """Feed [start, end) of fd to the hash, reading the next chunk while this one is hashed."""
    pending: Future[bytes] | None = None
    for offset, length in _pieces(start, end):
        upcoming = reader.submit(_read, fd, length, offset)
        if pending is not None:
            digest.update(pending.result())
        pending = upcoming
    if pending is not None:
        digest.update(pending.result())


def file_sha256(path: Path) -> str:
    """Hex sha256 of the whole file, holes hashed as the zeros they read as (= `sha256sum path`)."""
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as handle, ThreadPoolExecutor(1, "sha256-read") as reader:
        fd = handle.fileno()
        size = os.fstat(fd).st_size
        position = 0
        for start, end in data_extents(fd, size):
            _hash_zeros(digest, start - position)
            _hash_data(digest, fd, start, end, reader)
            position = end
        _hash_zeros(digest, size - position)
    return digest.hexdigest()
