"""Names, versions and regions are matched whole and in ASCII; one version number has one spelling; the disk size
has Azure's limits at build time too."""

from __future__ import annotations

import time

import pytest

from harness.builder.layout import MAX_DISK_MIB, plan
from harness.errors import PublishError, UsageError
from harness.publish import model, versions

ARABIC_ONE = "\u0661"  # ARABIC-INDIC DIGIT ONE: str.isdigit() and regex \d say yes, int() reads it as 1


@pytest.mark.parametrize("version", [
    "01.0.0", "1.00.0", "1.0.07", "1.0.0\n", "\n1.0.0", " 1.0.0", "1.0.0 ", f"{ARABIC_ONE}.0.0", "1.0.\uff11",
    "2147483648.0.0", "1.0", "1.0.0.0", "-1.0.0", "+1.0.0", "1_0.0.0", "", "latest",
])
def test_version_refused(version: str) -> None:
    with pytest.raises(PublishError, match="version"):
        model.check_version(version)


@pytest.mark.parametrize("version", ["0.0.0", "1.0.0", "2026.1203.17", "2147483647.2147483647.2147483647", "auto"])
def test_version_accepted(version: str) -> None:
    assert model.check_version(version) == version


def test_leading_zero_error_names_the_canonical_spelling() -> None:
    with pytest.raises(PublishError) as info:
        versions.parse("01.002.0")
    assert "1.2.0" in info.value.hint


def test_same_version_compares_numbers() -> None:
    assert versions.same_version("01.0.0", "1.0.0")
    assert versions.same_version("1.0.0", "1.0.0")
    assert not versions.same_version("1.0.1", "1.0.0")
    assert not versions.same_version("1.0.0\n", "1.0.0")
    assert not versions.same_version("latest", "1.0.0")
    assert versions.canonical("007.0.010") == "7.0.10"
    assert versions.find_same("1.0.0", ["0.9.0", "01.0.0", "1.0.0"]) == "01.0.0"
    assert versions.find_same("2.0.0", ["1.0.0", "auto"]) is None


def test_existing_versions_with_leading_zeros_still_sort_and_count_for_auto() -> None:
    existing = ["1.10.0", "01.9.0", "2026.1203.07", "garbage", "2026.1203.3\n"]
    assert sorted(existing[:2], key=versions.sort_key) == ["01.9.0", "1.10.0"]
    today = time.struct_time((2026, 12, 3, 0, 0, 0, 3, 337, 0))
    assert versions.auto(existing, today) == "2026.1203.8"


@pytest.mark.parametrize("name", ["debian\n", "\ndebian", "deb ian", "..", "-x", "x-", "a/b", "a" * 81, ""])
def test_definition_name_refused(name: str) -> None:
    with pytest.raises(PublishError, match="definition name"):
        model.check_name(name)


@pytest.mark.parametrize("name", ["a", "debian-12-gen2", "Ubuntu_24.04", "a" * 80])
def test_definition_name_accepted(name: str) -> None:
    assert model.check_name(name) == name


@pytest.mark.parametrize("text", ["westeurope\n", "west europe", "westeurope=0", "westeurope=101", "westeurope=",
                                  f"westeurope={ARABIC_ONE}", "westeurope=1_0", "westeurope= 2", "westeurope=+2",
                                  "westeurope=2\n", "=2", ""])
def test_target_region_refused(text: str) -> None:
    with pytest.raises(PublishError, match="target region"):
        model.parse_target_region(text)


@pytest.mark.parametrize("text, name, replicas", [("westeurope", "westeurope", 1), ("eastus2=100", "eastus2", 100),
                                                  ("local=3", "local", 3)])
def test_target_region_accepted(text: str, name: str, replicas: int) -> None:
    region = model.parse_target_region(text)
    assert (region.name, region.replicas) == (name, replicas)


@pytest.mark.parametrize("text", ["2027-06-30\n", "\u0662\u0660\u0662\u0667-06-30", "2027-6-30", "2027-13-01"])
def test_end_of_life_refused(text: str) -> None:
    with pytest.raises(PublishError, match="end-of-life"):
        model.parse_end_of_life(text)


def test_disk_above_azure_limit_is_refused_by_the_layout() -> None:
    assert MAX_DISK_MIB == 1047552
    assert plan(MAX_DISK_MIB, 127).disk_size_mib == MAX_DISK_MIB
    for size in (MAX_DISK_MIB + 1, 99999999999):
        with pytest.raises(UsageError, match="above Azure's OS disk limit of 1047552 MiB"):
            plan(size, 127)


def test_disk_below_minimum_says_the_minimum() -> None:
    with pytest.raises(UsageError, match="below the minimum of 386 MiB") as info:
        plan(300, 127)
    assert "--disk-size-mib 386" in info.value.hint
