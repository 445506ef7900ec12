"""Read a built disk offline, never mounting it: GPT via `sfdisk -J`, ext4 via debugfs `?offset=`, ESP via mtools.

Works on disk.raw and disk.vhd alike (the VHD is the same bytes plus a 512-byte footer). The root file
system is read in few debugfs runs: whole trees the audit needs are `rdump`ed into a private scratch
folder once, other paths are stat'ed/listed in batches (`debugfs -f cmdfile`). Symbolic links are
resolved inside the image, never on the host: a link in the dump points at the guest's paths.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from harness import proc
from harness.errors import HarnessError

SECTOR = 512
MIB = 1024 * 1024
VHD_FOOTER = 512
MAX_LINK_HOPS = 40
MAX_PREFETCH_ROUNDS = 4
READ_HINT = "the disk may be damaged; rebuild it with 'harness build --rebuild'"


class ImageReadError(HarnessError):
    """The disk or one of its file systems cannot be read."""


# ---------------------------------------------------------------------------------------------
# Partition table.

@dataclass(frozen=True)
class PartitionEntry:
    number: int
    start: int  # sectors
    size: int  # sectors
    type_guid: str
    uuid: str
    name: str

    @property
    def start_bytes(self) -> int:
        return self.start * SECTOR

    @property
    def size_bytes(self) -> int:
        return self.size * SECTOR


@dataclass(frozen=True)
class PartitionTable:
    label: str
    disk_id: str
    first_lba: int
    sector_size: int
    partitions: tuple[PartitionEntry, ...]

    def of_type(self, type_guid: str) -> list[PartitionEntry]:
        return [p for p in self.partitions if p.type_guid == type_guid.upper()]


def parse_sfdisk(text: str) -> PartitionTable:
    """The table from `sfdisk -J` output (start and size in sectors)."""
    table = json.loads(text)["partitiontable"]
    parts = []
    for index, part in enumerate(table.get("partitions", []), start=1):
        # "node": "disk.raw3" -> 3
        node = re.search(r"(\d+)$", str(part.get("node", "")))
        parts.append(PartitionEntry(
            number=int(node.group(1)) if node else index, start=int(part["start"]), size=int(part["size"]),
            type_guid=str(part.get("type", "")).upper(), uuid=str(part.get("uuid", "")).upper(),
            name=str(part.get("name", ""))))
    return PartitionTable(label=str(table.get("label", "")), disk_id=str(table.get("id", "")),
                          first_lba=int(table.get("firstlba", 0)), sector_size=int(table.get("sectorsize", SECTOR)),
                          partitions=tuple(parts))


class Disk:
    """The disk file: raw bytes (footer excluded) and its partition table."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.is_vhd = path.suffix == ".vhd"
        self.data_size = path.stat().st_size - (VHD_FOOTER if self.is_vhd else 0)

    def read(self, offset: int, length: int) -> bytes:
        """Bytes at offset (short at the end of the data, never into the VHD footer)."""
        length = max(0, min(length, self.data_size - offset))
        fd = os.open(self.path, os.O_RDONLY)
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)

    @cached_property
    def table(self) -> PartitionTable:
        result = proc.run(["sfdisk", "-J", str(self.path)], check=False)
        if result.returncode != 0 or not result.stdout.strip():
            raise ImageReadError(f"no partition table readable in {self.path}: {result.stderr.strip()}", READ_HINT)
        return parse_sfdisk(result.stdout)


# ---------------------------------------------------------------------------------------------
# debugfs output parsing (pure).

@dataclass(frozen=True)
class Stat:
    """What the audit needs of an inode: kind, permission bits, owner, size, link target."""

    kind: str  # file | dir | symlink | other
    mode: int  # permission bits incl. setuid/setgid/sticky
    uid: int = 0
    gid: int = 0
    size: int = 0
    link: str = ""


_KINDS = {"regular": "file", "directory": "dir", "symlink": "symlink"}


