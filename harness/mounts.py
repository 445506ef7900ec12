"""Mount points under a folder: a scratch tree must never be deleted while something is mounted inside it.

mmdebstrap in root mode mounts /proc, /sys and /dev/pts inside the root it builds; a build killed hard
(SIGKILL, a machine restart) leaves them mounted, and a recursive delete would then walk into the host's
/proc, /sys or /dev.
"""
from __future__ import annotations

from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040 ...)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts_under(path: Path, mountinfo: Path | None = None) -> list[Path]:
    """Mount points at or below `path`, deepest first (the order to unmount them in)."""
    try:
        lines = (mountinfo or MOUNTINFO).read_text().splitlines()
    except OSError:
        return []
    base = Path(path).resolve()
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) < 5:
            continue
        point = Path(_unescape(fields[4]))
        if point == base or base in point.parents:
            found.append(point)
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def refuse_if_mounted(path: Path) -> str | None:
    """A one-line reason not to delete `path`, or None when nothing is mounted inside it."""
    points = mounts_under(path)
    if not points:
        return None
    shown = ", ".join(str(p) for p in points[:3]) + (" ..." if len(points) > 3 else "")
    return (f"{len(points)} file system(s) still mounted inside it ({shown}); "
            f"unmount them first, deepest first (umount {points[0]} ...), then run this again")
