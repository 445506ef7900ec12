"""Properties over generated inputs: recipe validation, publish names, the VHD footer reader and the settings writer
never fail with anything but their own typed errors, and accept exactly their grammars."""

from __future__ import annotations

import contextlib
import copy
import shlex
import string
import struct
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from harness import proc, recipe, vhd
from harness.builder.settings import apply_to_text, holds, read_from_text
from harness.errors import NotFoundError, PublishError, RecipeError, VhdError
from harness.publish import model, versions
from harness.recipe import Setting
from harness.recipe_rules import CMDLINE_FORBIDDEN
from harness.recipe_schema import (
    AGENT_PACKAGES_SCHEMA,
    SCHEMA,
    SETTING_SCHEMA,
    SETTING_STYLES,
    validate,
)
from harness.vhd.footer import COOKIE, FOOTER_FORMAT, FOOTER_SIZE, MIB, Footer, describe, fixed_footer

VALID: dict[str, Any] = {
    "name": "prop", "family": "apt", "release": "bookworm", "source": {"bootstrap": "mmdebstrap"},
    "packages": {"include": ["openssh-server", "sudo"]}, "kernel": {"cmdline": ["console=ttyS0,115200n8"]},
    "gallery": {"publisher": "p", "offer": "o", "sku": "s"},
    "settings": [{"file": "/etc/x.conf", "key": "K", "value": "1", "reason": "r"}],
}
ASCII_DIGITS = "0123456789"
ASCII_ALNUM = string.ascii_letters + string.digits
# Anything a TOML file can hold: every character but surrogates (TOML is UTF-8).
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
NON_ASCII_DIGIT = st.characters(whitelist_categories=("Nd",)).filter(lambda c: c not in ASCII_DIGITS)
# What breaks a name: another script's digit, a line break, a space, and a few ASCII characters outside each grammar.
BAD_CHAR = st.one_of(NON_ASCII_DIGIT, st.sampled_from(["\n", " ", "\t", "\x00", "/", "=", "\u00e9", "\u2028"]))


def _keys() -> list[str]:
    nested = [k for table in SCHEMA.values() if isinstance(table, dict) for k in table]
    return sorted({*SCHEMA, "settings", *nested, *SETTING_SCHEMA, *AGENT_PACKAGES_SCHEMA})


KEYS = st.one_of(st.sampled_from(_keys()), TEXT)
SCALARS = st.one_of(st.booleans(), st.integers(), st.floats(), TEXT, st.sampled_from(["apt", "V1", "/etc/a", "kv"]),
                    st.dates(), st.datetimes(), st.times())
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
                      max_leaves=16)
RECIPE_LIKE = st.dictionaries(KEYS, VALUES, max_size=8)
# Random tables laid over a valid recipe reach the checks behind the type checks (extends merges the same way).
OVERLAID = RECIPE_LIKE.map(lambda d: recipe._merge(VALID, d))


def _insert(text: str, char: str, where: int) -> str:
    index = where % (len(text) + 1)
    return text[:index] + char + text[index:]


# -- recipes ------------------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(data=st.one_of(RECIPE_LIKE, OVERLAID))
def test_recipe_validation_only_raises_recipe_errors(data: dict[str, Any]) -> None:
    problems = validate(data)
    assert all(isinstance(p, str) for p in problems)
    try:
        loaded = recipe.from_data(data, "generated")
    except (RecipeError, NotFoundError):
        return
    assert not problems and loaded.name == data["name"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(st.binary(max_size=300), TEXT.map(lambda t: t.encode()),
                         st.tuples(st.integers(0, 12), TEXT).map(lambda c: _toml_with_line(*c))))
def test_recipe_loader_only_raises_recipe_errors(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "prop.toml"
    path.write_bytes(content)
    with contextlib.suppress(RecipeError, NotFoundError):
        recipe.load(path)


def _toml_with_line(line_number: int, line: str) -> bytes:
    """A valid recipe file with one generated line inserted."""
    lines = ['name = "prop"', 'family = "apt"', 'release = "bookworm"', "[source]", 'bootstrap = "mmdebstrap"',
             "[gallery]", 'publisher = "p"', 'offer = "o"', 'sku = "s"']
    lines.insert(line_number % (len(lines) + 1), line)
    return "\n".join(lines).encode()


def _mutated(kind: str, text: str, char: str, where: int) -> tuple[dict[str, Any], str]:
    """The valid recipe with one thing broken, and the key path the problem must name."""
    data = copy.deepcopy(VALID)
    if kind == "package":
        data["packages"]["include"][0] = _insert(text or "vim", char, where)
        return data, "packages.include[0]"
    if kind == "cmdline":
        data["kernel"]["cmdline"][0] = _insert(text or "quiet", char, where)
        return data, "kernel.cmdline[0]"
    if kind == "gallery":
        data["gallery"]["offer"] = _insert(text or "debian", char, where)
        return data, "gallery.offer"
    if kind == "file":
        data["settings"][0]["file"] = _insert("/etc/x.conf", char, where)
        return data, "settings[0].file"
    if kind == "control":
        data["release"] = _insert(text or "bookworm", chr(where % 32), where)
        return data, "release"
    data[f"unknown-{text}"] = char
    return data, f"unknown-{text}"


# What each kind of broken value gets inserted: characters its rule refuses wherever they stand.
BREAKING = {
    "package": BAD_CHAR,  # a Debian package name is lower-case ASCII
    "cmdline": st.sampled_from([" ", "\t", "\n", "\x00", "\u2028", *CMDLINE_FORBIDDEN]),
    "gallery": BAD_CHAR,
    "file": st.sampled_from(["\n", "\t", "\x00", "\x7f", "\u2028"]),  # a guest path may hold spaces and any letter
    "control": st.just(""),
    "unknown": BAD_CHAR,
}


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(sorted(BREAKING)), text=st.from_regex(r"[a-z0-9][a-z0-9.-]{0,10}", fullmatch=True),
       where=st.integers(0, 40), data=st.data())