def parse_debugfs_stat(text: str) -> Stat | None:
    """One `stat` section of debugfs output; None when the path does not exist (empty section)."""
    # Inode: 1783   Type: symlink    Mode:  0777   Flags: 0x0
    head = re.search(r"Type:\s+(\S+)\s+Mode:\s+(\d+)", text)
    if head is None:
        return None
    # User:     0   Group:    42   Project:     0   Size: 571
    owner = re.search(r"User:\s+(\d+)\s+Group:\s+(\d+)(?:\s+Project:\s+\d+)?\s+Size:\s+(\d+)", text)
    # Fast link dest: "usr/bin"
    link = re.search(r'Fast link dest: "(.*)"', text)
    uid, gid, size = (int(owner.group(i)) for i in (1, 2, 3)) if owner else (0, 0, 0)
    return Stat(kind=_KINDS.get(head.group(1), "other"), mode=int(head.group(2), 8), uid=uid, gid=gid, size=size,
                link=link.group(1) if link else "")


def parse_ls_p(text: str) -> list[tuple[str, Stat]] | None:
    """Entries of one `ls -p` section (without . and ..); None when the directory does not exist."""
    entries: list[tuple[str, Stat]] = []
    seen_dot = False
    for line in text.splitlines():
        # /607/100644/0/0/initrd.img-6.1.0-56-cloud-amd64/15316920/
        match = re.fullmatch(r"/(\d+)/(\d+)/(\d+)/(\d+)/(.*)/(\d*)/", line)
        if match is None:
            continue
        name = match.group(5)
        if name in (".", ".."):
            seen_dot = True
            continue
        mode = int(match.group(2), 8)
        entries.append((name, Stat(kind=_kind_of(mode), mode=stat.S_IMODE(mode), uid=int(match.group(3)),
                                   gid=int(match.group(4)), size=int(match.group(6) or 0))))
    return entries if seen_dot or entries else None


def _kind_of(st_mode: int) -> str:
    if stat.S_ISREG(st_mode):
        return "file"
    if stat.S_ISDIR(st_mode):
        return "dir"
    if stat.S_ISLNK(st_mode):
        return "symlink"
    return "other"


def split_sections(stdout: str, commands: list[str]) -> list[str]:
    """Cut `debugfs -f` output into one section per command, using its echo line 'debugfs: CMD'."""
    sections: list[str] = []
    position = 0
    marks: list[tuple[int, int]] = []
    for command in commands:
        echo = f"debugfs: {command}\n"
        found = stdout.find(echo, position)
        if found < 0:
            raise ImageReadError(f"debugfs output lost track at command {command!r}", READ_HINT)
        marks.append((found, found + len(echo)))
        position = found + len(echo)
    for index, (_, body_start) in enumerate(marks):
        end = marks[index + 1][0] if index + 1 < len(marks) else len(stdout)
        sections.append(stdout[body_start:end])
    return sections


def quote(path: str) -> str:
    """A guest path as one debugfs argument."""
    if '"' in path or "\n" in path:
        raise ImageReadError(f"path {path!r} cannot be passed to debugfs", "rename the file in the image")
    return f'"{path}"' if re.search(r"\s", path) else path


def normalize(path: str) -> str:
    return posixpath.normpath("/" + path.lstrip("/")).replace("//", "/")


def resolve(path: str, lstat: Callable[[str], Stat | None]) -> str | None:
    """The canonical guest path after following every symlink inside the image; None if it dangles."""
    parts = [p for p in normalize(path).split("/") if p]
    current = "/"
    hops = 0
    while parts:
        name = parts.pop(0)
        if name == "..":
            current = posixpath.dirname(current) or "/"
            continue
        candidate = posixpath.join(current, name)
        info = lstat(candidate)
        if info is None:
            return None
        if info.kind != "symlink":
            current = candidate
            continue
        hops += 1
        if hops > MAX_LINK_HOPS or not info.link:
            return None
        parts = [p for p in info.link.split("/") if p and p != "."] + parts
        if info.link.startswith("/"):
            current = "/"
    return current


