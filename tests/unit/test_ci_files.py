"""The CI pipelines we ship for users: valid against their schemas, every harness command they run exists, and
they work as copied (installed as a package, one publish per recipe gated on that recipe's verification, a
staging -> promote flow, reports as artifacts but never the sparse disk).

Commands are checked by handing their argv to the CLI's real parser, not by matching strings. The matrix step's
shell line is run as it is, with GITHUB_OUTPUT pointing at a file.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cli import make_parser
from harness.recipe import DISTROS_DIR

CI = Path(__file__).resolve().parents[2] / "ci"
GITHUB = CI / "github/nightly.yml"
AZURE = CI / "azure-pipelines.yml"
VENV_BIN = Path(sys.executable).parent
CHECK_JSONSCHEMA = VENV_BIN / "check-jsonschema"
# Template expressions a runner fills in, with a value each could take.
TEMPLATE_VALUES = {
    r"\$\{\{\s*matrix\.recipe\s*\}\}": "debian-12",
    r"\$\{\{\s*matrix\.firmware\s*\}\}": "both",
    r"\$\{\{\s*matrix\.family\s*\}\}": "apt",
    r"\$\{\{\s*vars\.\w+\s*\}\}": "00000000-0000-0000-0000-000000000000",
    r"\$\(recipe\)": "debian-12",
    r"\$\(firmware\)": "both",
    r"\$\(family\)": "apt",
}
SHELL_DEFAULT = re.compile(r"\$\{\w+:-([^}]*)\}")  # ${NAME:-default} -> default
# `harness ...` as a command word: at the start, after a space, `(`, a quote or `/` (not `azure-image-harness`).
HARNESS_COMMAND = re.compile(r"(?:^|(?<=[\s(\"'/]))harness\s+(?=[a-z-])")
COMMAND_END = re.compile(r"\s*(?:\||>>?|\)|&&|;|\n)\s*")


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def scripts(node: Any) -> list[str]:
    """Every shell snippet in a pipeline: GitHub `run`, Azure Pipelines `script` and `inlineScript`."""
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


def fill(text: str, variables: dict[str, str]) -> str:
    for pattern, value in TEMPLATE_VALUES.items():
        text = re.sub(pattern, value, text)
    for name, value in variables.items():  # Azure Pipelines macros of the pipeline's own variables
        text = text.replace(f"$({name})", value)
    return SHELL_DEFAULT.sub(lambda m: m.group(1), text)


def harness_argvs(text: str, variables: dict[str, str] | None = None) -> list[list[str]]:
    """The argv of every harness command in a snippet (line continuations joined, templates filled in)."""
    text = fill(text.replace("\\\n", " "), variables or {})
    argvs = []
    for match in HARNESS_COMMAND.finditer(text):
        command = COMMAND_END.split(text[match.end():], maxsplit=1)[0]
        argvs.append(shlex.split(command))
    return argvs


def pipeline_variables(data: dict[str, Any]) -> dict[str, str]:
    found = data.get("variables") or {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


@pytest.mark.parametrize("path", [GITHUB, AZURE], ids=["github", "azure-pipelines"])
def test_pipeline_calls_real_commands_and_options(path: Path) -> None:
    data = load(path)
    argvs = [argv for snippet in scripts(data) for argv in harness_argvs(snippet, pipeline_variables(data))]
    commands = {argv[0] for argv in argvs}
    assert {"matrix", "doctor", "run", "publish", "promote"} <= commands, commands
    parser = make_parser()
    for argv in argvs:
        args = parser.parse_args(argv)  # SystemExit (a test error) if a command or option does not exist
        assert callable(args.func)


@pytest.mark.parametrize(("path", "schema", "extra"), [
    (GITHUB, "vendor.github-workflows", []),
    # check-jsonschema's own settings for this schema (its pre-commit hook): the schema's patterns are ECMA regexes
    # without the unicode flag, and compile-time expressions are unpacked first.
    (AZURE, "vendor.azure-pipelines", ["--data-transform", "azure-pipelines", "--regex-variant", "nonunicode"]),
], ids=["github", "azure-pipelines"])
def test_pipeline_is_valid_against_its_schema(path: Path, schema: str, extra: list[str]) -> None:
    assert CHECK_JSONSCHEMA.exists(), "check-jsonschema is a dev dependency: run `make setup`"
    result = subprocess.run([str(CHECK_JSONSCHEMA), "--builtin-schema", schema, *extra, str(path)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _user_recipes(tmp_path: Path) -> Path:
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "my-debian.toml").write_text('name = "my-debian"\nextends = "debian-12"\ndescription = "mine"\n')
    (folder / "my-rhel.toml").write_text('name = "my-rhel"\nextends = "rhel-9"\n')
    return folder


def _run_line(line: str, tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert shutil.which("bash")
    full = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", **env}
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", line], cwd=tmp_path, env=full,
                          capture_output=True, text=True, timeout=120, check=False)


def _matrix_step(data: dict[str, Any], job: str) -> str:
    steps = data["jobs"][job]["steps"]
    found = [s["run"] for s in steps if s.get("id") == "matrix"]
    assert len(found) == 1
    return str(found[0])


def test_github_matrix_line_writes_one_matrix_output_that_parses(tmp_path: Path) -> None:
    line = _matrix_step(load(GITHUB), "matrix")
    assert "\n" not in line.strip() and "${{" not in line  # runs as it is
    output = tmp_path / "github_output"
    output.write_text("earlier=1\n")
    result = _run_line(line, tmp_path, {"GITHUB_OUTPUT": str(output), "HARNESS_RECIPES": str(_user_recipes(tmp_path))})
    assert result.returncode == 0, result.stderr
    lines = output.read_text().splitlines()
    assert lines[0] == "earlier=1" and len(lines) == 2, lines
    key, _, value = lines[1].partition("=")
    assert key == "matrix"
    matrix = json.loads(value)
    assert [i["recipe"] for i in matrix["include"]] == ["my-debian"]  # user recipes that build from an archive
    assert matrix["include"][0]["firmware"] == "both" and matrix["include"][0]["family"] == "apt"


def test_azure_matrix_line_sets_legs_named_with_letters_digits_and_underscores(tmp_path: Path) -> None:
    data = load(AZURE)
    steps = {s.get("name"): s for job in data["jobs"] for s in job["steps"]}
    line = fill(steps["m"]["script"], pipeline_variables(data))
    folder = _user_recipes(tmp_path)
    (folder / "my-ubuntu-24.04.toml").write_text('name = "my-ubuntu-24.04"\nextends = "ubuntu-24.04"\n')
    result = _run_line(line, tmp_path, {"HARNESS_RECIPES": str(folder)})
    assert result.returncode == 0, result.stderr
    prefix = "##vso[task.setvariable variable=legs;isOutput=true]"
    (out,) = result.stdout.splitlines()
    assert out.startswith(prefix)
    legs = json.loads(out[len(prefix):])
    assert sorted(legs) == ["my_debian", "my_ubuntu_24_04"]
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name) for name in legs)
    assert all(isinstance(v, str) for leg in legs.values() for v in leg.values())
    assert legs["my_ubuntu_24_04"]["recipe"] == "my-ubuntu-24.04"


def _steps(data: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return list(data["jobs"][job]["steps"])


def test_github_publishes_each_recipe_from_the_job_that_verified_it() -> None:
    data = load(GITHUB)
    assert set(data["jobs"]) == {"matrix", "image"}  # no separate publish job: one recipe, one job
    job = data["jobs"]["image"]
    assert job["permissions"] == {"contents": "read", "id-token": "write", "checks": "write"}
    assert data["permissions"] == {"contents": "read"}
    steps = _steps(data, "image")
    ids = [s.get("id") for s in steps]
    verify, publish, smoke = (ids.index(n) for n in ("verify", "publish", "smoke"))
    promote = next(i for i, s in enumerate(steps) if "harness promote" in s.get("run", ""))
    assert verify < publish < smoke < promote
    login = next(i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith("azure/login"))
    assert verify < login < publish
    assert steps[publish]["if"] == "steps.verify.outcome == 'success'"
    assert steps[login]["if"] == "steps.verify.outcome == 'success'"
    assert "--exclude-from-latest" in steps[publish]["run"]  # staging first
    assert "vars.HARNESS_SMOKE_TEST == 'true'" in steps[smoke]["if"]  # off unless asked for
    smoke_script = steps[smoke]["run"]
    assert "az vm create" in smoke_script and "ssh " in smoke_script
    cleanup = next(s for s in steps if "az vm delete" in s.get("run", ""))
    assert cleanup["if"].startswith("always()")


def test_github_installs_the_package_caches_and_opens_kvm() -> None:
    data = load(GITHUB)
    text = GITHUB.read_text()
    assert data["env"]["HARNESS_PIP_SPEC"] == "${{ vars.HARNESS_PIP_SPEC || 'azure-image-harness' }}"
    assert "make setup" not in text and ".venv/bin/harness" not in text  # the user's repository has no Makefile
    steps = _steps(data, "image")
    cache = next(s for s in steps if str(s.get("uses", "")).startswith("actions/cache"))
    assert "~/.cache/harness" in cache["with"]["path"] and "~/.cache/pip" in cache["with"]["path"]
    assert any("99-kvm4all.rules" in s.get("run", "") and "/dev/kvm" in s.get("run", "") for s in steps)
    assert any("doctor --install" in s.get("run", "") for s in steps)


@pytest.mark.parametrize("path", [GITHUB, AZURE], ids=["github", "azure-pipelines"])
def test_artifacts_are_reports_never_the_sparse_disk(path: Path) -> None:
    text = path.read_text()
    assert "zstd" in text
    if path == GITHUB:
        upload = next(s for s in _steps(load(GITHUB), "image")
                      if str(s.get("uses", "")).startswith("actions/upload-artifact"))
        paths = upload["with"]["path"].split()
        assert "!builds/**/disk.vhd" in paths and "!builds/**/disk.raw" in paths
        report = next(s for s in _steps(load(GITHUB), "image")
                      if str(s.get("uses", "")).startswith("mikepenz/action-junit-report"))
        assert report["if"] == "always()"
    else:
        assert "--exclude disk.vhd --exclude disk.raw" in text


def test_azure_pipelines_publish_and_promote_run_in_the_recipe_job_after_it_succeeded() -> None:
    data = load(AZURE)
    jobs = {j["job"]: j for j in data["jobs"]}
    assert set(jobs) == {"matrix", "image"}
    assert jobs["image"]["strategy"]["matrix"] == "$[ dependencies.matrix.outputs['m.legs'] ]"
    steps = jobs["image"]["steps"]
    names = [s.get("displayName", "") for s in steps]
    run = next(i for i, s in enumerate(steps) if "harness run" in s.get("script", ""))
    publish = next(i for i, n in enumerate(names) if n.startswith("publish"))
    promote = next(i for i, n in enumerate(names) if n.startswith("promote"))
    smoke = next(i for i, s in enumerate(steps) if s.get("name") == "smoke")
    assert run < publish < smoke < promote
    assert steps[publish]["condition"] == "succeeded()" and steps[promote]["condition"] == "succeeded()"
    assert "--exclude-from-latest" in steps[publish]["inputs"]["inlineScript"]
    assert "eq(variables['HARNESS_SMOKE_TEST'], 'true')" in steps[smoke]["condition"]
    assert data["variables"]["HARNESS_SMOKE_TEST"] == "false"
    assert all(s["inputs"]["azureSubscription"] == "$(AZURE_SERVICE_CONNECTION)"
               for s in steps if s.get("task") == "AzureCLI@2")
    assert any(s.get("task") == "Cache@2" for s in steps)


def test_azure_settings_example_is_complete() -> None:
    from harness.publish.azure_settings import load_toml, resolve

    table = load_toml(CI / "azure.toml")
    target = resolve({"subscription_id": "00000000-0000-0000-0000-000000000000"}, {}, table)
    assert target.gallery and target.storage_account


def test_builtin_recipes_and_family_scripts_ship_in_the_package() -> None:
    from harness.builder.pipeline import SNIPPETS

    assert DISTROS_DIR.parent.name == "harness" and (DISTROS_DIR / "debian-12.toml").is_file()
    assert SNIPPETS == DISTROS_DIR
    assert {p.relative_to(SNIPPETS).as_posix() for p in SNIPPETS.glob("*/*.sh")} >= {
        "common/main.sh", "common/seal.sh", "common/settings.sh", "apt/customize.sh", "dnf/customize.sh",
        "zypper/customize.sh"}
