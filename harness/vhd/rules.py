"""Fixed VHD files: turn a raw disk into one by appending a footer (no copy), read it, validate it for Azure.

Footer layout and rules: reference/vhd-and-publishing.md §1; the footer itself lives in footer.py.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from harness import proc
from harness.digest import sparse_copy
from harness.enums import Result
from harness.errors import CommandError, NotFoundError, ToolMissingError, VhdError
from harness.vhd.footer import (
    COOKIE,
    DISK_TYPE_FIXED,
    DISK_TYPES,
    FEATURES_RESERVED,
    FIXED_DATA_OFFSET,
    FOOTER_SIZE,
    FORMAT_VERSION,
    MIB,
    SECTOR,
    Footer,
    fixed_footer,
)

GIB = 1024 * MIB
# Azure: an OS disk VHD may be at most 1,023 GB (Azure's GB are GiB: a P30 disk is 1,024 GiB), and a disk
# upload must be at least 20 MiB of data (upload_size_bytes >= 20 MiB + 512).
AZURE_MIN_BYTES = 20 * MIB
AZURE_OS_DISK_MAX_BYTES = 1023 * GIB

PASSED, FAILED, SKIPPED = Result.PASSED, Result.FAILED, Result.SKIPPED

REBUILD_HINT = "convert the raw disk again: 'harness vhd convert disk.raw'"
# Rules that make a file a structurally valid fixed VHD; Azure's size limits and qemu's reading come on top.
SIZE_LIMIT_RULE = "azure-size-limits"
QEMU_RULE = "qemu-virtual-size"


@dataclass(frozen=True)
class Problem:
    """One failed rule: what is wrong, how to fix it, and the values that broke it."""

    rule: str
    message: str
    hint: str
    actual: str
    required: str


@dataclass(frozen=True)
class RuleResult:
    """One rule's outcome (Passed, Failed or Skipped), for `harness vhd validate`."""

    rule: str
    result: Result
    actual: str
    required: str
    message: str = ""
    hint: str = ""

    @property
    def failed(self) -> bool:
        return self.result == FAILED

    def problem(self) -> Problem:
        return Problem(self.rule, self.message, self.hint, self.actual, self.required)


def _rule(rule: str, ok: bool, actual: object, required: object, fix: tuple[str, str]) -> RuleResult:
    """A Passed or Failed result; `fix` is (what is wrong, how to fix it), kept only when the rule fails."""
    message, hint = fix
    return RuleResult(rule, PASSED if ok else FAILED, str(actual), str(required), "" if ok else message,
                      "" if ok else hint)