# ---------------------------------------------------------------------------------------------
# The ext4 root file system.

class Ext4Reader:
    """Files of an ext4 file system at a byte offset inside the disk file, read through debugfs."""

    def __init__(self, disk: Path, offset: int, scratch: Path) -> None:
        self.spec = f"{disk.resolve()}?offset={offset}"
        self.mirror = scratch / "root"
        self.extra = scratch / "files"
        self.mirror.mkdir(parents=True, exist_ok=True)
        self.extra.mkdir(parents=True, exist_ok=True)
        self.trees: tuple[str, ...] = ()
        self._stats: dict[str, Stat | None] = {}
        self._lists: dict[str, list[tuple[str, Stat]] | None] = {}
        self._files: dict[str, bytes | None] = {}
        self.runs = 0

    def batch(self, commands: list[str]) -> list[str]:
        """Run commands in one debugfs process; one output section per command."""
        if not commands:
            return []
        script = self.extra / f"cmds-{self.runs}"
        script.write_text("\n".join(commands) + "\n", encoding="utf-8")
        self.runs += 1
        result = proc.run(["debugfs", "-c", "-f", str(script), self.spec], check=False)
        if "Filesystem not open" in result.stderr or result.returncode != 0:
            raise ImageReadError(f"debugfs cannot open the root file system ({self.spec}): "
                                 f"{result.stderr.strip().splitlines()[-1:]}", READ_HINT)
        return split_sections(result.stdout, commands)

    def prefetch(self, trees: Iterable[str] = (), stats: Iterable[str] = (), lists: Iterable[str] = ()) -> None:
        """Dump whole trees and stat paths in one debugfs run, then list folders (resolved) in a second one."""
        new_trees = _outermost([normalize(t) for t in trees if not self._covered(normalize(t))])
        commands: list[str] = []
        for tree in new_trees:
            parent = self.mirror / posixpath.dirname(tree).lstrip("/")
            parent.mkdir(parents=True, exist_ok=True)
            commands.append(f"rdump {quote(tree)} {quote(str(parent))}")
        self.trees = (*self.trees, *new_trees)
        wanted = [normalize(p) for p in (*stats, *lists)]
        for _ in range(MAX_PREFETCH_ROUNDS):
            # Every component of where each path leads, as far as the links known so far tell.
            stat_paths = sorted({a for p in wanted for a in _ancestors(self._guess(p)) if not self._covered(a)}
                                - set(self._stats))
            commands += [f"stat {quote(p)}" for p in stat_paths]
            sections = self.batch(commands)[len(commands) - len(stat_paths):]
            for path, section in zip(stat_paths, sections, strict=True):
                self._stats[path] = parse_debugfs_stat(section)
            commands = []
            if not stat_paths:
                break
        folders = {r for p in lists if (r := self.resolve(p)) is not None and not self._covered(r)}
        self._list(sorted(folders - set(self._lists)))

    def _guess(self, path: str) -> str:
        """Path with the symlinks already known replaced; unknown components are kept as written."""
        parts = [p for p in normalize(path).split("/") if p]
        current = "/"
        for _ in range(MAX_LINK_HOPS * 8):
            if not parts:
                break
            name = parts.pop(0)
            candidate = posixpath.join(current, name) if name != ".." else posixpath.dirname(current) or "/"
            known = self._covered(candidate) or candidate in self._stats
            info = self._lstat(candidate) if known else None
            if info is None or info.kind != "symlink" or not info.link:
                current = candidate
                continue
            parts = [p for p in info.link.split("/") if p and p != "."] + parts
            current = "/" if info.link.startswith("/") else current
        return posixpath.join(current, *parts)

    def _list(self, folders: list[str]) -> None:
        """`ls -p` several folders in one run; their entries' stats are cached too (links excepted)."""
        for folder, section in zip(folders, self.batch([f"ls -p {quote(f)}" for f in folders]), strict=True):
            entries = parse_ls_p(section)
            self._lists[folder] = entries
            for name, info in entries or []:
                if info.kind != "symlink":
                    self._stats.setdefault(posixpath.join(folder, name), info)

    def _covered(self, path: str) -> bool:
        return any(path == t or path.startswith(t.rstrip("/") + "/") for t in self.trees)

    def _host(self, path: str) -> Path:
        return self.mirror / path.lstrip("/")

    def lstat(self, path: str) -> Stat | None:
        """The inode at path without following a final symlink (intermediate ones are followed in the image)."""
        path = normalize(path)
        parent = self.resolve(posixpath.dirname(path)) if path != "/" else "/"
        return None if parent is None else self._lstat(posixpath.join(parent, posixpath.basename(path)))

    def _lstat(self, path: str) -> Stat | None:
        """lstat of a path whose parent is canonical: on the host, no symlink of the dump is ever crossed."""
        path = normalize(path)
        if path == "/":
            return Stat(kind="dir", mode=0o755)
        if self._covered(path):
            try:
                info = os.lstat(self._host(path))
            except FileNotFoundError:
                return None
            except (PermissionError, NotADirectoryError):
                pass
            else:
                link = os.readlink(self._host(path)) if stat.S_ISLNK(info.st_mode) else ""
                return Stat(kind=_kind_of(info.st_mode), mode=stat.S_IMODE(info.st_mode), uid=info.st_uid,
                            gid=info.st_gid, size=info.st_size, link=link)
        if path not in self._stats:
            self._stat_now([path])
        return self._stats[path]

    def _stat_now(self, paths: list[str]) -> None:
        for path, section in zip(paths, self.batch([f"stat {quote(p)}" for p in paths]), strict=True):
            self._stats[path] = parse_debugfs_stat(section)

    def resolve(self, path: str) -> str | None:
        return resolve(path, self._lstat)

    def stat(self, path: str) -> Stat | None:
        """The inode at path after following symlinks."""
        real = self.resolve(path)
        return None if real is None else self._lstat(real)

    def exists(self, path: str) -> bool:
        return self.lstat(path) is not None

    def read_bytes(self, path: str) -> bytes | None:
        """Exact bytes of a regular file (symlinks followed inside the image); None if absent or not a file."""
        real = self.resolve(path)
        info = None if real is None else self._lstat(real)
        if real is None or info is None or info.kind != "file":
            return None
        if self._covered(real):
            try:
                return self._host(real).read_bytes()
            except PermissionError:
                pass  # mode 0000 files dumped by a non-root user: fetch a readable copy below
        if real not in self._files:
            self.fetch([real])
        return self._files[real]

    def fetch(self, paths: Iterable[str]) -> None:
        """Dump several regular files in one debugfs run (cached by read_bytes)."""
        wanted = list(dict.fromkeys(normalize(p) for p in paths if normalize(p) not in self._files))
        targets = {p: self.extra / f"f{len(self._files) + i}" for i, p in enumerate(wanted)}
        self.batch([f"dump {quote(p)} {quote(str(t))}" for p, t in targets.items()])
        for path, target in targets.items():
            self._files[path] = target.read_bytes() if target.exists() else None

    def texts(self, paths: Iterable[str]) -> dict[str, str | None]:
        """Several files' text, fetching every one outside the dumped trees in a single debugfs run."""
        real = {p: self.resolve(p) for p in paths}
        self.fetch(r for r in real.values() if r is not None and not self._covered(r) and r not in self._files)
        return {p: self.text(p) for p in real}

    def dump_to(self, path: str, target: Path) -> bool:
        """Copy one file out of the image (e.g. the initramfs for a listing tool); False if absent."""
        real = self.resolve(path)
        if real is None:
            return False
        self.batch([f"dump {quote(real)} {quote(str(target))}"])
        return target.exists()

    def text(self, path: str) -> str | None:
        data = self.read_bytes(path)
        return None if data is None else data.decode("utf-8", errors="replace")

    def listdir(self, path: str) -> list[str] | None:
        """Names in a directory (symlinks followed), sorted; None if it is not a directory."""
        entries = self.entries(path)
        return None if entries is None else sorted(name for name, _ in entries)

    def entries(self, path: str) -> list[tuple[str, Stat]] | None:
        real = self.resolve(path)
        if real is None:
            return None
        if self._covered(real):
            host = self._host(real)
            try:
                names = sorted(os.listdir(host))
            except (NotADirectoryError, FileNotFoundError):
                return None
            except PermissionError:
                names = None
            if names is not None:
                return [(n, s) for n in names if (s := self._lstat(posixpath.join(real, n))) is not None]
        if real not in self._lists:
            self._list([real])
        return self._lists[real]

    def walk(self, path: str) -> list[tuple[str, Stat]]:
        """Every entry below a directory, depth first, without following symlinks."""
        found: list[tuple[str, Stat]] = []
        for name, info in self.entries(path) or []:
            child = posixpath.join(normalize(path), name)
            found.append((child, info))
            if info.kind == "dir":
                found.extend(self.walk(child))
        return found


