"""Recipes from outside the checkout: --recipes DIR and $HARNESS_RECIPES in front of the built-in recipes, extends
naming a built-in recipe, shadowing said out loud, and the recipe format as a JSON Schema that cannot drift."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from harness import recipe
from harness.cli import main
from harness.errors import NotFoundError, RecipeError
from harness.recipe_jsonschema import json_schema, rule_schema
from harness.recipe_schema import validate


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user recipe folder, and $HARNESS_RECIPES restored after the test (--recipes sets it)."""
    monkeypatch.delenv(recipe.RECIPES_ENV, raising=False)
    folder = tmp_path / "recipes"
    folder.mkdir()
    return folder


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def test_a_user_recipe_extends_a_builtin_one_by_name(user_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(user_dir, "my-debian", 'name = "my-debian"\nextends = "debian-12"\n[packages]\ninclude = ["nginx"]\n')
    monkeypatch.setenv(recipe.RECIPES_ENV, str(user_dir))
    mine = recipe.load("my-debian")
    builtin = recipe.load("debian-12")
    assert mine.path == user_dir / "my-debian.toml"
    assert mine.family == "apt" and mine.release == builtin.release and mine.packages_include == ("nginx",)
    assert mine.source_label == "my-debian.toml" and builtin.source_label == "builtin:debian-12"
    assert recipe.load(builtin.path).source_label == "builtin:debian-12"


def test_a_user_recipe_extends_another_one_next_to_it(user_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(user_dir, "base", 'name = "base"\nextends = "ubuntu-24.04"\ndescription = "our base"\n')
    write(user_dir, "web", 'name = "web"\nextends = "base"\n[packages]\ninclude = ["nginx"]\n')
    monkeypatch.setenv(recipe.RECIPES_ENV, str(user_dir))
    web = recipe.load("web")
    assert web.description == "our base" and web.release == "noble"


def test_a_user_recipe_shadows_a_builtin_one_and_may_extend_it(user_dir: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    write(user_dir, "debian-12", 'name = "debian-12"\nextends = "debian-12"\ndescription = "ours"\n')
    monkeypatch.setenv(recipe.RECIPES_ENV, str(user_dir))
    shadowing = recipe.load("debian-12")
    assert shadowing.path == user_dir / "debian-12.toml" and shadowing.description == "ours"
    assert shadowing.release == "bookworm"  # the rest from the built-in one it extends
    entry = next(e for e in recipe.index() if e.name == "debian-12")
    assert not entry.builtin and entry.shadows == (recipe.DISTROS_DIR / "debian-12.toml",)
    assert entry.shadows_labels() == ["builtin:debian-12"]
    # a built-in recipe still extends the built-in one, whatever the user shadows
    assert recipe.load("debian-12-generic").data["extends"] == "debian-12"
    assert recipe.load("debian-12-generic").release == "bookworm"


def test_the_first_folder_wins_and_all_recipes_lists_each_name_once(tmp_path: Path, user_dir: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    second = tmp_path / "second"
    second.mkdir()
    write(user_dir, "x", 'name = "x"\nextends = "debian-12"\ndescription = "first"\n')
    write(second, "x", 'name = "x"\nextends = "debian-12"\ndescription = "second"\n')
    monkeypatch.setenv(recipe.RECIPES_ENV, f"{user_dir}:{second}")
    assert recipe.load("x").description == "first"
    names = [p.stem for p in recipe.all_recipes()]
    assert names.count("x") == 1 and "debian-12" in names
    assert recipe.all_recipes()[names.index("x")] == user_dir / "x.toml"


def test_a_missing_recipe_folder_is_an_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(recipe.RECIPES_ENV, str(tmp_path / "nope"))
    with pytest.raises(NotFoundError, match=r"recipe folder .*nope does not exist"):
        recipe.load("debian-12")


def test_an_unknown_parent_names_where_it_looked(user_dir: Path) -> None:
    child = write(user_dir, "child", 'name = "child"\nextends = "no-such-recipe"\n')
    with pytest.raises(RecipeError, match="no recipe named 'no-such-recipe' next to this file or built in"):
        recipe.load(child)


def test_a_recipe_that_extends_itself_is_a_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "loop"
    folder.mkdir()
    write(folder, "only", 'name = "only"\nextends = "only"\n')
    with pytest.raises(RecipeError, match="extends: cycle through only"):
        recipe.load(folder / "only.toml")


@pytest.mark.parametrize("where", ["before", "after", "env"])
def test_recipes_option_before_or_after_the_subcommand(where: str, user_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    write(user_dir, "my-debian", 'name = "my-debian"\nextends = "debian-12"\n')
    write(user_dir, "debian-12", 'name = "debian-12"\nextends = "debian-12"\n')
    argv = {"before": ["--recipes", str(user_dir), "recipes", "list", "--json"],
            "after": ["recipes", "list", "--json", "--recipes", str(user_dir)],
            "env": ["recipes", "list", "--json"]}[where]
    if where == "env":
        monkeypatch.setenv(recipe.RECIPES_ENV, str(user_dir))
    assert main(argv) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["my-debian"]["origin"] == str(user_dir) and rows["my-debian"]["extends"] == "debian-12"
    assert rows["my-debian"]["label"] == "my-debian.toml"
    assert rows["debian-12"]["shadows"] == ["builtin:debian-12"] and rows["debian-12"]["origin"] == str(user_dir)
    assert rows["ubuntu-24.04"]["origin"] == "builtin" and rows["ubuntu-24.04"]["shadows"] == []


def test_recipes_given_before_and_after_the_subcommand_both_count(tmp_path: Path, user_dir: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other"
    other.mkdir()
    write(user_dir, "a", 'name = "a"\nextends = "debian-12"\n')
    write(other, "b", 'name = "b"\nextends = "debian-12"\n')
    assert main(["--recipes", str(user_dir), "recipes", "list", "--names", "--recipes", str(other)]) == 0
    names = capsys.readouterr().out.split()
    assert {"a", "b", "debian-12"} <= set(names)


def test_recipes_list_says_what_a_user_recipe_shadows(user_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(user_dir, "debian-12", 'name = "debian-12"\nextends = "debian-12"\n')
    assert main(["--recipes", str(user_dir), "recipes", "list"]) == 0
    out = capsys.readouterr().out  # a table: long cells wrap onto the next line
    assert "(shadows" in out and "builtin:debian-12)" in out


def test_matrix_takes_user_recipes_and_filters_by_origin(user_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(user_dir, "my-debian", 'name = "my-debian"\nextends = "debian-12"\n')
    assert main(["--recipes", str(user_dir), "matrix", "--json", "--compact", "--origin", "user"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one line
    items = json.loads(out)["include"]
    assert [(i["recipe"], i["origin"]) for i in items] == [("my-debian", "user")]
    assert main(["--recipes", str(user_dir), "matrix", "--json", "--origin", "builtin"]) == 0
    assert "my-debian" not in capsys.readouterr().out


def test_build_plan_of_a_user_recipe(user_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(user_dir, "my-debian", 'name = "my-debian"\nextends = "debian-12"\n[packages]\ninclude = ["nginx"]\n')
    assert main(["build", "--plan", "my-debian", "--json", "--recipes", str(user_dir)]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert planned["recipe"] == "my-debian" and "nginx" in " ".join(planned["commands"][0])


# -- the JSON Schema ---------------------------------------------------------------------------------------

def _as_json(path: Path) -> Any:
    return json.loads(json.dumps(tomllib.loads(path.read_text()), default=str))


def test_the_schema_is_a_valid_draft_2020_12_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recipes", "schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json_schema()
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(printed)


@pytest.mark.parametrize("path", recipe.all_recipes(), ids=lambda p: p.stem)
def test_every_builtin_recipe_file_and_its_merged_form_validate_against_the_schema(path: Path) -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    assert [e.message for e in validator.iter_errors(_as_json(path))] == []
    merged = json.loads(json.dumps(dict(recipe.load(path).data), default=str))
    assert [e.message for e in validator.iter_errors(merged)] == []


BAD = [
    ("unknown key", lambda d: d.update(colour="blue")),
    ("unknown nested key", lambda d: d["image"].update(size=1)),
    ("wrong family", lambda d: d.update(family="pacman")),
    ("disk too small", lambda d: d["image"].update(disk_size_mib=10)),
    ("bool is not an int", lambda d: d["image"].update(disk_size_mib=True)),
    ("unknown generation", lambda d: d["image"].update(generations=["V3"])),
    ("bad gallery identity", lambda d: d["gallery"].update(sku="-x")),
    ("bootstrap and base image", lambda d: d["source"].update(base_image={"url": "x", "sha256": "a" * 64})),
    ("setting without reason", lambda d: d.setdefault("settings", []).append({"file": "/etc/x", "value": "1"})),
    ("file style with a key", lambda d: d.setdefault("settings", []).append(
        {"file": "/etc/x", "key": "k", "value": "1", "reason": "r", "style": "file"})),
    ("no source", lambda d: d.pop("source")),
]


@pytest.mark.parametrize(("what", "change"), BAD, ids=[b[0] for b in BAD])
def test_the_schema_and_the_validator_both_refuse(what: str, change: Any) -> None:
    data = _as_json(recipe.DISTROS_DIR / "debian-12.toml")
    change(data)
    assert validate(data), what
    assert list(jsonschema.Draft202012Validator(json_schema()).iter_errors(data)), what


def test_a_rule_without_a_mapping_is_refused() -> None:
    with pytest.raises(TypeError, match="no JSON Schema mapping"):
        rule_schema(lambda value: None)
