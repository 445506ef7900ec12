"""Paths inside the image's root tree, resolved the way the guest would see them: never a host path.

The build runs as root on the host, so a path like `root / "etc/resolv.conf"` is dangerous when the image
holds a symlink there: `/run/systemd/resolve/stub-resolv.conf` is absolute and would name the *host's* file.
`GuestRoot.path()` resolves every symlink relative to the image root (an absolute link restarts at the root,
`..` stops at it), so whatever the image contains, the result stays inside the tree. Every write the build
makes into the image (settings, configuration, seal) goes through here.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BuildError

MAX_LINKS = 40  # like the kernel's ELOOP limit


def check_guest_path(guest_path: str) -> str | None:
    """Why a path named by a recipe cannot be written into an image (None when it can)."""
    if "\0" in guest_path:
        return "contains a NUL byte"
    if not guest_path.startswith("/"):
        return "must be absolute (start with /)"
    parts = guest_path.split("/")[1:]
    if ".." in parts or "." in parts:
        return "must not contain '.' or '..' components"
    if "" in parts:
        return "must be normalized (no '//' and no trailing '/')"
    return None


@dataclass(frozen=True)
class GuestRoot:
    """The image's root tree on the host; guest paths are absolute POSIX paths."""

    root: Path

    def path(self, guest_path: str, *, follow_last: bool = True) -> Path:
        """The host path of `guest_path`, symlinks resolved inside the root; it is always under `root`."""
        problem = check_guest_path(guest_path)
        if problem:
            raise BuildError(f"image path {guest_path!r} {problem}", "fix the path in the recipe")
        resolved: list[str] = []
        pending = guest_path.split("/")[1:][::-1]
        links = 0
        while pending:
            part = pending.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            host = self.root.joinpath(*resolved, part)
            if os.path.islink(host) and (pending or follow_last):
                links += 1
                if links > MAX_LINKS:
                    raise BuildError(f"image path {guest_path!r} has too many levels of symbolic links",
                                     "the image holds a symlink loop there")
                target = os.readlink(host)
                if target.startswith("/"):
                    resolved = []
                pending.extend(target.split("/")[::-1])
                continue
            resolved.append(part)
        return self.root.joinpath(*resolved)

    # -- reading ------------------------------------------------------------------------------
    def exists(self, guest_path: str) -> bool:
        return self.path(guest_path).exists()

    def read_text(self, guest_path: str) -> str | None:
        target = self.path(guest_path)
        return target.read_text(encoding="utf-8") if target.is_file() else None

    def glob(self, guest_dir: str, pattern: str) -> Iterator[str]:
        """Guest paths of the entries of a directory matching a glob pattern (the entries are not followed)."""
        folder = self.path(guest_dir)
        if folder.is_dir():
            for entry in sorted(folder.glob(pattern)):
                yield posixpath.join(guest_dir, entry.relative_to(folder).as_posix())

    # -- writing ------------------------------------------------------------------------------
    def write_text(self, guest_path: str, text: str, mode: int | None = None) -> None:
        """Replace the file at guest_path (its folder created): written to a temp name, then renamed."""
        target = self.path(guest_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            raise BuildError(f"image path {guest_path} is a directory", "the recipe names a folder as a file")
        keep = stat.S_IMODE(target.stat().st_mode) if target.exists() else None
        tmp = target.with_name(f".{target.name}.harness-tmp")
        tmp.unlink(missing_ok=True)  # the image may hold a symlink of that name: never write through it
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(tmp, mode if mode is not None else keep if keep is not None else 0o644)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def mkdir(self, guest_path: str) -> None:
        self.path(guest_path).mkdir(parents=True, exist_ok=True)

    def remove(self, guest_path: str) -> None:
        """Remove a file, link or tree at guest_path (a link itself is removed, never what it points to)."""
        target = self.path(guest_path, follow_last=False)
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)

    def empty_dir(self, guest_path: str) -> None:
        """Remove what a directory holds, keeping the directory (a symlinked directory is left alone)."""
        target = self.path(guest_path, follow_last=False)
        if target.is_dir() and not target.is_symlink():
            for child in target.iterdir():
                self.remove(posixpath.join(guest_path, child.name))
