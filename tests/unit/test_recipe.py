"""Recipe model: every problem reported at once with its key path; unknown keys are errors; extends."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import recipe
from harness.errors import NotFoundError, RecipeError
from harness.recipe_schema import validate

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
include = ["pkg-a", "pkg-b"]
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
    assert loaded.packages_include == ("pkg-a", "pkg-b")
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


# -- validation gaps: every one of these used to pass validation (or crash the loader) --------------------

def problems_of(text: str, tmp_path: Path, name: str = "r") -> list[str]:
    """The problems recipe.load reports for GOOD plus `text` (empty when it loads); top-level keys in `text` come
    before its first table."""
    head, table, tables = text.partition("[")
    try:
        recipe.load(write(tmp_path, name, head + GOOD.format(name=name) + table + tables))
    except RecipeError as exc:
        return exc.problems
    return []


def assert_refused(text: str, tmp_path: Path, where: str, why: str = "") -> None:
    found = [p for p in problems_of(text, tmp_path) if p.startswith(where)]
    assert found, f"{where} not refused in:\n{text}"
    assert any(why in p for p in found), found


def test_empty_package_list_is_refused(tmp_path: Path) -> None:
    assert_refused("[packages]\ninclude = []\n", tmp_path, "packages.include", "must not be empty")


@pytest.mark.parametrize("text, where", [
    ('description = "a\\u0000b"\n', "description"),
    ('[kernel]\npackage = "linux\\u001b[2J"\n', "kernel.package"),
    ('[[settings]]\nfile = "/etc/a\\u0000b"\nvalue = "x"\nreason = "r"\n', "settings[0].file"),
    ('[[settings]]\nfile = "/etc/a"\nvalue = "x\\u0000"\nreason = "r"\n', "settings[0].value"),
    ('[[settings]]\nfile = "/etc/a"\nkey = "K"\nvalue = "x\\u2028y"\nreason = "r"\n', "settings[0].value"),
    ('[[settings]]\nfile = "/etc/a"\nvalue = "x"\nreason = "r\\u0007"\n', "settings[0].reason"),
])
def test_control_characters_are_refused_anywhere(text: str, where: str, tmp_path: Path) -> None:
    assert_refused(text, tmp_path, where, "control character")


def test_newlines_are_fine_in_a_whole_file_value_and_in_text(tmp_path: Path) -> None:
    text = ('description = "two\\nlines"\n[[settings]]\nfile = "/etc/a.conf"\nvalue = "a\\n\\tb\\n"\n'
            'reason = "why,\\nin two lines"\n')
    assert problems_of(text, tmp_path) == []


def test_control_character_in_a_key_name_is_shown_escaped(tmp_path: Path) -> None:
    found = problems_of('"col\\u001bour" = 1\n', tmp_path)
    assert any(p.startswith("'col\\x1bour': unknown key") for p in found), found
    assert not any("\x1b" in p for p in found)


@pytest.mark.parametrize("file, why", [
    ("etc/x.conf", "absolute"),
    ("/", "not / itself"),
    ("/etc//x.conf", "'//'"),
    ("/etc/../x.conf", "'..'"),
    ("/etc/./x.conf", "normalized"),
    ("/etc/x.conf/", "normalized"),
    ("/proc/sys/vm/swappiness", "under /proc: the build writes this file into the image"),
    ("/sys/kernel/mm/x", "under /sys"),
    ("/dev/sda", "under /dev"),
    ("/run/x.conf", "under /run"),
    ("/proc", "under /proc"),
])
def test_settings_file_must_be_a_normal_guest_path(file: str, why: str, tmp_path: Path) -> None:
    text = f'[[settings]]\nfile = "{file}"\nvalue = "x"\nreason = "r"\n'
    assert_refused(text, tmp_path, "settings[0].file", why)


def test_settings_file_paths_that_are_fine(tmp_path: Path) -> None:
    for index, file in enumerate(("/etc/x.conf", "/process/x", "/runner/x", "/etc/.hidden", "/usr/lib/a..b")):
        assert problems_of(f'[[settings]]\nfile = "{file}"\nvalue = "x"\nreason = "r"\n', tmp_path, f"p{index}") == []


@pytest.mark.parametrize("key, value", [
    ("offer", "deb ian/../x"), ("publisher", "my company"), ("sku", "s" * 65), ("offer", "-x"), ("sku", "12."),
    ("sku", "\u0661\u0662"), ("offer", ""),
])
def test_gallery_identity_must_be_what_azure_accepts(key: str, value: str, tmp_path: Path) -> None:
    text = GOOD.format(name="r").replace(f'{key} = "{key[0]}"', f'{key} = "{value}"')
    assert text != GOOD.format(name="r")
    with pytest.raises(RecipeError) as info:
        recipe.load(write(tmp_path, "r", text))
    assert any(p.startswith(f"gallery.{key}:") and "Azure takes" in p for p in info.value.problems)


def test_gallery_identity_of_64_characters_is_fine(tmp_path: Path) -> None:
    text = GOOD.format(name="r").replace('sku = "s"', 'sku = "' + "a" * 62 + '_9"')
    assert recipe.load(write(tmp_path, "r", text)).sku.endswith("_9")


@pytest.mark.parametrize("names, where", [
    ('["a,b"]', "packages.include[0]"), ('["vim", "open ssh"]', "packages.include[1]"),
    ('["Vim"]', "packages.include[0]"), ('["-x"]', "packages.include[0]"), ('["x"]', "packages.include[0]"),
])
def test_debian_package_names(names: str, where: str, tmp_path: Path) -> None:
    assert_refused(f"[packages]\ninclude = {names}\n", tmp_path, where, "Debian package name")


DNF = GOOD.replace('family = "apt"', 'family = "dnf"').replace('"mmdebstrap"', '"dnf"') + \
    '[[source.repositories]]\nid = "b"\nbaseurl = "http://example.invalid/"\n'


@pytest.mark.parametrize("name", ["a,b", "kernel/core", "vim;reboot", "a b", "x$(id)", "", "-y", "a*"])
def test_rpm_package_names_refused(name: str, tmp_path: Path) -> None:
    text = DNF.format(name="r") + f'[packages]\ninclude = ["{name}"]\n'
    with pytest.raises(RecipeError) as info:
        recipe.load(write(tmp_path, "r", text))
    assert any(p.startswith("packages.include[0]:") for p in info.value.problems), info.value.problems


def test_rpm_package_names_accepted(tmp_path: Path) -> None:
    names = '["NetworkManager", "WALinuxAgent-udev", "libstdc++", "@core", "kernel-core"]'
    loaded = recipe.load(write(tmp_path, "r", DNF.format(name="r") + f"[packages]\ninclude = {names}\n"))
    assert "libstdc++" in loaded.packages_include


def test_agent_variant_and_kernel_package_names_are_checked(tmp_path: Path) -> None:
    found = problems_of('[kernel]\npackage = "linux image"\n[agent]\nwaagent = { include = ["a,b"] }\n', tmp_path)
    assert any(p.startswith("kernel.package:") for p in found)
    assert any(p.startswith("agent.waagent.include[0]:") for p in found)


@pytest.mark.parametrize("token", ["a b", 'x="y"', "x='y'", "x=$HOME", "x=`id`", "a;b", "x=\\\\", "x=${y}", "a|b",
                                   "a&b", "a<b", "a>b", "a#b", "quiet\\n", "quiet\\t", ""])
def test_cmdline_tokens_that_cannot_survive_grub_quoting(token: str, tmp_path: Path) -> None:
    escaped = token.replace('"', '\\"')
    assert_refused(f'[kernel]\ncmdline = ["{escaped}"]\n', tmp_path, "kernel.cmdline[0]",
                   "cannot survive /etc/default/grub -> grub.cfg quoting")


def test_plain_cmdline_tokens_are_fine(tmp_path: Path) -> None:
    tokens = '["console=ttyS0,115200n8", "root=UUID=1-2", "rd.break=pre-mount", "a.b/c:d@e%f+g"]'
    assert problems_of(f"[kernel]\ncmdline = {tokens}\n", tmp_path) == []


@pytest.mark.parametrize("style, key, value, where", [
    ("kv", "K", "n\\nX=y", "settings[0].value"),
    ("shell", "GRUB_X", "1\\nGRUB_Y=2", "settings[0].value"),
    ("sshd", "Port", "22\\u0007", "settings[0].value"),
    ("line", "", "a\\nb", "settings[0].value"),
    ("kv", "K\\nX", "1", "settings[0].key"),
    ("kv", "A=B", "1", "settings[0].key"),
    ("sshd", "Client Alive", "1", "settings[0].key"),
    ("shell", "GRUB TIMEOUT", "1", "settings[0].key"),
    ("shell", "1X", "1", "settings[0].key"),
    ("kv", "K", " padded", "settings[0].value"),
    ("line", "", "timeout 300; ", "settings[0].value"),
])
def test_single_line_setting_styles(style: str, key: str, value: str, where: str, tmp_path: Path) -> None:
    key_line = f'key = "{key}"\n' if key else ""
    text = f'[[settings]]\nfile = "/etc/a"\n{key_line}value = "{value}"\nreason = "r"\nstyle = "{style}"\n'
    assert_refused(text, tmp_path, where)


def test_disk_size_above_azure_limit_is_refused(tmp_path: Path) -> None:
    assert_refused("[image]\ndisk_size_mib = 1047553\n", tmp_path, "image.disk_size_mib", "between 64 and 1047552")
    assert problems_of("[image]\ndisk_size_mib = 1047552\n", tmp_path) == []


# -- loader: one RecipeError / NotFoundError line instead of a traceback ----------------------------------

def test_extends_chain_depth_is_capped_and_named(tmp_path: Path) -> None:
    for level in range(1200):
        write(tmp_path, f"r{level}", f'extends = "r{level + 1}"\nname = "r{level}"\n')
    write(tmp_path, "r1200", GOOD.format(name="r1200"))
    with pytest.raises(RecipeError) as info:
        recipe.load(tmp_path / "r0.toml")
    assert "extends chain of more than 16 recipes (r0 -> r1 -> " in str(info.value)
    write(tmp_path, "r1190", GOOD.format(name="r1190"))  # r1180 .. r1190: ten levels are fine
    assert recipe.load(tmp_path / "r1180.toml").name == "r1180"


@pytest.mark.parametrize("settings", ["5", '"x"', '["a", 1]', "{ file = 1 }", '[{ file = ["l"], key = {} }]'])
def test_bad_settings_type_in_a_recipe_that_extends(settings: str, tmp_path: Path) -> None:
    write(tmp_path, "base", GOOD.format(name="base") + '[[settings]]\nfile = "/etc/x"\nvalue = "1"\nreason = "r"\n')
    child = write(tmp_path, "child", f'extends = "base"\nname = "child"\nsettings = {settings}\n')
    with pytest.raises(RecipeError) as info:
        recipe.load(child)
    assert any(p.startswith("settings") for p in info.value.problems), info.value.problems


def test_parent_with_bad_settings_entries_merges_into_one_error(tmp_path: Path) -> None:
    write(tmp_path, "base", 'settings = ["a", 5]\n' + GOOD.format(name="base"))
    child = write(tmp_path, "child", 'extends = "base"\nname = "child"\n[[settings]]\nfile = "/etc/x"\n'
                                     'value = "1"\nreason = "r"\n')
    with pytest.raises(RecipeError, match=r"settings\[0\]: must be a table"):
        recipe.load(child)


@pytest.mark.parametrize("parent", ["../x", "sub/x", ".hidden", "", 5])
def test_extends_names_a_recipe_next_to_the_file(parent: object, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "x", GOOD.format(name="x"))
    write(tmp_path, "x", GOOD.format(name="x"))
    value = f'"{parent}"' if isinstance(parent, str) else str(parent)
    child = write(tmp_path / "sub", "child", f'extends = {value}\nname = "child"\n')
    with pytest.raises(RecipeError, match="extends: "):
        recipe.load(child)


def test_directory_as_recipe(tmp_path: Path) -> None:
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(NotFoundError, match="is a directory"):
        recipe.load(tmp_path / "dir.toml")


def test_fifo_as_recipe_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.toml")
    with pytest.raises(NotFoundError, match="not a regular file"):
        recipe.load(tmp_path / "fifo.toml")


def test_symlink_loop_as_recipe(tmp_path: Path) -> None:
    (tmp_path / "loop.toml").symlink_to(tmp_path / "loop.toml")
    with pytest.raises(NotFoundError, match="cannot read recipe"):
        recipe.load(tmp_path / "loop.toml")


@pytest.mark.parametrize("content", [bytes(range(256)), "name = 'caf\xe9'\n".encode("latin-1"), b"\xff\xfe"])
def test_binary_or_non_utf8_recipe(content: bytes, tmp_path: Path) -> None:
    (tmp_path / "bin.toml").write_bytes(content)
    with pytest.raises(RecipeError):
        recipe.load(tmp_path / "bin.toml")


def test_binary_parent_recipe(tmp_path: Path) -> None:
    (tmp_path / "parent.toml").write_bytes(b"\xff" * 64)
    with pytest.raises(RecipeError, match=r"parent\.toml"):
        recipe.load(write(tmp_path, "child", 'extends = "parent"\nname = "child"\n'))


@pytest.mark.parametrize("data", [[], "x", 5, None, [("name", "x")]])
def test_top_level_that_is_not_a_table(data: object) -> None:
    assert validate(data) == [f"top level: must be a table, not {type(data).__name__}"]
    with pytest.raises(RecipeError, match="top level: must be a table"):
        recipe.from_data(data, "manifest.json recipe_data")  # type: ignore[arg-type]


def test_deeply_nested_toml_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text(GOOD.format(name="deep") + "x = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(RecipeError):
        recipe.load(path)
