"""Gallery version numbers (DESIGN.md): `auto` gives YYYY.MMDD.N; explicit ones are Major.Minor.Patch."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable

from harness.errors import PublishError

VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
MAX_PART = 2**31 - 1  # Azure: each part a 32-bit integer


def parse(version: str) -> tuple[int, int, int]:
    """'2026.1126.0' -> (2026, 1126, 0); raises PublishError for anything Azure would refuse."""
    match = VERSION_RE.match(version)
    if not match:
        raise PublishError(f"version {version!r} is not Major.Minor.Patch", "use e.g. 1.0.0 or --version auto")
    parts = tuple(int(p) for p in match.groups())
    if any(p > MAX_PART for p in parts):
        raise PublishError(f"version {version!r} has a part above {MAX_PART}", "each part must fit 32 bits")
    return parts[0], parts[1], parts[2]


def auto(existing: Iterable[str], today: time.struct_time | None = None) -> str:
    """Next YYYY.MMDD.N for today, N one above the highest already used today (0 if none)."""
    day = today or time.gmtime()
    prefix = (day.tm_year, day.tm_mon * 100 + day.tm_mday)
    used = [parse(v)[2] for v in existing if VERSION_RE.match(v) and parse(v)[:2] == prefix]
    return f"{prefix[0]}.{prefix[1]}.{max(used) + 1 if used else 0}"


def sort_key(version: str) -> tuple[int, int, int]:
    return parse(version)
