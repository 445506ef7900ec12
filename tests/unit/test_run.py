"""The one subprocess entry point: typed failures, pasteable logging, no subprocess anywhere else."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

from harness import proc
from harness.errors import CommandError, CommandTimeoutError, ToolMissingError

HARNESS = Path(__file__).resolve().parents[2] / "harness"


def test_missing_tool_names_its_debian_package() -> None:
    with pytest.raises(ToolMissingError) as info:
        proc.run(["definitely-not-a-tool-xyz"])
    assert "definitely-not-a-tool-xyz" in info.value.message
    with pytest.raises(ToolMissingError, match="install the Debian package 'qemu-utils'"):
        proc.TOOL_PACKAGES["qemu-img-missing-test"] = "qemu-utils"
        proc.which("qemu-img-missing-test")


def test_failure_carries_argv_exit_code_and_stderr_tail() -> None:
    with pytest.raises(CommandError) as info:
        proc.run(["sh", "-c", "for i in $(seq 1 100); do echo line$i >&2; done; exit 3"])
    err = info.value
    assert err.returncode == 3
    assert err.argv[1:] == ["-c", "for i in $(seq 1 100); do echo line$i >&2; done; exit 3"]
    lines = err.output_tail.splitlines()
    assert len(lines) == proc.TAIL_LINES and lines[-1] == "line100"
    assert "exit code 3" in err.message and "line100" in err.message


def test_check_false_returns_the_exit_code() -> None:
    result = proc.run(["sh", "-c", "echo out; echo err >&2; exit 7"], check=False)
    assert (result.returncode, result.stdout, result.stderr) == (7, "out\n", "err\n")


def test_timeout_is_typed() -> None:
    with pytest.raises(CommandTimeoutError, match="timed out after 0 s"):
        proc.run(["sleep", "5"], timeout_s=0.2)


def test_command_is_logged_as_a_pasteable_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="harness.proc")
    proc.run(["echo", "a b", "c'd"])
    assert any(r.getMessage().endswith("echo 'a b' 'c'\"'\"'d'") for r in caplog.records)


def test_stream_feeds_lines_and_keeps_a_log(tmp_path: Path) -> None:
    seen: list[str] = []
    proc.stream(["sh", "-c", "echo one; echo two >&2"], on_line=seen.append, log_path=tmp_path / "log")
    assert sorted(seen) == ["one", "two"]
    assert sorted((tmp_path / "log").read_text().split()) == ["one", "two"]


def test_spawned_process_is_stopped_and_reaped() -> None:
    with proc.spawned(["sleep", "30"], name="sleeper") as child:
        assert child.poll() is None
    assert child.poll() is not None


def test_no_module_but_run_imports_subprocess() -> None:
    offenders = []
    for path in HARNESS.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] == "subprocess" for n in names) and path.name != "proc.py":
                offenders.append(str(path.relative_to(HARNESS)))
    assert offenders == []
