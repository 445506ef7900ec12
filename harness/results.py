"""What a stage produces: check records (one schema for every stage) and one `StageReport` per stage run.

A stage file (`check.json`, `verify.json`, `publish.json`) holds the report of the stage's last run; report.py
regenerates the merged results.json, junit.xml and summary.md from all of them after each stage.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from harness.enums import Result, Stage, Verdict
from harness.errors import NotFoundError

if TYPE_CHECKING:
    from harness.buildfolder import BuildFolder

PASSED, WARNING, FAILED, SKIPPED = Result.PASSED, Result.WARNING, Result.FAILED, Result.SKIPPED
RECORDED_STAGES = (Stage.CHECK, Stage.VERIFY, Stage.PUBLISH)  # the stages that write <stage>.json


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Record:
    """One check's outcome; the Marketplace self-test shape plus where and how long."""

    stage: str
    check: str
    result: Result
    actual: str = ""
    required: str = ""
    message: str = ""
    duration_s: float = 0.0
    firmware: str | None = None
    platform: str | None = None
    configuration: str | None = None  # the VM configuration of a verify boot, e.g. uefi-trusted-launch-nvme
    scenario: str | None = None
    evidence: str | None = None  # a file under the build folder that shows why

    def __post_init__(self) -> None:
        self.result = Result(self.result)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["result"] = self.result.value
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Record:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    @property
    def where(self) -> str:
        """'bios-azure' for a verify boot, '' for a stage-wide check."""
        return self.configuration or "-".join(x for x in (self.firmware, self.platform) if x)


@dataclass
class StageReport:
    """One stage run: its records, verdict, timing, artifacts and stage-specific details (JSON-ready)."""

    stage: Stage
    content_digest: str = ""
    records: list[Record] = field(default_factory=list)
    verdict: Verdict | None = None  # None: derived from the records
    started: str = field(default_factory=now)
    finished: str = ""
    duration_s: float = 0.0
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> path relative to the build folder
    details: dict[str, Any] = field(default_factory=dict)
    summary: str = ""  # one line for `harness run`'s table
    build: BuildFolder | None = field(default=None, compare=False)  # the folder the stage worked on or made

    @property
    def result(self) -> Verdict:
        if self.verdict is not None:
            return self.verdict
        failed = not self.records or any(r.result == FAILED for r in self.records)
        return Verdict.FAILED if failed else Verdict.PASSED

    @property
    def passed(self) -> bool:
        return self.result.ok

    def failed_records(self) -> list[Record]:
        return [r for r in self.records if r.result == FAILED]

    def counts(self) -> dict[str, int]:
        return {result.value: sum(1 for r in self.records if r.result == result) for result in Result}

    def counts_text(self) -> str:
        counts = self.counts()
        return f"{counts['Passed']} passed, {counts['Failed']} failed, {counts['Warning']} warnings"

    def to_json(self) -> dict[str, Any]:
        return {
            **self.details,
            "stage": self.stage.value,
            "content_digest": self.content_digest,
            "started": self.started,
            "finished": self.finished or now(),
            "duration_s": self.duration_s,
            "verdict": self.result.value,
            "passed": self.passed,
            "counts": self.counts(),
            "artifacts": self.artifacts,
            "records": [r.to_json() for r in self.records],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StageReport:
        own = {"stage", "content_digest", "started", "finished", "duration_s", "verdict", "passed", "counts",
               "artifacts", "records"}
        verdict = data.get("verdict")
        if verdict is None and "passed" in data:  # files written before verdicts existed
            verdict = Verdict.PASSED if data["passed"] else Verdict.FAILED
        return cls(stage=Stage(data["stage"]), content_digest=str(data.get("content_digest", "")),
                   records=[Record.from_json(r) for r in data.get("records", [])],
                   verdict=Verdict(verdict) if verdict else None, started=str(data.get("started", "")),
                   finished=str(data.get("finished", "")), duration_s=float(data.get("duration_s") or 0.0),
                   artifacts=dict(data.get("artifacts") or {}),
                   details={k: v for k, v in data.items() if k not in own})


def load_stage(build: BuildFolder, stage: Stage | str) -> StageReport | None:
    """The stage's last report in this build folder, or None when it never ran."""
    from harness.buildfolder import read_json

    path = build.stage_file(str(stage))
    if not path.exists():
        return None
    data = read_json(path)
    if not isinstance(data, dict) or "stage" not in data:
        return None
    return report_from_json(data, path)


_DAMAGED = (KeyError, TypeError, ValueError, AttributeError)  # what a hand-edited or damaged file raises on parsing


def report_from_json(data: Any, where: object) -> StageReport:
    """A stage report read from `where` (a stage file, or a gallery version's copy); NotFoundError when damaged."""
    try:
        return StageReport.from_json(data)
    except _DAMAGED as exc:
        raise NotFoundError(f"{where} is damaged: not a stage report ({type(exc).__name__}: {exc})",
                            "delete it and rerun the stage") from exc


def records_from_json(data: Any, where: object) -> list[Record]:
    """The records of a results.json read from `where`; NotFoundError when damaged."""
    try:
        return [Record.from_json(r) for r in data.get("records", [])]
    except _DAMAGED as exc:
        raise NotFoundError(f"{where} is damaged: not a results file ({type(exc).__name__}: {exc})",
                            "delete it and rerun the stage") from exc


def stage_passed(build: BuildFolder, stage: Stage, digest: str, firmware: str | None = None) -> bool:
    """Whether the stage's last run passed for this content digest (and firmware, for verify)."""
    report = load_stage(build, stage)
    if report is None or report.content_digest != digest:
        return False
    records = report.records
    if firmware is not None:
        records = [r for r in records if r.firmware == firmware]
    return bool(records) and not any(r.result == FAILED for r in records)