def _ancestors(path: str) -> list[str]:
    """'/a/b/c' -> ['/a', '/a/b', '/a/b/c']."""
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _outermost(trees: list[str]) -> list[str]:
    """Drop trees nested in another requested tree (one rdump covers them)."""
    ordered = sorted(set(trees), key=len)
    kept: list[str] = []
    for tree in ordered:
        if not any(tree == k or tree.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(tree)
    return kept


# ---------------------------------------------------------------------------------------------
# The EFI system partition (FAT) through mtools.

def mtools_env() -> dict[str, str]:
    return {**os.environ, "MTOOLS_SKIP_CHECK": "1"}


def esp_copy(disk: Path, offset: int, guest_path: str, target: Path) -> bool:
    """Copy a file out of a FAT partition at offset; False when it does not exist."""
    result = proc.run(["mcopy", "-n", "-i", f"{disk}@@{offset}", f"::{guest_path}", str(target)],
                     env=mtools_env(), check=False)
    return result.returncode == 0 and target.exists()


def esp_listing(disk: Path, offset: int) -> list[str] | None:
    """Every path on a FAT partition (`mdir -/ -b`), or None when it is not a readable FAT file system."""
    result = proc.run(["mdir", "-/", "-b", "-i", f"{disk}@@{offset}", "::/"], env=mtools_env(), check=False)
    if result.returncode != 0:
        return None
    # ::/EFI/BOOT/BOOTX64.EFI
    return [line.removeprefix("::") for line in result.stdout.splitlines() if line.startswith("::/")]


def fat_serial(boot_sector: bytes) -> str | None:
    """The volume serial 'XXXX-XXXX' of a FAT boot sector, as fstab's UUID= names it."""
    if len(boot_sector) < 512 or boot_sector[510:512] != b"\x55\xaa":
        return None
    # FAT32 keeps its extended BPB at 0x40 ('FAT32   ' type string at 0x52), FAT12/16 at 0x24.
    at = 0x43 if boot_sector[0x52:0x57] == b"FAT32" else 0x27
    value = int.from_bytes(boot_sector[at:at + 4], "little")
    return f"{value >> 16:04X}-{value & 0xFFFF:04X}"


def ext4_uuid(superblock: bytes) -> str | None:
    """The file system UUID from an ext2/3/4 superblock (the 1024 bytes at partition offset 1024)."""
    if len(superblock) < 0x78 or superblock[0x38:0x3A] != b"\x53\xef":
        return None
    raw = superblock[0x68:0x78].hex()
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
