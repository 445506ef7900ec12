"""Version order per package format: rpm's rpmvercmp (pairs from rpm's own tests/rpmvercmp.at), rpm's
epoch:version-release, dpkg's epoch parsing, and the family that picks the rules."""

from __future__ import annotations

import pytest

from harness.enums import Family
from harness.versions import compare_versions, dpkg_compare, rpm_compare, rpmvercmp

# rpm's tests/rpmvercmp.at, one direction of each pair (the test checks both)
RPMVERCMP_PAIRS = [
    ("1.0", "1.0", 0), ("1.0", "2.0", -1), ("2.0.1", "2.0.1", 0), ("2.0", "2.0.1", -1),
    ("2.0.1a", "2.0.1a", 0), ("2.0.1a", "2.0.1", 1), ("5.5p1", "5.5p1", 0), ("5.5p1", "5.5p2", -1),
    ("5.5p10", "5.5p10", 0), ("5.5p1", "5.5p10", -1), ("10xyz", "10.1xyz", -1), ("xyz10", "xyz10", 0),
    ("xyz10", "xyz10.1", -1), ("xyz.4", "xyz.4", 0), ("xyz.4", "8", -1), ("xyz.4", "2", -1),
    ("5.5p2", "5.6p1", -1), ("5.6p1", "6.5p1", -1), ("6.0.rc1", "6.0", 1), ("10b2", "10a1", 1),
    ("10a2", "10b2", -1), ("1.0aa", "1.0aa", 0), ("1.0a", "1.0aa", -1), ("10.0001", "10.0001", 0),
    ("10.0001", "10.1", 0), ("10.0001", "10.0039", -1), ("4.999.9", "5.0", -1), ("20101121", "20101121", 0),
    ("20101121", "20101122", -1), ("2_0", "2_0", 0), ("2.0", "2_0", 0),
    ("a", "a", 0), ("a+", "a+", 0), ("a+", "a_", 0), ("+a", "+a", 0), ("+a", "_a", 0), ("+_", "+_", 0),
    ("_+", "+_", 0), ("_+", "_+", 0), ("+", "_", 0),
    ("1.0~rc1", "1.0~rc1", 0), ("1.0~rc1", "1.0", -1), ("1.0~rc1", "1.0~rc2", -1),
    ("1.0~rc1~git123", "1.0~rc1~git123", 0), ("1.0~rc1~git123", "1.0~rc1", -1),
    ("1.0^", "1.0^", 0), ("1.0^", "1.0", 1), ("1.0^git1", "1.0^git1", 0), ("1.0^git1", "1.0", 1),
    ("1.0^git1", "1.0^git2", -1), ("1.0^git1", "1.01", -1), ("1.0^20160101", "1.0^20160101", 0),
    ("1.0^20160101", "1.0.1", -1), ("1.0^20160101^git1", "1.0^20160101^git1", 0),
    ("1.0^20160102", "1.0^20160101^git1", 1), ("1.0~rc1^git1", "1.0~rc1^git1", 0),
    ("1.0~rc1^git1", "1.0~rc1", 1), ("1.0^git1~pre", "1.0^git1~pre", 0), ("1.0^git1", "1.0^git1~pre", 1),
    ("1.0^", "1.0.1", -1),
]


@pytest.mark.parametrize(("a", "b", "expected"), RPMVERCMP_PAIRS)
def test_rpmvercmp_matches_rpms_own_test_suite(a: str, b: str, expected: int) -> None:
    assert rpmvercmp(a, b) == expected
    assert rpmvercmp(b, a) == -expected


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("1:1.0-1", "2.0-1", 1),  # the epoch wins
    ("0:1.0-1", "1.0-1", 0),  # a missing epoch is 0
    ("2.9.1.1-1.el9", "2.9.1.1-2.el9", -1),  # then the release
    ("2.9.1.1-10.el9", "2.9.1.1-9.el9", 1),
    ("1.0-1.el9_4", "1.0-1.el9_4.1", -1),
    ("3.0.7-27.el9", "1:3.0.7-24.el9", -1),  # openssl-libs: epoch 1 beats a higher release
    ("5.14.0-427.13.1.el9_4", "5.14.0-427.13.1.el9_4", 0),
    ("1.0~rc1-1", "1.0-1", -1),
])
def test_rpm_compare_orders_epoch_version_release(a: str, b: str, expected: int) -> None:
    assert rpm_compare(a, b) == expected
    assert rpm_compare(b, a) == -expected


def test_dpkg_epoch_ends_at_the_first_colon() -> None:
    assert dpkg_compare("1:2:3-1", "1:2:4-1") == -1  # upstream versions may contain ':' after an epoch
    assert dpkg_compare("2:1.0", "1:9.0") == 1


def test_each_family_compares_with_its_package_formats_rules() -> None:
    # '1.0^' is after 1.0 and before 1.0.1 for rpm; dpkg orders '^' after '.' (a non-letter character)
    for family in (Family.DNF, Family.ZYPPER):
        assert compare_versions("1.0^", "1.0.1", family) == -1
    assert compare_versions("1.0^", "1.0.1", Family.APT) == 1
    assert compare_versions("1.0^", "1.0.1") == 1  # dpkg's rules unless a family says otherwise
