"""Session fixtures shared by several integration modules (each boot is minutes under TCG)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.enums import Stage
from harness.results import StageReport, load_stage
from harness.stages.pipeline import RunReport
from tests.integration.pipeline_fixtures import run_harness


@pytest.fixture(scope="session")
def e2e_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A fresh builds folder and gallery: the e2e run starts from nothing (the apt cache stays warm)."""
    root = Path(__file__).resolve().parents[2] / ".test-builds" / "e2e"
    base = tmp_path_factory.mktemp("e2e", numbered=True)
    builds = root / base.name
    builds.mkdir(parents=True)
    return {"builds": builds, "gallery": base / "gallery"}


@pytest.fixture(scope="session")
def e2e_first_run(e2e_dirs: dict[str, Path]) -> RunReport:
    """`harness run debian-12` with every stage and both firmwares, once for the session."""
    return run_harness(e2e_dirs)


@pytest.fixture(scope="session")
def debian12_verified(e2e_first_run: RunReport) -> StageReport:
    """debian-12 verified under SeaBIOS and OVMF: the e2e run's verify stage (shared, not repeated)."""
    assert e2e_first_run.build is not None
    report = load_stage(e2e_first_run.build, Stage.VERIFY)
    assert report is not None
    report.build = e2e_first_run.build
    return report