def test_invalid_recipes_always_have_a_problem_at_the_broken_key(kind: str, text: str, where: int,
                                                                  data: st.DataObject) -> None:
    broken, path = _mutated(kind, text, data.draw(BREAKING[kind]), where)
    problems = validate(broken)
    assert any(p.startswith(path) for p in problems), (broken, problems)
    with pytest.raises(RecipeError):
        recipe.from_data(broken, "generated")


# -- publish names, versions and regions: exactly their ASCII grammars ---------------------------------

PART = st.integers(0, versions.MAX_PART)


def _version_oracle(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 3 and all(
        p and all(c in ASCII_DIGITS for c in p) and (p == "0" or p[0] != "0") and int(p) <= versions.MAX_PART
        for p in parts)


def _name_oracle(text: str) -> bool:
    return (0 < len(text) <= 80 and all(c in ASCII_ALNUM + "._-" for c in text)
            and text[0] in ASCII_ALNUM and text[-1] in ASCII_ALNUM)


def _accepts(check: Any, text: str) -> bool:
    try:
        check(text)
    except PublishError:
        return False
    return True


@given(parts=st.tuples(PART, PART, PART), char=BAD_CHAR.filter(lambda c: c != "."), where=st.integers(0, 40))
def test_version_round_trip_and_bad_characters(parts: tuple[int, int, int], char: str, where: int) -> None:
    text = ".".join(str(p) for p in parts)
    assert versions.parse(text) == parts and model.check_version(text) == text
    assert not _accepts(model.check_version, _insert(text, char, where))


VERSION_PART = st.text(st.sampled_from([*ASCII_DIGITS, "0", "0", "\n", " ", "\u0661", "\uff11", "-", "+"]), max_size=4)


@given(text=st.one_of(st.lists(VERSION_PART, min_size=1, max_size=4).map(".".join),
                      st.builds(lambda p, s: f"{p[0]}.{p[1]}.{p[2]}{s}", st.tuples(PART, PART, PART),
                                st.sampled_from(["", "\n", " ", ".0", "\u0661"]))))
def test_version_accepted_exactly_by_its_grammar(text: str) -> None:
    assert _accepts(versions.parse, text) == _version_oracle(text)


@given(name=st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,78}[A-Za-z0-9])?", fullmatch=True), char=BAD_CHAR,
       where=st.integers(0, 90))
def test_definition_name_round_trip_and_bad_characters(name: str, char: str, where: int) -> None:
    assert model.check_name(name) == name
    assert not _accepts(model.check_name, _insert(name, char, where))


NAME_ALPHABET = st.sampled_from([*"aZ09._-", "\n", " ", "\u0661", "\u00e9", "/"])


@given(text=st.one_of(st.text(NAME_ALPHABET, max_size=82),
                      st.builds(lambda n, c, at_end: n + c if at_end else c + n,
                                st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,80}", fullmatch=True), NAME_ALPHABET,
                                st.booleans())))
def test_definition_name_accepted_exactly_by_its_grammar(text: str) -> None:
    assert _accepts(model.check_name, text) == _name_oracle(text)


@given(name=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", fullmatch=True),
       replicas=st.one_of(st.none(), st.integers(1, model.MAX_REPLICAS)), char=BAD_CHAR.filter(lambda c: c != "="),
       where=st.integers(0, 70))
def test_target_region_round_trip_and_bad_characters(name: str, replicas: int | None, char: str, where: int) -> None:
    text = name if replicas is None else f"{name}={replicas}"
    region = model.parse_target_region(text)
    assert (region.name, region.replicas) == (name, replicas or 1)
    assert not _accepts(model.parse_target_region, _insert(text, char, where))


# -- the VHD footer reader ---------------------------------------------------------------------------

UINT = {"I": 2**32 - 1, "Q": 2**64 - 1, "H": 2**16 - 1, "B": 255}


def _field(code: str, typical: list[Any]) -> st.SearchStrategy[Any]:
    if code.endswith("s"):
        size = int(code[:-1])
        return st.one_of(st.sampled_from([v for v in typical if len(v) == size] or [bytes(size)]),
                         st.binary(min_size=size, max_size=size))
    return st.one_of(st.sampled_from(typical or [0]), st.integers(0, UINT[code]))


