"""The wheel works outside the checkout: the built-in recipes and family scripts ship inside the package, and a
user's own recipe directory extends them.

Marked `network`: pip builds the wheel in an isolated environment, which it fills from the package index.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from harness import proc

pytestmark = pytest.mark.network

REPO = Path(__file__).resolve().parents[2]
USER_RECIPE = """\
name = "acme-debian"
extends = "debian-12"
description = "Debian 12 with our web server"
[packages]
include = ["nginx"]
[gallery]
publisher = "acme"
offer = "debian"
sku = "12-web"
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy of what the sdist holds: setuptools writes build/ and *.egg-info next to pyproject.toml.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "harness", source / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    wheelhouse = tmp_path_factory.mktemp("wheelhouse")
    proc.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheelhouse), "."], cwd=source,
             timeout_s=900, hint="pip could not build the wheel (it needs the package index for setuptools)")
    (found,) = wheelhouse.glob("*.whl")
    return found


def test_the_wheel_is_azure_image_harness_and_holds_the_recipes(wheel: Path) -> None:
    assert wheel.name.startswith("azure_image_harness-")
    names = set(zipfile.ZipFile(wheel).namelist())
    for member in ("harness/distros/debian-12.toml", "harness/distros/common/main.sh",
                   "harness/distros/apt/customize.sh", "harness/distros/keyrings/ubuntu-archive-2018.gpg",
                   "harness/py.typed", "harness/cli.py"):
        assert member in names, member
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "harness = harness.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_wheel_lists_and_plans_a_user_recipe_from_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    proc.run([sys.executable, "-m", "venv", str(venv)], timeout_s=300)
    proc.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
             timeout_s=300)
    user = tmp_path / "my-recipes"
    user.mkdir()
    (user / "acme-debian.toml").write_text(USER_RECIPE)
    work = tmp_path / "work"
    work.mkdir()
    # Dependencies from this test environment (the wheel was installed without them); .pth files on PYTHONPATH are
    # not read, so the checkout's editable install cannot shadow the installed package.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    env.update(PYTHONPATH=sysconfig.get_paths()["purelib"], HARNESS_BUILDS=str(tmp_path / "builds"))
    harness = str(venv / "bin" / "harness")

    where = proc.run([str(venv / "bin" / "python"), "-c", "import harness; print(harness.__file__)"], cwd=work,
                     env=env).stdout.strip()
    assert where.startswith(str(venv)), where

    listed = json.loads(proc.run([harness, "--recipes", str(user), "recipes", "list", "--json"], cwd=work,
                                 env=env, timeout_s=120).stdout)
    rows = {r["name"]: r for r in listed}
    assert rows["acme-debian"]["origin"] == str(user) and rows["acme-debian"]["extends"] == "debian-12"
    assert rows["acme-debian"]["family"] == "apt" and "error" not in rows["acme-debian"]
    assert rows["debian-12"]["origin"] == "builtin" and rows["debian-12"]["path"].startswith(str(venv))

    planned = json.loads(proc.run([harness, "--recipes", str(user), "build", "--plan", "acme-debian", "--json"],
                                  cwd=work, env=env, timeout_s=120).stdout)
    assert planned["recipe"] == "acme-debian" and planned["family"] == "apt"
    mmdebstrap = planned["commands"][0]
    assert mmdebstrap[0] == "mmdebstrap" and "nginx" in next(a for a in mmdebstrap if a.startswith("--include="))
    assert "/etc/default/grub" in planned["files"]
    assert not (work / "builds").exists()
