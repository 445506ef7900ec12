"""Gallery version numbers: `auto` gives YYYY.MMDD.N; explicit ones are Major.Minor.Patch.

A new version must be canonical (ASCII digits, no leading zero except a lone 0, each part an int32), so one
number has one spelling; versions already in a gallery are read leniently (`numbers`) and compared by number
(`same_version`), so `1.0.0` is refused where a legacy `01.0.0` exists.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable

from harness.errors import PublishError

# Any three dot-separated runs of ASCII digits: the names a gallery may already hold (\Z, not $: no newline).
VERSION_RE = re.compile(r"\A([0-9]+)\.([0-9]+)\.([0-9]+)\Z")
# What a new version must look like: 0 or a number without a leading zero, three times (used with fullmatch).
CANONICAL_RE = re.compile(r"(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)")
MAX_PART = 2**31 - 1  # Azure: each part a 32-bit signed integer
HINT = "use Major.Minor.Patch in ASCII digits without leading zeros, e.g. 1.0.0, or --version auto"


def numbers(version: str) -> tuple[int, int, int]:
    """'2026.1126.0' -> (2026, 1126, 0), leading zeros allowed (an existing version); PublishError otherwise."""
    match = VERSION_RE.match(version)
    if not match:
        raise PublishError(f"version {version!r} is not Major.Minor.Patch", HINT)
    major, minor, patch = (int(p) for p in match.groups())
    if max(major, minor, patch) > MAX_PART:
        raise PublishError(f"version {version!r} has a part above {MAX_PART}",
                           "Azure stores each part as a 32-bit integer: use smaller numbers")
    return major, minor, patch


def parse(version: str) -> tuple[int, int, int]:
    """A new version's numbers: canonical Major.Minor.Patch only; raises PublishError for anything else."""
    parts = numbers(version)
    if not CANONICAL_RE.fullmatch(version):
        raise PublishError(f"version {version!r} has a leading zero",
                           f"write it as {canonical(version)}: one number has one spelling")
    return parts


def canonical(version: str) -> str:
    """'01.2.03' -> '1.2.3' (the spelling `parse` accepts for the same numbers)."""
    return ".".join(str(p) for p in numbers(version))


def same_version(a: str, b: str) -> bool:
    """Whether two versions are the same number ('1.0.0' and '01.0.0' are); other strings compare as text."""
    if VERSION_RE.match(a) and VERSION_RE.match(b):
        return numbers(a) == numbers(b)
    return a == b


def find_same(version: str, existing: Iterable[str]) -> str | None:
    """The spelling in `existing` of the same version number as `version`, or None (for 'already exists')."""
    return next((e for e in existing if same_version(e, version)), None)


def auto(existing: Iterable[str], today: time.struct_time | None = None) -> str:
    """Next YYYY.MMDD.N for today, N one above the highest already used today (0 if none)."""
    day = today or time.gmtime()
    prefix = (day.tm_year, day.tm_mon * 100 + day.tm_mday)
    used = [numbers(v)[2] for v in existing if _readable(v) and numbers(v)[:2] == prefix]
    return f"{prefix[0]}.{prefix[1]}.{max(used) + 1 if used else 0}"


def _readable(version: str) -> bool:
    try:
        numbers(version)
    except PublishError:
        return False
    return True


def sort_key(version: str) -> tuple[int, int, int]:
    """Numeric order of versions already published (leading zeros tolerated)."""
    return numbers(version)
