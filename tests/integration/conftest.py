"""Session fixtures shared by several integration modules (each boot is minutes under TCG)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.report import Record, StageReport
from harness.runner import RunSummary
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
def e2e_first_run(e2e_dirs: dict[str, Path]) -> RunSummary:
    """`harness run debian-12` with every stage and both firmwares, once for the session."""
    return run_harness(e2e_dirs, [])


@pytest.fixture(scope="session")
def debian12_verified(e2e_first_run: RunSummary) -> StageReport:
    """debian-12 verified under SeaBIOS and OVMF: the e2e run's verify stage (shared, not repeated)."""
    assert e2e_first_run.build is not None
    data = json.loads(e2e_first_run.build.stage_file("verify").read_text())
    report = StageReport(stage="verify", content_digest=data["content_digest"],
                         records=[Record.from_json(r) for r in data["records"]])
    report.extra = {k: v for k, v in data.items() if k in ("boots", "accel", "accel_reason", "parallel_boots")}
    return report
