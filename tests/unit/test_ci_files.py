"""The CI pipelines we ship for users: valid YAML, and every harness command they run exists.

Commands are checked by handing their argv to the CLI's real parser, not by matching strings.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cli import make_parser

CI = Path(__file__).resolve().parents[2] / "ci"
TEMPLATE_VALUES = {
    r"\$\{\{\s*matrix\.recipe\s*\}\}": "debian-12",
    r"\$\{\{\s*matrix\.firmware\s*\}\}": "both",
    r"\$\{\{\s*vars\.\w+\s*\}\}": "00000000-0000-0000-0000-000000000000",
    r"\$\(recipe\)": "debian-12",
    r"\$\(firmware\)": "both",
}


def scripts(node: Any) -> list[str]:
    """Every shell snippet in a workflow: GitHub `run`, Azure Pipelines `script` and `inlineScript`."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("run", "script", "inlineScript") and isinstance(value, str):
                found.append(value)
            else:
                found.extend(scripts(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(scripts(item))
    return found


def harness_argvs(text: str) -> list[list[str]]:
    for pattern, value in TEMPLATE_VALUES.items():
        text = re.sub(pattern, value, text)
    argvs = []
    for line in text.replace("\\\n", " ").splitlines():
        if "bin/harness " not in line:
            continue
        command = line[line.index("bin/harness ") + len("bin/harness "):]
        command = re.split(r"\s*(\||>>?|\)|&&)\s*", command)[0]
        argvs.append(shlex.split(command))
    return argvs


@pytest.mark.parametrize("name", ["github/nightly.yml", "azure-pipelines.yml"])
def test_pipeline_parses_and_calls_real_commands(name: str) -> None:
    data = yaml.safe_load((CI / name).read_text())
    assert isinstance(data, dict)
    argvs = [argv for snippet in scripts(data) for argv in harness_argvs(snippet)]
    commands = {argv[0] for argv in argvs}
    assert {"matrix", "run", "publish"} <= commands, commands
    parser = make_parser()
    for argv in argvs:
        args = parser.parse_args(argv)  # SystemExit (a test error) if a command or option does not exist
        assert callable(args.func)


def test_github_publish_is_gated_and_uses_oidc() -> None:
    data = yaml.safe_load((CI / "github/nightly.yml").read_text())
    publish = data["jobs"]["publish"]
    assert "image" in publish["needs"]
    assert publish["permissions"]["id-token"] == "write"
    steps = publish["steps"]
    assert any(str(s.get("uses", "")).startswith("azure/login") for s in steps)
    image_steps = data["jobs"]["image"]["steps"]
    assert any(str(s.get("uses", "")).startswith("actions/upload-artifact") for s in image_steps)


def test_azure_pipelines_publish_stage_depends_on_image() -> None:
    data = yaml.safe_load((CI / "azure-pipelines.yml").read_text())
    stages = {s["stage"]: s for s in data["stages"]}
    assert "image" in stages["publish"]["dependsOn"]
    assert stages["publish"]["condition"] == "succeeded()"
