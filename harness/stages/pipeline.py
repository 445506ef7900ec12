"""`harness run`: build -> check -> verify -> convert -> publish, a loop over the stages with gates.

Each stage is the same code as its own command; this module only sequences them and stops at the first
stage that fails, so an image that failed a gate is never published.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from harness import buildfolder
from harness.builder.context import BuildOptions
from harness.buildfolder import BuildFolder
from harness.enums import Stage, Verdict
from harness.errors import GateError, HarnessError, UsageError
from harness.recipe import Recipe
from harness.results import StageReport
from harness.stages import build as build_stage
from harness.stages import check, convert, publish, verify

ORDER = tuple(Stage)


@dataclass(frozen=True)
class RunOptions:
    """Every stage's options; `stages` picks a subset (always run in pipeline order)."""

    stages: tuple[Stage, ...] = ORDER
    build: BuildOptions = field(default_factory=BuildOptions)
    check: check.CheckOptions = field(default_factory=check.CheckOptions)
    verify: verify.VerifyOptions = field(default_factory=verify.VerifyOptions)
    convert: convert.ConvertOptions = field(default_factory=convert.ConvertOptions)
    publish: publish.PublishOptions = field(default_factory=publish.PublishOptions)
    existing_build: str = ""  # the BUILD to use when 'build' is not among the stages (default RECIPE@latest)


@dataclass
class StageOutcome:
    """One row of `harness run`'s table."""

    stage: Stage
    verdict: Verdict = Verdict.NOT_RUN
    duration_s: float = 0.0
    detail: str = ""
    report: StageReport | None = None


@dataclass
class RunReport:
    """The whole run: each stage's outcome, the build folder, and the error that stopped it, if one did."""

    recipe: str
    outcomes: list[StageOutcome]
    build: BuildFolder | None = None
    error: HarnessError | None = None

    @property
    def passed(self) -> bool:
        ran = [o for o in self.outcomes if o.verdict is not Verdict.NOT_RUN]
        return bool(ran) and self.error is None and all(o.verdict.ok for o in ran)

    def outcome(self, stage: Stage) -> StageOutcome:
        return next(o for o in self.outcomes if o.stage is stage)

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "recipe": self.recipe, "passed": self.passed, "build": str(self.build.path) if self.build else None,
            "stages": [{"name": o.stage.value, "result": o.verdict.value, "duration_s": o.duration_s,
                        "detail": o.detail} for o in self.outcomes],
        }
        if self.error is not None:
            data["error"] = {"message": self.error.message, "hint": self.error.hint}
        for o in self.outcomes:
            if o.report is not None and o.report.artifacts and self.build is not None:
                folder = self.build.path
                data[f"{o.stage.value}_artifacts"] = {k: str(folder / v) for k, v in o.report.artifacts.items()}
        return data


def parse_stages(text: str) -> tuple[Stage, ...]:
    """'check,verify' -> the subset, always in pipeline order; unknown names are an error."""
    wanted = [s.strip() for s in text.split(",") if s.strip()]
    known = {s.value for s in ORDER}
    unknown = [s for s in wanted if s not in known]
    if unknown or not wanted:
        raise UsageError(f"unknown stage(s) {', '.join(unknown) or '(none)'}",
                         f"choose from {','.join(s.value for s in ORDER)}")
    return tuple(s for s in ORDER if s.value in wanted)


def _gate(report: StageReport) -> None:
    """A stage that ran but failed stops the run (its records say why)."""
    if report.passed:
        return
    assert report.build is not None
    failed = [f"{r.where + ': ' if r.where else ''}{r.check}" for r in report.failed_records()]
    where = report.build.path / ("verify" if report.stage is Stage.VERIFY else f"{report.stage.value}.json")
    raise GateError(f"{report.stage.value} failed: {'; '.join(failed) or 'no result'}",
                    f"see {where}; nothing was published")


def _run_stage(stage: Stage, recipe: Recipe, options: RunOptions, build: BuildFolder | None) -> StageReport:
    if stage is Stage.BUILD:
        return build_stage.run(recipe, options.build)
    assert build is not None
    report: StageReport
    if stage is Stage.CHECK:
        report = check.run(build, options.check)
    elif stage is Stage.VERIFY:
        report = verify.run(build, options.verify)
    elif stage is Stage.CONVERT:
        report = convert.run(build, options.convert)
    else:
        report = publish.run(build, options.publish)
    report.build = build
    return report


Observer = Callable[[Stage, StageOutcome | None], None]


def run(recipe: Recipe, options: RunOptions, observe: Observer | None = None) -> RunReport:
    """Run the chosen stages in order; the first failure stops the run and is kept in `RunReport.error`.

    `observe(stage, None)` is called when a stage starts and `observe(stage, outcome)` when it ends
    (the command layer draws its progress board from these).
    """
    result = RunReport(recipe.name, [StageOutcome(s) for s in options.stages])
    if Stage.BUILD not in options.stages:
        result.build = buildfolder.resolve(options.existing_build or f"{recipe.name}@latest")
    for outcome in result.outcomes:
        if observe:
            observe(outcome.stage, None)
        start = time.monotonic()
        try:
            outcome.report = _run_stage(outcome.stage, recipe, options, result.build)
            result.build = outcome.report.build or result.build
            outcome.verdict = outcome.report.result
            outcome.detail = outcome.report.summary
            _gate(outcome.report)
        except HarnessError as exc:
            outcome.verdict = Verdict.FAILED
            outcome.detail = exc.message
            result.error = exc
        finally:
            outcome.duration_s = round(time.monotonic() - start, 1)
            if observe:
                observe(outcome.stage, outcome)
        if result.error is not None:
            break
    return result


def stage_names(stages: Sequence[Stage]) -> str:
    return ",".join(s.value for s in stages)
