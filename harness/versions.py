"""Package version order, by each package format's own rules: dpkg's for Debian packages, rpm's rpmvercmp for
RPMs (epoch:version-release, with '~' sorting before and '^' after the end of a version).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from harness.enums import Family

VersionOrder = Callable[[str, str], int]

# ---------------------------------------------------------------------------------------------
# dpkg (Debian Policy 5.6.12; dpkg's verrevcmp)


def _dpkg_char_order(char: str) -> int:
    """dpkg's character order: '~' sorts before everything, letters before non-letters."""
    if char == "~":
        return -1
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _dpkg_part(a: str, b: str) -> int:
    """Compare an upstream version or Debian revision as dpkg does (alternating non-digit/digit runs)."""
    while a or b:
        a_text = re.match(r"^[^0-9]*", a).group(0)  # type: ignore[union-attr]
        b_text = re.match(r"^[^0-9]*", b).group(0)  # type: ignore[union-attr]
        a, b = a[len(a_text):], b[len(b_text):]
        for i in range(max(len(a_text), len(b_text))):
            ca = _dpkg_char_order(a_text[i]) if i < len(a_text) else 0
            cb = _dpkg_char_order(b_text[i]) if i < len(b_text) else 0
            if ca != cb:
                return -1 if ca < cb else 1
        a_num = re.match(r"^[0-9]*", a).group(0)  # type: ignore[union-attr]
        b_num = re.match(r"^[0-9]*", b).group(0)  # type: ignore[union-attr]
        a, b = a[len(a_num):], b[len(b_num):]
        if int(a_num or 0) != int(b_num or 0):
            return -1 if int(a_num or 0) < int(b_num or 0) else 1
    return 0


def _split_evr(version: str, no_revision: str) -> tuple[int, str, str]:
    """[epoch:]version[-revision] as dpkg and rpm both parse it: the epoch ends at the first ':' (0 when missing or
    not a number), the revision starts after the last '-' (`no_revision` when there is none).
    '1:2.36-9+deb12u13' -> (1, '2.36', '9+deb12u13')."""
    epoch, sep, rest = version.partition(":")
    if not sep or not epoch.isdigit():
        epoch, rest = "0", version
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", no_revision)
    return int(epoch), upstream, revision


def dpkg_compare(a: str, b: str) -> int:
    """-1, 0 or 1 as `dpkg --compare-versions` orders Debian versions ([epoch:]upstream[-revision])."""
    ea, ua, ra = _split_evr(a, no_revision="0")  # dpkg: a missing revision compares as "0"
    eb, ub, rb = _split_evr(b, no_revision="0")
    if ea != eb:
        return -1 if ea < eb else 1
    return _dpkg_part(ua, ub) or _dpkg_part(ra, rb)


# ---------------------------------------------------------------------------------------------
# rpm (rpm's lib/rpmvercmp.c): only ASCII letters and digits form segments, everything else but '~' and '^'
# separates them; '1.0' and '1_0' are the same version.
_RPM_TOKEN = re.compile(r"~|\^|[0-9]+|[A-Za-z]+")


def _rpm_marker_order(x: str, y: str) -> int:
    """Order when either token is '~' or '^' (either may be '' past the end); 0 when they tie."""
    if "~" in (x, y):  # '~' sorts before everything, the end of the version included
        return 0 if x == y else (-1 if x == "~" else 1)
    if x == y:
        return 0
    if not x or not y:  # '^' sorts after the end of the version ...
        return -1 if not x else 1
    return 1 if y == "^" else -1  # ... but before any further segment


def _rpm_segment_order(x: str, y: str) -> int:
    """Order of two segments (either may be '' past the end: the version with segments left over is newer)."""
    if not x or not y:
        return (not y) - (not x)
    if x[0].isdigit() != y[0].isdigit():  # a numeric segment is newer than an alphabetic one
        return 1 if x[0].isdigit() else -1
    if x[0].isdigit():
        x, y = x.lstrip("0"), y.lstrip("0")
        if len(x) != len(y):
            return -1 if len(x) < len(y) else 1
    return (x > y) - (x < y)


def rpmvercmp(a: str, b: str) -> int:
    """-1, 0 or 1 as rpm's rpmvercmp orders two version (or release) strings."""
    ta, tb = _RPM_TOKEN.findall(a), _RPM_TOKEN.findall(b)
    for i in range(max(len(ta), len(tb))):
        x, y = ta[i] if i < len(ta) else "", tb[i] if i < len(tb) else ""
        order = _rpm_marker_order(x, y) if {x, y} & {"~", "^"} else _rpm_segment_order(x, y)
        if order:
            return order
    return 0


def rpm_compare(a: str, b: str) -> int:
    """-1, 0 or 1 as rpm orders [epoch:]version[-release]: epoch, then version, then release."""
    ea, va, ra = _split_evr(a, no_revision="")  # rpm: a missing release is empty
    eb, vb, rb = _split_evr(b, no_revision="")
    if ea != eb:
        return -1 if ea < eb else 1
    return rpmvercmp(va, vb) or rpmvercmp(ra, rb)


# Flatcar's packages are Gentoo ebuilds, whose rules neither format follows: dpkg's order stands in, as before.
ORDERS: dict[Family, VersionOrder] = {Family.APT: dpkg_compare, Family.DNF: rpm_compare,
                                      Family.ZYPPER: rpm_compare, Family.FLATCAR: dpkg_compare}


def compare_versions(a: str, b: str, family: Family = Family.APT) -> int:
    """-1, 0 or 1: the order of two versions of one package, by the rules of the family's package format."""
    return ORDERS[family](a, b)
