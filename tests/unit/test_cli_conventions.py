"""Command-line conventions: help on every option, --version, shell completion, sizes people can read (exact bytes
in --json), a readable build plan, and `harness doctor`."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import hosttools, proc
from harness.cli import main, make_parser
from harness.commands._output import human_size
from harness.commands.build import render_plan
from harness.errors import HarnessError
from harness.vhd import to_fixed_vhd

# Being extended elsewhere; its options get their help there (remove from here when it has).
NOT_YET = ("gallery",)
SETUP_SH = Path(__file__).resolve().parents[2] / "scripts" / "setup.sh"


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...],
                                                                                      argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                if len(path) == 1 and name in NOT_YET:
                    continue
                yield from _commands(child, (*path, name))


def _subcommand_help(parser: argparse.ArgumentParser) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update({a.dest: a.help for a in action._choices_actions})
    return found


def test_every_option_and_argument_of_every_command_has_help() -> None:
    missing = []
    for path, parser in _commands(make_parser(), ("harness",)):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
        missing += [f"{' '.join(path)} {name} (the command itself)" for name, text in _subcommand_help(parser).items()
                    if not text and not (len(path) == 1 and name in NOT_YET)]
    assert missing == []


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("harness ")


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_script_covers_the_commands(shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    for word in ("build", "verify", "publish", "promote", "doctor", "matrix", "recipes", "--recipes", "--builds-dir"):
        assert word in script, word
    assert "_harness_recipe_names" in script  # recipe names (yours too) complete from the harness itself
    if shell == "bash":
        assert re.search(r"^complete .*-F _shtab_harness harness$", script, re.M)
        assert "_shtab_harness()" in script


def test_bash_completion_script_is_valid_bash(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert shutil.which("bash")
    assert main(["completion", "bash"]) == 0
    script = tmp_path / "harness.bash"
    script.write_text(capsys.readouterr().out)
    result = subprocess.run(["bash", "-c", f"source {script} && declare -F _shtab_harness"], capture_output=True,
                            text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert "_shtab_harness" in result.stdout


@pytest.mark.parametrize(("size", "shown"), [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"),
                                             (1536 * 1024**2, "1.5 GiB"), (30 * 1024**3, "30.0 GiB"),
                                             (3 * 1024**5, "3072.0 TiB")])
def test_human_size(size: int, shown: str) -> None:
    assert human_size(size) == shown


def test_vhd_inspect_shows_readable_sizes_and_json_keeps_bytes(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "disk.raw"
    with raw.open("wb") as handle:
        handle.truncate(64 * 1024**2)
    vhd = to_fixed_vhd(raw)
    assert main(["vhd", "inspect", str(vhd)]) == 0
    text = capsys.readouterr().out
    assert "64.0 MiB (67108864 bytes)" in text
    assert main(["vhd", "inspect", str(vhd), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["footer"]["current_size"] == 64 * 1024**2


def test_build_plan_is_readable_unless_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--plan", "debian-12"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("recipe: debian-12\n")
    commands = [line for line in text.splitlines() if line.startswith("  $ ")]
    assert len(commands) == 1 and commands[0].startswith("  $ mmdebstrap ")
    assert "  /etc/default/grub (" in text and "    | GRUB_CMDLINE_LINUX=" in text
    assert main(["build", "--plan", "debian-12", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["recipe"] == "debian-12"


def test_render_plan_shows_the_first_lines_of_long_files() -> None:
    lines = render_plan({"recipe": "r", "commands": [["echo", "a b"]], "files": {"/etc/x": "1\n2\n3\n4\n5\n6\n7\n"},
                         "customization": {"program": "#!/bin/bash\n" + "x\n" * 20, "firmware": "bios"}})
    assert lines[:3] == ["recipe: r", "commands:", "  $ echo 'a b'"]
    assert "  /etc/x (7 lines)" in lines and "    | ... 2 more (--json shows everything)" in lines
    assert "customization:" in lines and "  firmware: bios" in lines and "  program (21 lines)" in lines


# -- doctor ------------------------------------------------------------------------------------------------

def test_doctor_lists_every_tool_the_code_requires_with_its_package() -> None:
    from harness.builder.pipeline import ROUTES
    from harness.checks.audit import DISK_TOOLS

    names = {n.name for n in hosttools.needs()}
    required = {t for route in ROUTES.values() for t in route.tools} | set(DISK_TOOLS) | {"lsinitramfs", "lsinitrd"}
    assert required <= names
    assert {"qemu-system-x86_64", "qemu-img", "ip", "dnsmasq", "zstd"} <= names
    for need in hosttools.needs():
        assert need.package and (need.files or proc.TOOL_PACKAGES.get(need.name) == need.package), need


def test_doctor_installs_only_packages_setup_sh_knows_or_every_debian_has() -> None:
    text = SETUP_SH.read_text()
    block = text[text.index("APT_PACKAGES=(") + len("APT_PACKAGES=("):]
    setup = set(block[:block.index(")")].split())
    base = {"dpkg", "coreutils", "util-linux", "tar", "gpgv", "systemd"}
    assert {n.package for n in hosttools.needs()} <= setup | base


def test_doctor_exit_code_and_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(hosttools.HostNeed, "present", lambda self: self.name != "zstd")
    assert main(["doctor", "--json"]) == 3
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["missing_packages"] == ["zstd"]
    monkeypatch.setattr(hosttools.HostNeed, "present", lambda self: True)
    assert main(["doctor"]) == 0
    assert "every host tool is present" in capsys.readouterr().out


def test_doctor_family_narrows_the_build_tools() -> None:
    apt_only = {n.name for n in hosttools.needs(["apt"])}
    assert "mmdebstrap" in apt_only and "dnf" not in apt_only and "zypper" not in apt_only
    assert "qemu-system-x86_64" in apt_only  # verify needs it whatever the family


def test_doctor_install_says_what_it_runs_and_needs_root(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(hosttools.HostNeed, "present", lambda self: self.name != "zstd")
    ran: list[list[str]] = []
    monkeypatch.setattr(hosttools.proc, "stream", lambda argv, **_: ran.append(list(argv)))
    monkeypatch.setattr(hosttools.os, "geteuid", lambda: 0)
    assert main(["doctor", "--install"]) == 3  # still missing afterwards (the stand-in installed nothing)
    err = capsys.readouterr().err
    assert ran == [["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "--no-install-recommends", "zstd"]]
    assert "running: apt-get update -q" in err and "running: apt-get install -y -q --no-install-recommends zstd" in err
    monkeypatch.setattr(hosttools.os, "geteuid", lambda: 1000)
    with pytest.raises(HarnessError, match="needs root"):
        hosttools.install(["zstd"], print)


def test_builds_list_shows_readable_sizes_and_json_keeps_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from tests.factories import make_build

    monkeypatch.setenv("HARNESS_BUILDS", str(tmp_path / "builds"))
    build = make_build(tmp_path / "builds", build_id="20261203-000000-abcdef")
    with (build.path / "disk.raw").open("wb") as handle:
        handle.truncate(32 * 1024**2)
        handle.write(b"\1" * 3 * 1024**2)
    assert main(["builds", "list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert isinstance(row["allocated_bytes"], int) and row["allocated_bytes"] >= 3 * 1024**2
    assert main(["builds", "list"]) == 0
    assert human_size(row["allocated_bytes"]) in capsys.readouterr().out
