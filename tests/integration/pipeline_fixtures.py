"""Helpers to run `harness run` the way the CLI does (typed options, the same pipeline) inside the tests."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from harness import recipe
from harness.builder.context import BuildOptions
from harness.stages.pipeline import RunOptions, RunReport, parse_stages, run
from harness.stages.publish import LocalTarget, PublishOptions
from tests.conftest import TEST_DISK_MIB


def run_options(gallery: Path, stages: str = "build,check,verify,convert,publish", **changes: Any) -> RunOptions:
    """`harness run debian-12 --disk-size-mib 4096 --to local:GALLERY [--stages ...]` as typed options."""
    options = RunOptions(stages=parse_stages(stages), build=BuildOptions(disk_size_mib=TEST_DISK_MIB),
                         publish=PublishOptions(target=LocalTarget(gallery)))
    return dataclasses.replace(options, **changes)


def run_harness(dirs: dict[str, Path], stages: str = "build,check,verify,convert,publish") -> RunReport:
    """`harness run debian-12` with the e2e builds folder and gallery; returns the run's report."""
    old = os.environ.get("HARNESS_BUILDS")
    os.environ["HARNESS_BUILDS"] = str(dirs["builds"])
    try:
        return run(recipe.load("debian-12"), run_options(dirs["gallery"], stages))
    finally:
        if old is None:
            os.environ.pop("HARNESS_BUILDS", None)
        else:
            os.environ["HARNESS_BUILDS"] = old
