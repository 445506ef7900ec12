"""The layers point down: commands parse and print, stages run, the library never sees a command line."""

from __future__ import annotations

import ast
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[2] / "harness"
COMMAND_LAYER = ("cli.py", "commands")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_library_module_imports_argparse_or_the_command_layer() -> None:
    offenders = []
    for path in HARNESS.rglob("*.py"):
        relative = path.relative_to(HARNESS)
        if relative.parts[0] in COMMAND_LAYER:
            continue
        bad = {n for n in _imports(path) if n == "argparse" or n.startswith(("harness.commands", "harness.cli"))}
        if bad:
            offenders.append(f"{relative}: {sorted(bad)}")
    assert offenders == []


def test_stages_do_not_import_each_others_commands_and_builder_is_not_called_build() -> None:
    assert not (HARNESS / "build").exists()
    stages = sorted(p.stem for p in (HARNESS / "stages").glob("*.py") if p.stem != "__init__")
    assert stages == ["build", "check", "convert", "pipeline", "publish", "verify"]