def _read_tail(path: Path) -> tuple[int, bytes, bytes]:
    """(file size, first 512 bytes or fewer, last 512 bytes or nothing) without reading anything else."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError as exc:
        raise NotFoundError(f"{path} does not exist", "check the path") from exc
    except OSError as exc:
        raise VhdError(f"cannot read {path}: {exc.strerror}", "check the path and its permissions") from exc
    try:
        size = os.fstat(fd).st_size
        head = os.pread(fd, FOOTER_SIZE, 0)
        tail = os.pread(fd, FOOTER_SIZE, max(0, size - FOOTER_SIZE)) if size >= FOOTER_SIZE else b""
    finally:
        os.close(fd)
    return size, head, tail


def read_footer(path: Path) -> Footer:
    """The footer in the last 512 bytes of `path`; VhdError if there is none."""
    size, _, tail = _read_tail(path)
    if size < FOOTER_SIZE:
        raise VhdError(f"{path} is {size} bytes, too short to hold a 512-byte VHD footer",
                       "this is not a VHD; make one with 'harness vhd convert'")
    footer = Footer.unpack(tail)
    if footer.cookie != COOKIE:
        raise VhdError(f"{path} has no VHD footer: its last 512 bytes do not start with 'conectix'",
                       "a raw disk? convert it with 'harness vhd convert'")
    return footer


# ---------------------------------------------------------------------------------------------
# Validation: every rule is checked and reported, not just the first that fails.

def _footer_rules(footer: Footer, file_size: int) -> list[RuleResult]:
    cookie = footer.cookie.decode("ascii", errors="backslashreplace")
    kind = DISK_TYPES.get(footer.disk_type, "unknown")
    data_bytes = file_size - FOOTER_SIZE
    return [
        _rule("cookie", footer.cookie == COOKIE, repr(cookie), "'conectix'",
              (f"the footer cookie is {cookie!r}, so the last 512 bytes are not a VHD footer",
               f"a raw disk or a damaged VHD: {REBUILD_HINT}")),
        _rule("disk-type", footer.disk_type == DISK_TYPE_FIXED, f"{footer.disk_type} ({kind})", "2 (fixed)",
              (f"disk type is {kind}; Azure accepts fixed VHDs only",
               "qemu-img convert -f vpc -O raw FILE disk.raw, then 'harness vhd convert disk.raw'")),
        _rule("format-version", footer.format_version == FORMAT_VERSION, f"0x{footer.format_version:08x}",
              f"0x{FORMAT_VERSION:08x}", ("the footer's format version is not 1.0", REBUILD_HINT)),
        _rule("data-offset", footer.data_offset == FIXED_DATA_OFFSET, f"0x{footer.data_offset:016x}",
              f"0x{FIXED_DATA_OFFSET:016x}",
              ("a fixed VHD's data offset is all ones (no dynamic header)", REBUILD_HINT)),
        _rule("checksum", footer.checksum_valid, f"0x{footer.checksum:08x}", f"0x{footer.computed_checksum():08x}",
              ("the stored footer checksum does not match its contents: the footer is corrupt", REBUILD_HINT)),
        _rule("current-size-matches-file", footer.current_size == data_bytes, footer.current_size,
              f"{data_bytes} (file size - 512)",
              ("the footer's current size differs from the data in the file: truncated or extended after conversion",
               f"recover the raw disk and {REBUILD_HINT}")),
        _rule("current-size-whole-mib", footer.current_size % MIB == 0, footer.current_size,
              "a multiple of 1048576", ("Azure rejects a virtual size that is not a whole number of MiB",
                                        "'harness vhd convert' grows the raw disk to a whole MiB; "
                                        "qemu-img needs -o force_size")),
        _size_limits(footer.current_size),
        _rule("saved-state", footer.saved_state == 0, footer.saved_state, 0,
              ("the VHD is marked as holding a saved VM state", "shut the VM down and export the disk again")),
        _rule("features", footer.features == FEATURES_RESERVED, f"0x{footer.features:08x}",
              f"0x{FEATURES_RESERVED:08x} (reserved bit only)",
              ("the features field is not the reserved bit alone (bit 0 marks a temporary disk, which Azure "
               "must not keep)", REBUILD_HINT)),
        _rule("original-size", footer.original_size == footer.current_size, footer.original_size,
              f"{footer.current_size} (the current size)",
              ("a fixed VHD's original size equals its current size; this footer says the disk was resized "
               "without rewriting it", REBUILD_HINT)),
        _rule("geometry", all(footer.geometry), "/".join(map(str, footer.geometry)), "non-zero cylinders/heads/sectors",
              ("the CHS geometry is 0: readers that size the disk from CHS see no disk", REBUILD_HINT)),
    ]


def _size_limits(current: int) -> RuleResult:
    required = f"{AZURE_MIN_BYTES} <= size <= {AZURE_OS_DISK_MAX_BYTES} (20 MiB .. 1023 GiB)"
    hint = ("grow the disk to at least 20 MiB" if current < AZURE_MIN_BYTES
            else "shrink the disk (file systems and partitions) to 1023 GiB or less")
    return _rule(SIZE_LIMIT_RULE, AZURE_MIN_BYTES <= current <= AZURE_OS_DISK_MAX_BYTES, current, required,
                 ("the virtual size is outside Azure's OS disk limits", hint))


def _qemu_rule(path: Path, current: int) -> RuleResult:
    try:
        size = qemu_size(path)
    except CommandError as exc:
        said = exc.output_tail.splitlines()[-1] if exc.output_tail else f"exit code {exc.returncode}"
        return _rule(QEMU_RULE, False, "qemu-img failed", current,
                     (f"qemu-img cannot open it as a VHD: {said}", "fix the rules above first"))
    if size is None:
        return RuleResult(QEMU_RULE, SKIPPED, "qemu-img not installed", str(current),
                          "cross-check skipped: qemu-img is not installed", "install the Debian package 'qemu-utils'")
    return _rule(QEMU_RULE, size == current, size, current,
                 ("qemu-img reads a different virtual size (it trusts CHS for an unknown creator)",
                  f"rewrite the footer with creator 'win ' or 'qem2': {REBUILD_HINT}"))


RAW_RULE = "vhd-footer"


def _not_a_vhd(size: int, tail: bytes) -> RuleResult | None:
    """One result for a file without a footer: a raw disk (convert it), or a VHD whose footer cookie is damaged
    (its size is N MiB + 512 bytes, which a raw build disk never is), instead of every footer rule failing."""
    if size < FOOTER_SIZE or tail[: len(COOKIE)] == COOKIE:
        return None
    actual = f"no 'conectix' cookie in the last 512 bytes ({size} bytes)"
    if size > FOOTER_SIZE and (size - FOOTER_SIZE) % MIB == 0:
        return _rule(RAW_RULE, False, actual, "a fixed VHD footer",
                     ("the file is a whole MiB + 512 bytes like a fixed VHD, but its footer cookie is damaged",
                      "restore the VHD from its source or rebuild it; converting it again would turn the old footer "
                      "into disk data"))
    return _rule(RAW_RULE, False, actual, "a fixed VHD footer",
                 ("this is a raw disk, not a VHD", "make it one with 'harness vhd convert FILE'"))


def check(path: Path, *, use_qemu: bool = True) -> list[RuleResult]:
    """Every rule with its outcome; a file with no footer at all gets the one rule that says so."""
    size, _, tail = _read_tail(path)
    raw = _not_a_vhd(size, tail)
    if raw is not None:
        return [raw]
    results = [
        _rule("footer-present", size >= FOOTER_SIZE, f"{size} bytes", f">= {FOOTER_SIZE} bytes",
              ("the file is too short to hold a 512-byte VHD footer", f"not a VHD: {REBUILD_HINT}")),
        _rule("file-size-aligned", size % SECTOR == 0, f"{size} bytes", "a multiple of 512 bytes",
              (f"the file size leaves {size % SECTOR} bytes over a whole number of sectors",
               f"the file was truncated or padded: {REBUILD_HINT}")),
    ]
    if size < FOOTER_SIZE:
        return results
    footer = Footer.unpack(tail)
    results += _footer_rules(footer, size)
    if use_qemu:
        results.append(_qemu_rule(path, footer.current_size))
    return results


def validate(path: Path, *, use_qemu: bool = True) -> list[Problem]:
    """Problems that keep `path` from being an Azure-ready fixed VHD; empty when it is one."""
    return [r.problem() for r in check(path, use_qemu=use_qemu) if r.failed]


def is_fixed_vhd(path: Path) -> bool:
    """Whether `path` is a structurally valid fixed VHD (Azure's size limits aside); reads 512 bytes."""
    return not [r for r in check(path, use_qemu=False) if r.failed and r.rule != SIZE_LIMIT_RULE]


def qemu_size(path: Path) -> int | None:
    """Virtual size in bytes as qemu reads the VHD, or None when qemu-img is not installed."""
    try:
        proc.require("qemu-img")
    except ToolMissingError:
        return None
    # -f vpc: qemu's probe looks for 'conectix' at offset 0 only and calls a fixed VHD "raw" (reference §1.6).
    result = proc.run(["qemu-img", "info", "-f", "vpc", "--output", "json", str(path)], timeout_s=60,
                     hint="qemu-img could not open the file as a VHD")
    # {"virtual-size": 31457280, "filename": "disk.vhd", "format": "vpc", ...}
    return int(json.loads(result.stdout)["virtual-size"])


# ---------------------------------------------------------------------------------------------
# Conversion.

def _refuse_if_not_raw(path: Path, size: int, head: bytes, tail: bytes) -> bool:
    """True when `path` already is a valid fixed VHD; VhdError when it is not a raw disk we can convert."""
    if head[: len(COOKIE)] == COOKIE and len(head) == FOOTER_SIZE:
        # Dynamic and differencing VHDs carry a copy of the footer at offset 0; fixed ones never do.
        kind = DISK_TYPES.get(Footer.unpack(head).disk_type, "unknown")
        raise VhdError(f"{path} is a {kind} VHD (footer copy at offset 0), not a raw disk",
                       "qemu-img convert -f vpc -O raw FILE disk.raw, then convert disk.raw")
    if tail[: len(COOKIE)] == COOKIE:
        footer = Footer.unpack(tail)
        if footer.disk_type != DISK_TYPE_FIXED:
            kind = DISK_TYPES.get(footer.disk_type, f"unknown ({footer.disk_type})")
            raise VhdError(f"{path} is a {kind} VHD, not a raw disk",
                           "qemu-img convert -f vpc -O raw FILE disk.raw, then convert disk.raw")
        if is_fixed_vhd(path):
            return True
        failed = ", ".join(r.rule for r in check(path, use_qemu=False) if r.failed)
        raise VhdError(f"{path} ends with a fixed VHD footer that breaks rules: {failed}",
                       "run 'harness vhd validate' on it; to start over, strip the last 512 bytes and convert again")
    if size == 0:
        raise VhdError(f"{path} is empty", "pass the raw disk image the build produced")
    if size > FOOTER_SIZE and (size - FOOTER_SIZE) % MIB == 0:
        raise VhdError(f"{path} is {(size - FOOTER_SIZE) // MIB} MiB + 512 bytes, which a raw disk never is: a VHD "
                       "whose footer is damaged?", f"check it with 'harness vhd validate {path}'; nothing was changed")
    if size % SECTOR:
        raise VhdError(f"{path} is {size} bytes, not a whole number of 512-byte sectors",
                       "a raw disk is whole sectors: the file is truncated or not a disk image")
    return False


def to_fixed_vhd(path: Path, *, out: Path | None = None) -> Path:
    """Make `path` (a raw disk) a fixed VHD: in place by default, else as a new sparse file `out`.

    In place, the file grows to a whole MiB (a hole, nothing written) and gets the 512-byte footer appended:
    no data is copied. A file that already is a valid fixed VHD is left alone and its path returned.
    """
    size, head, tail = _read_tail(path)
    if _refuse_if_not_raw(path, size, head, tail):
        return path
    current = -(-size // MIB) * MIB
    footer = fixed_footer(current).pack()
    if out is not None and out.exists() and out.samefile(path):
        raise VhdError(f"-o {out} is {path} itself (through a link or another name)",
                       "give a new file name, or leave out -o to convert in place")
    if out is None:
        try:
            _append_footer(path, current, footer)
        except OSError as exc:
            raise VhdError(f"cannot append the VHD footer to {path}: {exc.strerror}",
                           "check free space and write permission, then convert again") from exc
        return path
    if out.exists():
        raise VhdError(f"{out} already exists", "remove it or choose another output name")
    if not out.parent.is_dir():
        raise VhdError(f"folder {out.parent} does not exist", "create it or choose another output path")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        sparse_copy(path, tmp, size)  # data extents only: the copy keeps the holes
        _append_footer(tmp, current, footer)
        os.replace(tmp, out)
    except OSError as exc:
        raise VhdError(f"cannot write {out}: {exc.strerror}", "check free space and write permission") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _append_footer(path: Path, current: int, footer: bytes) -> None:
    """Write the footer at byte `current`; writing past the end leaves the gap as a hole (no blocks allocated)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        written = os.pwrite(fd, footer, current)
        if written != FOOTER_SIZE:
            raise VhdError(f"short write of the VHD footer to {path} ({written} of {FOOTER_SIZE} bytes)",
                           "the file system may be full; free space and convert again")
        os.fsync(fd)
    finally:
        os.close(fd)

