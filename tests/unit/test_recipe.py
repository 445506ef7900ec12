"""Recipe model: every problem reported at once with its key path; unknown keys are errors; extends."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import recipe
from harness.errors import RecipeError

GOOD = """
name = "{name}"
family = "apt"
release = "bookworm"
[source]
bootstrap = "mmdebstrap"
[gallery]
publisher = "p"
offer = "o"
sku = "s"
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_every_shipped_recipe_validates() -> None:
    names = [p.stem for p in recipe.all_recipes()]
    assert "debian-12" in names and "ubuntu-24.04" in names
    for path in recipe.all_recipes():
        assert recipe.load(path).name == path.stem


def test_all_problems_listed_with_key_paths(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad", """
name = "bad"
family = "pacman"
[source]
bootstrap = "mmdebstrap"
base_image = { url = "http://x", sha256 = "nothex" }
[packages]
include = "not-a-list"
colour = "blue"
[image]
disk_size_mib = 10
generations = ["V3"]
[[settings]]
file = "relative/path"
value = "x"
""")
    with pytest.raises(RecipeError) as info:
        recipe.load(bad)
    problems = "\n".join(info.value.problems)
    for expected in ("family: must be one of", "release: missing", "source: needs exactly one",
                     "source.base_image.sha256: must be 64", "packages.include: must be a list",
                     "packages.colour: unknown key", "image.disk_size_mib: must be between",
                     "image.generations: unknown entries", "settings[0].reason: missing",
                     "settings[0].file: must be an absolute path", "gallery: missing"):
        assert expected in problems, expected
    assert len(info.value.problems) >= 11


def test_extends_merges_tables_and_appends_settings(tmp_path: Path) -> None:
    write(tmp_path, "base", GOOD.format(name="base") + """
[packages]
include = ["a", "b"]
[[settings]]
file = "/etc/x.conf"
key = "K"
value = "1"
reason = "r"
""")
    child = write(tmp_path, "child", """
extends = "base"
name = "child"
[gallery]
sku = "s2"
[[settings]]
file = "/etc/x.conf"
key = "K"
value = "2"
reason = "override"
[[settings]]
file = "/etc/y.conf"
value = "whole file"
reason = "r2"
""")
    loaded = recipe.load(child)
    assert loaded.packages_include == ("a", "b")
    assert (loaded.publisher, loaded.offer, loaded.sku) == ("p", "o", "s2")
    assert [(s.file, s.value) for s in loaded.settings] == [("/etc/x.conf", "2"), ("/etc/y.conf", "whole file")]
    assert loaded.settings[1].style == "file"


def test_extends_cycle_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "a", 'extends = "b"\n' + GOOD.format(name="a"))
    write(tmp_path, "b", 'extends = "a"\n' + GOOD.format(name="b"))
    with pytest.raises(RecipeError, match="cycle"):
        recipe.load(tmp_path / "a.toml")


def test_name_must_match_file(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="must match the file name"):
        recipe.load(write(tmp_path, "other", GOOD.format(name="mismatch")))


def test_settings_filtered_by_agent() -> None:
    debian = recipe.load("debian-12")
    files_ci = {s.file for s in debian.settings_for("cloud-init")}
    files_wa = {s.file for s in debian.settings_for("waagent")}
    assert "/etc/cloud/cloud.cfg.d/91-azure_datasource.cfg" in files_ci
    assert "/etc/cloud/cloud.cfg.d/91-azure_datasource.cfg" not in files_wa


def test_canonical_json_ignores_key_order(tmp_path: Path) -> None:
    a = recipe.load(write(tmp_path, "x", GOOD.format(name="x")))
    other = tmp_path / "other"
    other.mkdir()
    reordered = GOOD.format(name="x").replace('name = "x"\nfamily = "apt"', 'family = "apt"\nname = "x"')
    assert reordered != GOOD.format(name="x")
    b = recipe.load(write(other, "x", reordered))
    assert a.digest() == b.digest()
    changed = recipe.load(write(other, "x", reordered.replace('sku = "s"', 'sku = "t"')))
    assert changed.digest() != a.digest()
