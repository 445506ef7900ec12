"""Helpers to run `harness run` the way a user does (through the CLI's parser) inside the tests."""

from __future__ import annotations

import os
from pathlib import Path

from harness.cli import make_parser
from harness.runner import RunSummary, run_pipeline
from tests.conftest import TEST_DISK_MIB


def run_harness(dirs: dict[str, Path], extra: list[str]) -> RunSummary:
    """`harness run debian-12` with the e2e builds folder and gallery; returns the run's summary."""
    old = os.environ.get("HARNESS_BUILDS")
    os.environ["HARNESS_BUILDS"] = str(dirs["builds"])
    try:
        args = make_parser().parse_args(["run", "debian-12", "--disk-size-mib", str(TEST_DISK_MIB),
                                         "--to", f"local:{dirs['gallery']}", *extra])
        return run_pipeline(args)
    finally:
        if old is None:
            os.environ.pop("HARNESS_BUILDS", None)
        else:
            os.environ["HARNESS_BUILDS"] = old
