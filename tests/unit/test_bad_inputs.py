"""The bad-input corpus (tests/badinputs/): every bad recipe, file and command line ends in one clear error line.

Each case runs `harness.cli.main(argv)` in-process, in its own temporary folder and builds folder, and must
exit with its expected code (never 0, never 70 "internal error"), print no traceback, and start its output with
`error:` (or argparse's usage error) naming what was wrong.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.buildfolder import write_json_atomic
from harness.cli import main
from harness.digest import content_digest
from harness.vhd.footer import FOOTER_SIZE, MIB, fixed_footer
from tests.factories import make_build, manifest_data

CORPUS = Path(__file__).resolve().parent.parent / "badinputs"
RECIPES = CORPUS / "recipes"
BUILD = ("debian-12", "b1")
DISK_BYTES = 32 * MIB  # the factory manifest's disk size
HEADER = re.compile(r"# exit (\d+): (.+)\n# expect: (.+)\n")
# 09:07:37 INFO convert: /tmp/.../b1   (the plain log format on a non-terminal stderr)
LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO) ")


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    exit: int
    expect: str
    stream: str = "stderr"  # stderr | usage | stdout
    setup: str = ""
    xfail: str = ""


# -- fixtures the cases name as `setup` ---------------------------------------------------------------

def _build_folder(builds: Path) -> Path:
    return make_build(builds, recipe=BUILD[0], build_id=BUILD[1]).path


def _chain(tmp: Path, depth: int) -> None:
    folder = tmp / "chain"
    folder.mkdir()
    for level in range(depth):
        (folder / f"r{level}.toml").write_text(f'extends = "r{level + 1}"\nname = "r{level}"\n')
    (folder / f"r{depth}.toml").write_text((RECIPES / "_base.toml").read_text().replace('"_base"', f'"r{depth}"'))


def _family(tmp: Path, parent: Callable[[Path], None]) -> None:
    folder = tmp / "family"
    folder.mkdir()
    (folder / "child.toml").write_text('extends = "parent"\nname = "child"\n')
    parent(folder / "parent.toml")


def _vhd_files(tmp: Path) -> None:
    (tmp / "empty.vhd").write_bytes(b"")
    (tmp / "folder.vhd").mkdir()
    with (tmp / "raw.img").open("wb") as handle:
        handle.truncate(MIB)
    (tmp / "link.vhd").symlink_to(tmp / "raw.img")
    good = bytearray(MIB) + fixed_footer(MIB).pack()
    (tmp / "truncated.vhd").write_bytes(bytes(good[:-100]))
    cookie = bytearray(good)
    cookie[-FOOTER_SIZE:-FOOTER_SIZE + 8] = b"conectiz"
    (tmp / "cookie.vhd").write_bytes(bytes(cookie))
    checksum = bytearray(good)
    checksum[-FOOTER_SIZE + 64] ^= 0xFF
    (tmp / "checksum.vhd").write_bytes(bytes(checksum))
    (tmp / "mib-plus-512.img").write_bytes(bytes(MIB + FOOTER_SIZE))
    (tmp / "odd.img").write_bytes(bytes(1000))


def _manifest(builds: Path, content: bytes) -> None:
    (_build_folder(builds) / "manifest.json").write_bytes(content)


def _manifest_dir(builds: Path) -> None:
    path = _build_folder(builds) / "manifest.json"
    path.unlink()
    path.mkdir()


def _raw(builds: Path, size: int, *, directory: bool = False, also_vhd: bool = False) -> None:
    folder = _build_folder(builds)
    if directory:
        (folder / "disk.raw").mkdir()
        return
    with (folder / "disk.raw").open("wb") as handle:
        handle.truncate(size)
    if also_vhd:
        (folder / "disk.vhd").write_bytes(b"")


def _not_build(tmp: Path) -> None:
    (tmp / "notbuild").mkdir()
    (tmp / "notbuild" / "disk.raw").write_bytes(b"")


def _build(builds: Path) -> None:
    _build_folder(builds)


def _build_ok(tmp: Path, builds: Path) -> None:
    """A converted build whose disk.vhd holds exactly the content its manifest records (32 MiB of zeros, sparse,
    and a fixed VHD footer); and a file where a gallery folder would be."""
    (tmp / "a-file").write_text("not a gallery\n")
    folder = _build_folder(builds)
    vhd = folder / "disk.vhd"
    with vhd.open("wb") as handle:
        handle.truncate(DISK_BYTES)
        handle.seek(DISK_BYTES)
        handle.write(fixed_footer(DISK_BYTES).pack())
    disk = {"file": "disk.vhd", "size_bytes": DISK_BYTES, "layout": []}
    write_json_atomic(folder / "manifest.json", manifest_data(
        recipe=BUILD[0], build_id=BUILD[1], disk=disk, content_digest=content_digest(vhd, DISK_BYTES)))


def _build_raw_ok(tmp: Path, builds: Path) -> None:
    """A build not converted yet: disk.raw holds exactly the content its manifest records."""
    (tmp / "a-file").write_text("not a gallery\n")
    folder = _build_folder(builds)
    raw = folder / "disk.raw"
    with raw.open("wb") as handle:
        handle.truncate(DISK_BYTES)
    write_json_atomic(folder / "manifest.json", manifest_data(recipe=BUILD[0], build_id=BUILD[1],
                                                              content_digest=content_digest(raw, DISK_BYTES)))


DEFINITION = {"name": "deb", "publisher": "p", "offer": "o", "sku": "s", "os_state": "Generalized",
              "hyper_v_generation": "V1"}


def _damaged_gallery(tmp: Path, definition: object, version: object = None) -> None:
    """A local gallery whose definition.json (or a version.json) is valid JSON of the wrong shape."""
    folder = tmp / "gallery" / "deb"
    folder.mkdir(parents=True)
    write_json_atomic(folder / "definition.json", definition)
    if version is not None:
        (folder / "1.0.0").mkdir()
        write_json_atomic(folder / "1.0.0" / "version.json", version)


Setup = Callable[[Path, Path], None]
SETUPS: dict[str, Setup] = {
    "recipe_dir": lambda tmp, _: (tmp / "dir.toml").mkdir(),
    "recipe_binary": lambda tmp, _: (tmp / "binary.toml").write_bytes(bytes(range(256)) * 4),
    "recipe_latin1": lambda tmp, _: (tmp / "latin1.toml").write_bytes(
        (RECIPES / "_base.toml").read_text().replace('"_base"', '"latin1"').encode()
        + 'description = "caf\xe9"\n'.encode("latin-1")),
    "recipe_fifo": lambda tmp, _: os.mkfifo(tmp / "fifo.toml"),
    "recipe_loop": lambda tmp, _: (tmp / "loop.toml").symlink_to(tmp / "loop.toml"),
    "recipe_deep": lambda tmp, _: _chain(tmp, 1200),
    "recipe_binary_parent": lambda tmp, _: _family(tmp, lambda p: p.write_bytes(b"\xff\xfe\x00" * 100)),
    "recipe_dir_parent": lambda tmp, _: _family(tmp, lambda p: p.mkdir()),
    "vhd_files": lambda tmp, _: _vhd_files(tmp),
    "a_file": lambda tmp, _: (tmp / "a-file").write_text("not a gallery\n"),
    "not_build": lambda tmp, _: _not_build(tmp),
    "build": lambda _, builds: _build(builds),
    "build_ok": _build_ok,
    "build_raw_ok": _build_raw_ok,
    "gallery_definition_list": lambda tmp, _: _damaged_gallery(tmp, []),
    "gallery_version_incomplete": lambda tmp, _: _damaged_gallery(tmp, DEFINITION, {"version": 5}),
    "manifest_list": lambda _, builds: _manifest(builds, b"[]"),
    "manifest_disk_x": lambda _, builds: _manifest(builds, b'{"disk": "x"}'),
    "manifest_binary": lambda _, builds: _manifest(builds, bytes(range(256))),
    "manifest_empty": lambda _, builds: _manifest(builds, b""),
    "manifest_schema_99": lambda _, builds: _manifest(builds, b'{"schema": 99}'),
    "manifest_dir": lambda _, builds: _manifest_dir(builds),
    "raw_dir": lambda _, builds: _raw(builds, 0, directory=True),
    "raw_truncated": lambda _, builds: _raw(builds, MIB),
    "raw_and_vhd": lambda _, builds: _raw(builds, DISK_BYTES, also_vhd=True),
}


# -- collecting the cases -----------------------------------------------------------------------------

def _recipe_cases(path: Path) -> list[Case]:
    """Each corpus recipe as `build --plan FILE` (one error line) and `recipes validate FILE` (a report)."""
    match = HEADER.match(path.read_text(encoding="utf-8"))
    assert match, f"{path.name}: the first two lines must be '# exit N: what is wrong' and '# expect: TEXT'"
    code, expect = int(match.group(1)), match.group(3).strip()
    return [Case(f"recipe:{path.stem}:plan", ("build", "--plan", str(path)), code, expect),
            Case(f"recipe:{path.stem}:validate", ("recipes", "validate", str(path)), 1, expect, stream="stdout")]


def _argv_cases() -> list[Case]:
    data = tomllib.loads((CORPUS / "cases.toml").read_text(encoding="utf-8"))
    return [Case(c["id"], tuple(c["argv"]), c["exit"], c["expect"], c.get("stream", "stderr"), c.get("setup", ""),
                 c.get("xfail", "")) for c in data["case"]]


def all_cases() -> list[Case]:
    recipes = [c for p in sorted(RECIPES.glob("*.toml")) if not p.name.startswith("_") for c in _recipe_cases(p)]
    return recipes + _argv_cases()


def _param(case: Case) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
    return pytest.param(case, id=case.id, marks=marks)


CASES = all_cases()


def test_corpus_is_large_and_ids_are_unique() -> None:
    assert len(CASES) >= 100
    assert len({c.id for c in CASES}) == len(CASES)
    assert {c.setup for c in CASES} - {""} <= set(SETUPS)


# -- running one case ---------------------------------------------------------------------------------

def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """main(argv) in-process; argparse's usage errors leave through SystemExit."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    return code, out, err


def _first_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and not LOG_LINE.match(line)]
    return lines[0] if lines else ""


def check_output(case: Case, code: int, out: str, err: str) -> None:
    shown = f"exit {code}\n--- stdout\n{out[-2000:]}\n--- stderr\n{err[-2000:]}"
    assert code not in (0, 70), shown
    assert "Traceback" not in err + out and "internal error" not in err, shown
    if case.stream == "usage":
        assert err.startswith("usage:"), shown
        assert case.expect in err, shown
    elif case.stream == "stdout":
        assert case.expect in out, shown
        assert not _first_line(err) or _first_line(err).startswith(("error:", "warning:")), shown
    else:
        assert _first_line(err).startswith("error: "), shown
        assert case.expect in err, shown
    assert code == case.exit, shown


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture[str]) -> None:
    builds = tmp_path / "builds"
    builds.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_BUILDS", str(builds))
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HARNESS_LOG_DIR", str(tmp_path / "logs"))
    if case.setup:
        SETUPS[case.setup](tmp_path, builds)
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{builds}", str(builds)).replace("{corpus}", str(CORPUS))
            for a in case.argv]
    code, out, err = run_cli(argv, capsys)
    check_output(case, code, out, err)