FIELD_CODES = ["8s", "I", "I", "Q", "I", "4s", "H", "H", "4s", "Q", "Q", "H", "B", "B", "I", "I", "16s", "B", "427s"]
TYPICAL: dict[int, list[Any]] = {0: [COOKIE, b"conectiz"], 1: [2, 0, 3], 2: [0x00010000], 3: [2**64 - 1, 512],
                                 9: [MIB, 0, 2**63], 10: [MIB, 0, 20 * MIB, 2**64 - 1], 14: [2, 3, 4, 0]}
FOOTERS = st.one_of(
    st.binary(min_size=FOOTER_SIZE, max_size=FOOTER_SIZE),
    st.tuples(*(_field(c, TYPICAL.get(i, [])) for i, c in enumerate(FIELD_CODES))).map(
        lambda f: struct.pack(FOOTER_FORMAT, *f)),
    st.tuples(*(_field(c, TYPICAL.get(i, [])) for i, c in enumerate(FIELD_CODES))).map(
        lambda f: Footer.unpack(struct.pack(FOOTER_FORMAT, *f)).with_checksum().pack()),
    st.sampled_from([fixed_footer(MIB).pack(), fixed_footer(20 * MIB).pack()]),
)


@settings(max_examples=60, deadline=None)
@given(raw=FOOTERS, data_bytes=st.sampled_from([0, 1, FOOTER_SIZE, MIB - FOOTER_SIZE, MIB, 20 * MIB]),
       use_qemu=st.booleans())
def test_vhd_footer_reader_only_raises_vhd_errors(raw: bytes, data_bytes: int, use_qemu: bool) -> None:
    describe(Footer.unpack(raw))  # 512 bytes always parse: no field is checked here
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "disk.vhd"
        with path.open("wb") as handle:
            handle.truncate(data_bytes)
            handle.seek(data_bytes)
            handle.write(raw)
        try:
            results = vhd.check(path, use_qemu=use_qemu)
            assert results and all(r.rule for r in results)
            vhd.validate(path, use_qemu=False)
            vhd.is_fixed_vhd(path)
            describe(vhd.read_footer(path))
        except (VhdError, NotFoundError):
            pass


# -- the settings writer --------------------------------------------------------------------------------

KEY_OF_STYLE = {
    "kv": st.from_regex(r"[A-Za-z][A-Za-z0-9._-]{0,15}", fullmatch=True),
    "sshd": st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,15}", fullmatch=True),
    "shell": st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True),
    "line": st.just(""),
    "file": st.just(""),
    "comment": st.just(""),
}
VALUE = st.one_of(st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=20),
                  st.text(st.sampled_from([*"a =#\"'$`\\!;&|<>(){}*?~%,.:/", "\n", "\t", "\u00e9"]), max_size=20))


def _accepted_setting(style: str, key: str, value: str) -> Setting:
    """The setting, if the recipe validation accepts it (hypothesis drops the example otherwise)."""
    entry = {"file": "/etc/x.conf", "value": value, "reason": "r", "style": style, **({"key": key} if key else {})}
    problems = validate({**VALID, "settings": [entry]})
    assume(not problems)
    return Setting(file="/etc/x.conf", key=key, value=value, reason="r", style=style)


@st.composite
def accepted_settings(draw: st.DrawFn, styles: tuple[str, ...] = SETTING_STYLES) -> tuple[Setting, str]:
    style = draw(st.sampled_from(styles))
    setting = _accepted_setting(style, draw(KEY_OF_STYLE[style]), draw(VALUE))
    old = f"{setting.key}=old" if style != "sshd" else f"{setting.key} old"
    existing = draw(st.sampled_from(["", "# a comment\n", f"{old}\n", f"#{old}\nOTHER=1\n", f"{old}\n{old}\n"]))
    return setting, existing


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(case=accepted_settings())
def test_settings_written_read_back_for_every_style(case: tuple[Setting, str]) -> None:
    setting, existing = case
    text = apply_to_text(existing, setting)
    if setting.style == "file":
        assert holds(text, setting)
    elif setting.style == "comment":  # nothing to read back: the line is no longer active
        assert holds(text, setting) and read_from_text(text, setting) is None, text
    else:
        assert read_from_text(text, setting) == setting.value, text


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(case=accepted_settings(("shell",)))
def test_shell_setting_sourced_by_sh_gives_the_value(case: tuple[Setting, str]) -> None:
    setting, existing = case
    # a prefix keeps the key clear of the shell's own variables (IFS, PATH, PPID, _): what is tested is the quoting
    key = f"HARNESS_{setting.key}"
    named = Setting(file=setting.file, key=key, value=setting.value, reason="r", style="shell")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "grub"
        path.write_text(apply_to_text(existing.replace(setting.key, key), named), encoding="utf-8")
        result = proc.run(["sh", "-c", f'. {shlex.quote(str(path))}; printf %s "${key}"'], env={"LC_ALL": "C.UTF-8"})
    assert result.stdout == setting.value, path.read_text() if path.exists() else ""
