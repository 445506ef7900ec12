"""User checks inside verify: the JUnit report becomes one record per test, a broken run is one failed record, and a
recipe's `[checks] tests` are found next to the recipe (no boot here: the runner and the parsing are exercised)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import recipe
from harness.stages.verify import recipe_tests
from harness.verify import usertests
from tests.factories import make_manifest

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="3">
<testcase classname="test_site" name="test_ok" time="0.5"/>
<testcase classname="test_site" name="test_bad" time="1.25"><failure message="assert 1 == 0">trace</failure></testcase>
<testcase classname="test_site" name="test_later" time="0"><skipped message="not on bios"/></testcase>
</testsuite></testsuites>"""


def attachment(tmp_path: Path) -> usertests.Attachment:
    return usertests.Attachment(build=str(tmp_path), firmware="bios", platform="azure", ssh_socket="s", user="u",
                                private_key="k", platform_config="c", events="e", requests="r",
                                evidence=str(tmp_path))


def test_every_junit_case_is_one_record(tmp_path: Path) -> None:
    (tmp_path / "r.xml").write_text(JUNIT)
    records = usertests._records_from_junit(tmp_path / "r.xml", ("bios", "azure"), "verify/bios-azure/r.xml")
    assert [(r.check, r.result, r.message) for r in records] == [
        ("user test_site::test_ok", "Passed", ""), ("user test_site::test_bad", "Failed", "assert 1 == 0"),
        ("user test_site::test_later", "Skipped", "not on bios")]
    assert {(r.firmware, r.platform, r.evidence) for r in records} == {("bios", "azure", "verify/bios-azure/r.xml")}


def test_missing_paths_and_a_run_that_collects_nothing_are_failures(tmp_path: Path) -> None:
    (missing,) = usertests.run((tmp_path / "nope",), attachment(tmp_path), tmp_path, "verify/bios-azure")
    assert missing.result == "Failed" and "not found" in missing.message
    empty = tmp_path / "empty"
    empty.mkdir()
    (broken,) = usertests.run((empty,), attachment(tmp_path), tmp_path, "verify/bios-azure")
    assert broken.result == "Failed" and "no tests were collected" in broken.message
    assert (tmp_path / usertests.OUTPUT).exists()


def test_a_recipes_tests_are_found_next_to_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "recipes"
    (folder / "site").mkdir(parents=True)
    (folder / "acme.toml").write_text('name = "acme"\nextends = "debian-12"\n[checks]\ntests = ["site"]\n')
    monkeypatch.setenv("HARNESS_RECIPES", str(folder))
    loaded = recipe.load("acme")
    assert recipe_tests(make_manifest(recipe="acme"), loaded) == (folder / "site",)


@pytest.mark.parametrize("entry", ["/abs/tests", "../outside", "a/../../b"])
def test_test_paths_must_stay_in_the_recipes_folder(tmp_path: Path, entry: str) -> None:
    path = tmp_path / "acme.toml"
    path.write_text(f'name = "acme"\nextends = "debian-12"\n[checks]\ntests = ["{entry}"]\n')
    with pytest.raises(recipe.RecipeError, match="inside the recipe's folder"):
        recipe.load(str(path))
