"""diff (dpkg version order, what changed), matrix entries, builds prune protecting published builds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.diffing import Side, diff, side_of_build
from harness.enums import Stage
from harness.errors import NotFoundError
from harness.manifest import Manifest
from harness.results import FAILED, PASSED, Record, StageReport
from harness.versions import compare_versions
from tests.factories import make_build, make_manifest


@pytest.mark.parametrize("a,b,expected", [
    ("1.0", "1.0", 0), ("1.0", "1.1", -1), ("1.10", "1.9", 1), ("1.0~rc1", "1.0", -1),
    ("1:0.9", "2.0", 1), ("2.36-9+deb12u13", "2.36-9+deb12u14", -1), ("6.1.0-28", "6.1.0-28", 0),
    ("1.0a", "1.0", 1), ("1.0-1", "1.0-1ubuntu1", -1), ("9.2p1-2+deb12u5", "9.2p1-2+deb12u10", -1),
])
def test_dpkg_version_order(a: str, b: str, expected: int) -> None:
    assert compare_versions(a, b) == expected
    assert compare_versions(b, a) == -expected


def manifest(packages: dict[str, str], kernel: str, digest: str) -> Manifest:
    return make_manifest(packages=[{"name": n, "version": v} for n, v in packages.items()], kernel_version=kernel,
                         content_digest=digest, disk={"size_bytes": 1, "allocated_bytes": 10})


def test_diff_reports_every_kind_of_change() -> None:
    old = manifest({"a": "1.0", "b": "2.0", "gone": "1", "c": "3.0"}, "6.1.0-27", "x")
    new = manifest({"a": "1.1", "b": "1.9", "new": "5", "c": "3.0"}, "6.1.0-28", "y")
    records_old = (Record("verify", "C1", PASSED, firmware="bios", platform="azure"),)
    records_new = (Record("verify", "C1", FAILED, firmware="bios", platform="azure"),)
    verify_old = StageReport(Stage.VERIFY, details={"boots": {"bios-azure": {"timings_s": {"ready_s": 40.0}}}})
    verify_new = StageReport(Stage.VERIFY, details={"boots": {"bios-azure": {"timings_s": {"ready_s": 45.5}}}})
    result = diff(Side("A", old, records_old, verify_old), Side("B", new, records_new, verify_new))
    assert result.added == {"new": "5"} and result.removed == {"gone": "1"}
    assert result.upgraded == {"a": ("1.0", "1.1")} and result.downgraded == {"b": ("2.0", "1.9")}
    assert result.kernel == ("6.1.0-27", "6.1.0-28")
    assert result.checks == {"verify:bios/azure:C1": ("Passed", "Failed")}
    assert result.ready_s == {"bios-azure": (40.0, 45.5)}
    assert not result.same_content
    assert json.loads(json.dumps(result.to_json()))["upgraded"] == {"a": ["1.0", "1.1"]}


def test_diff_orders_rpm_family_versions_by_rpm_rules() -> None:
    # rpm: '^' sorts after 1.0 but before 1.0.1, and a numeric segment beats an alphabetic one; dpkg's
    # character order would call both of these downgrades
    packages_old = [{"name": "a", "version": "1.0^git1-1.el9"}, {"name": "b", "version": "xyz.4-1"}]
    packages_new = [{"name": "a", "version": "1.0.1-1.el9"}, {"name": "b", "version": "8-1"}]
    for family in ("dnf", "zypper"):
        old = make_manifest(family=family, packages=packages_old)
        new = make_manifest(family=family, packages=packages_new)
        result = diff(Side("A", old, ()), Side("B", new, ()))
        assert set(result.upgraded) == {"a", "b"} and not result.downgraded
    apt = diff(Side("A", make_manifest(packages=packages_old), ()), Side("B", make_manifest(packages=packages_new), ()))
    assert set(apt.downgraded) == {"a", "b"}  # dpkg's rules, unchanged for Debian packages


def test_matrix_lists_buildable_recipes_with_both_firmwares(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "--json", "--family", "apt", "--name", "debian-12*"]) == 0
    items = json.loads(capsys.readouterr().out)["include"]
    names = {i["recipe"] for i in items}
    assert {"debian-12", "debian-12-generic"} <= names and "ubuntu-24.04" not in names
    assert all(i["firmware"] == "both" and i["firmwares"] == ["bios", "uefi"] for i in items)


def fake_build(root: Path, recipe: str, build_id: str, published: bool) -> Path:
    folder = make_build(root, recipe=recipe, build_id=build_id).path
    if published:
        (folder / "publish.json").write_text(json.dumps({"stage": "publish", "passed": True, "records": []}))
    return folder


def test_prune_keeps_newest_and_published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    builds = tmp_path / "builds"
    monkeypatch.setenv("HARNESS_BUILDS", str(builds))
    old = fake_build(builds, "debian-12", "20260101-000000-aaaaaa", published=False)
    published = fake_build(builds, "debian-12", "20260102-000000-bbbbbb", published=True)
    newest = fake_build(builds, "debian-12", "20260103-000000-cccccc", published=False)
    assert main(["builds", "prune", "--keep", "1", "--gallery", str(tmp_path / "nogallery"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["deleted"] == [str(old)] and out["kept_published"] == [str(published)]
    assert not old.exists() and published.exists() and newest.exists()
    assert main(["builds", "prune", "--keep", "1", "--include-published", "--gallery", str(tmp_path / "x")]) == 0
    assert not published.exists() and newest.exists()


@pytest.mark.parametrize(("name", "text"), [("results.json", '{"records": [1]}'),
                                            ("results.json", '{"records": 5}'),
                                            ("verify.json", '{"stage": "verify", "records": [{"check": "x"}]}')])
def test_a_damaged_results_file_is_one_clear_error(tmp_path: Path, name: str, text: str) -> None:
    build = make_build(tmp_path)
    (build.path / name).write_text(text)
    with pytest.raises(NotFoundError, match=f"{name} is damaged"):
        side_of_build(build)


def test_ready_times_skip_damaged_boots() -> None:
    verify = StageReport(Stage.VERIFY, details={"boots": {"bios-azure": {"timings_s": {"ready_s": 9.5}},
                                                          "uefi-azure": "x", "odd": {"timings_s": 3}}})
    a = Side("a", manifest({}, "6.1", "d1"), verify=verify)
    assert diff(a, a).ready_s == {"bios-azure": (9.5, 9.5)}
