"""GRUB as installed on the disk: the early config embedded in core.img / BOOTX64.EFI, and grub.cfg entries.

Pure functions over bytes and text. core.img for i386-pc is diskboot (1 sector), lzma_decompress.img, then
the kernel and modules (the embedded config among them) as a raw LZMA stream with fixed properties
(grub util/mkimage.c `compress_kernel_lzma`: lc=3 lp=0 pb=2, 64 KiB dictionary). The EFI image embeds the
config uncompressed.
"""

from __future__ import annotations

import lzma
import re
import shlex
import struct
from dataclasses import dataclass, field

SECTOR = 512
BLOCKLIST_OFFSET = SECTOR - 12  # diskboot's last blocklist entry {u64 start, u16 len, u16 segment}
MBR_KERNEL_SECTOR = 0x5C  # boot.img: LBA of core.img's first sector
LZMA_COMPRESSED_SIZE = 0x08  # inside lzma_decompress.img (GRUB_DECOMPRESSOR_I386_PC_*)
LZMA_UNCOMPRESSED_SIZE = 0x0C
LZMA_FILTERS = [{"id": lzma.FILTER_LZMA1, "dict_size": 1 << 16, "lc": 3, "lp": 0, "pb": 2}]
MAX_DECOMPRESSOR_SIZE = 8192


@dataclass(frozen=True)
class EarlyConfig:
    """What the embedded config does: which file system it searches and where it loads grub.cfg from."""

    text: str
    root_uuid: str | None
    prefix: str | None
    configfile: str | None

    @property
    def grub_dir(self) -> str | None:
        """The folder it loads grub.cfg from ('($root)/boot/grub/grub.cfg' -> '/boot/grub')."""
        source = self.configfile.rsplit("/", 1)[0] if self.configfile else self.prefix
        return re.sub(r"^\([^)]*\)", "", source) if source else None


def mbr_core_lba(sector0: bytes) -> int:
    """The LBA boot.img's code in sector 0 jumps to (where GRUB expects core.img)."""
    return int(struct.unpack_from("<Q", sector0, MBR_KERNEL_SECTOR)[0])


def core_img_size(core: bytes) -> int:
    """core.img's length in bytes from diskboot's blocklist (the first sector plus `len` more)."""
    _, length, _ = struct.unpack_from("<QHH", core, BLOCKLIST_OFFSET)
    return (int(length) + 1) * SECTOR


def decompress_core(core: bytes, decompressor_size: int | None) -> bytes | None:
    """The uncompressed kernel+modules of an i386-pc core.img; None when it cannot be decoded.

    decompressor_size is the size of lzma_decompress.img (read from the image's GRUB folder); when
    unknown, every plausible start is tried.
    """
    if len(core) < 2 * SECTOR:
        return None
    packed, unpacked = struct.unpack_from("<II", core, SECTOR + LZMA_COMPRESSED_SIZE)
    starts = [decompressor_size] if decompressor_size else range(16, MAX_DECOMPRESSOR_SIZE)
    for start in starts:
        begin = SECTOR + start
        try:
            out = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=LZMA_FILTERS).decompress(
                core[begin:begin + packed], max_length=unpacked)
        except lzma.LZMAError:
            continue
        if len(out) == unpacked:
            return out
    return None


def find_early_config(blob: bytes) -> EarlyConfig | None:
    """The embedded config in a GRUB image: a NUL-delimited printable block that searches for root."""
    for chunk in blob.split(b"\x00"):
        if b"search" not in chunk or b"\n" not in chunk or len(chunk) > 4096:
            continue
        try:
            text = chunk.decode("ascii")
        except UnicodeDecodeError:
            continue
        if not all(c.isprintable() or c in "\n\t" for c in text):
            continue
        parsed = parse_early_config(text)
        if parsed.root_uuid or parsed.configfile:
            return parsed
    return None


def parse_early_config(text: str) -> EarlyConfig:
    """`search --fs-uuid --set=root UUID`, `set prefix=...`, `configfile ...` from an early config."""
    uuid = prefix = configfile = None
    for line in text.splitlines():
        words = _split(line)
        if not words:
            continue
        if words[0] == "search.fs_uuid" and len(words) > 1:
            uuid = words[1]
        elif words[0] == "search" and ("--fs-uuid" in words or "-u" in words):
            values = [w for w in words[1:] if not w.startswith("-")]
            uuid = values[-1] if values else None
        elif words[0] == "set" and len(words) > 1 and words[1].startswith("prefix="):
            prefix = words[1].removeprefix("prefix=")
        elif words[0] in ("configfile", "normal") and len(words) > 1:
            configfile = words[1]
    return EarlyConfig(text=text, root_uuid=uuid.lower() if uuid else None, prefix=prefix, configfile=configfile)


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:
        return line.split()


# ---------------------------------------------------------------------------------------------
# grub.cfg

@dataclass
class MenuEntry:
    title: str
    entry_id: str = ""
    linux: list[str] = field(default_factory=list)  # the linux command's words: kernel path, then params
    initrd: list[str] = field(default_factory=list)


_ENTRY = re.compile(r"""^\s*menuentry\s+(?P<q>['"])(?P<title>.*?)(?P=q)(?P<rest>.*)\{\s*$""")


def parse_grub_cfg(text: str) -> tuple[str, list[MenuEntry]]:
    """(default, top-level menu entries) of a grub.cfg; submenus are not entered."""
    default = "0"
    entries: list[MenuEntry] = []
    current: MenuEntry | None = None
    depth = 0
    for line in text.splitlines():
        words = _split(line)
        # menuentry 'Debian 12' --id harness-default {
        match = _ENTRY.match(line)
        if match and depth == 0:
            rest = _split(match.group("rest"))
            entry_id = rest[rest.index("--id") + 1] if "--id" in rest[:-1] else ""
            current = MenuEntry(title=match.group("title"), entry_id=entry_id)
            entries.append(current)
            depth = 1
            continue
        if line.strip().startswith("submenu") and line.rstrip().endswith("{"):
            depth += 1
            continue
        if words and words[0] == "}":
            depth = max(0, depth - 1)
            current = None if depth == 0 else current
            continue
        if depth == 0 and words and words[0] == "set" and len(words) > 1 and words[1].startswith("default="):
            default = words[1].removeprefix("default=")
        elif current is not None and depth == 1 and words and words[0] in ("linux", "linuxefi", "linux16"):
            current.linux = words[1:]
        elif current is not None and depth == 1 and words and words[0] in ("initrd", "initrdefi", "initrd16"):
            current.initrd = words[1:]
    return default, entries


def default_entry(text: str) -> MenuEntry | None:
    """The entry GRUB boots without interaction (`set default=` by index, id or title)."""
    default, entries = parse_grub_cfg(text)
    if not entries:
        return None
    if default.isdigit():
        index = int(default)
        return entries[index] if index < len(entries) else None
    for entry in entries:
        if default in (entry.entry_id, entry.title):
            return entry
    return entries[0]
