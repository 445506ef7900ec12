"""The content digest depends on content only, not on how the file system allocated it."""

from __future__ import annotations

import os
from pathlib import Path

from harness.digest import CHUNK, allocated_bytes, chunk_indices, content_digest, data_extents, sparse_copy


def make(path: Path, size: int, writes: dict[int, bytes], dense_zeros: bool = False) -> Path:
    with path.open("wb") as handle:
        handle.truncate(size)
        if dense_zeros:
            handle.write(bytes(size))
        for offset, data in writes.items():
            handle.seek(offset)
            handle.write(data)
    return path


def test_digest_ignores_sparseness(tmp_path: Path) -> None:
    writes = {5 * CHUNK + 17: b"hello", 40 * CHUNK: os.urandom(3000)}
    sparse = make(tmp_path / "a", 64 * CHUNK, writes)
    dense = make(tmp_path / "b", 64 * CHUNK, writes, dense_zeros=True)
    assert allocated_bytes(sparse) < allocated_bytes(dense)
    assert content_digest(sparse) == content_digest(dense)


def test_digest_sees_a_one_byte_change_and_the_length(tmp_path: Path) -> None:
    a = make(tmp_path / "a", 8 * CHUNK, {CHUNK: b"x"})
    b = make(tmp_path / "b", 8 * CHUNK, {CHUNK: b"y"})
    c = make(tmp_path / "c", 9 * CHUNK, {CHUNK: b"x"})
    assert len({content_digest(a), content_digest(b), content_digest(c)}) == 3
    assert content_digest(c, 8 * CHUNK) == content_digest(a)


def test_extents_and_chunks(tmp_path: Path) -> None:
    path = make(tmp_path / "a", 16 * CHUNK, {0: b"a", 3 * CHUNK - 1: b"bc"})
    with path.open("rb") as handle:
        extents = data_extents(handle.fileno(), 16 * CHUNK)
    assert extents and extents[0][0] == 0
    assert chunk_indices(extents) == [0, 2, 3]
    assert chunk_indices([(0, 10), (5, CHUNK + 1)]) == [0, 1]


def test_sparse_copy_keeps_holes(tmp_path: Path) -> None:
    src = make(tmp_path / "a", 32 * CHUNK, {20 * CHUNK: os.urandom(CHUNK)})
    dst = tmp_path / "b"
    sparse_copy(src, dst)
    assert dst.read_bytes() == src.read_bytes()
    assert allocated_bytes(dst) <= 2 * CHUNK
