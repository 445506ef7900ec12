"""`harness run`: build -> check -> verify -> convert -> publish, stopping at the first failed gate.

Each stage is the same code as its own command; this module only sequences them, keeps the
evidence, and never publishes an image that failed a gate.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from harness import recipe as recipe_mod
from harness.buildfolder import BuildFolder, resolve
from harness.errors import GateError, HarnessError
from harness.progress import StageBoard

log = logging.getLogger(__name__)

STAGES = ("build", "check", "verify", "convert", "publish")


@dataclass
class StageOutcome:
    name: str
    result: str = "not run"  # passed | failed | cache hit | not run
    duration_s: float = 0.0
    detail: str = ""


@dataclass
class RunSummary:
    recipe: str
    outcomes: list[StageOutcome]
    build: BuildFolder | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(o.result in ("passed", "cache hit", "not run") for o in self.outcomes) and any(
            o.result != "not run" for o in self.outcomes)


def parse_stages(text: str) -> list[str]:
    """'check,verify' -> the subset, always in pipeline order; unknown names are an error."""
    wanted = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in STAGES]
    if unknown or not wanted:
        raise HarnessError(f"unknown stage(s) {', '.join(unknown) or '(none)'}", f"choose from {','.join(STAGES)}")
    return [s for s in STAGES if s in wanted]


def _counts(records: list[dict[str, Any]]) -> str:
    passed = sum(r.get("result") == "Passed" for r in records)
    failed = sum(r.get("result") == "Failed" for r in records)
    warned = sum(r.get("result") == "Warning" for r in records)
    return f"{passed} passed, {failed} failed, {warned} warnings"


def stage_build(args: argparse.Namespace, summary: RunSummary) -> str:
    from harness.build import pipeline
    from harness.commands.build import options_from

    result = pipeline.build(recipe_mod.load(args.recipe), options_from(args))
    summary.build = result.folder
    if result.cache_hit:
        return "cache hit"
    return "passed"


def stage_check(args: argparse.Namespace, summary: RunSummary) -> str:
    from harness.commands.check import check_build

    assert summary.build is not None
    data, failed = check_build(summary.build)
    summary.facts["check"] = _counts(data["records"])
    if failed:
        names = [r["check"] for r in data["records"] if r["result"] == "Failed"]
        raise GateError(f"offline audit failed: {', '.join(names)}",
                        f"see {summary.build.path / 'check.json'}; nothing was published")
    return "passed"


def stage_verify(args: argparse.Namespace, summary: RunSummary) -> str:
    from harness.commands.verify import firmwares, platforms
    from harness.verify.stage import VerifyOptions, verify

    assert summary.build is not None
    report = verify(summary.build, VerifyOptions(
        firmwares=firmwares(args.firmware), platforms=platforms(args.platform), keep=args.keep,
        faults=tuple(args.fault), timeout_s=args.timeout_s, accel=args.accel, parallel=args.parallel))
    data = report.to_json()
    summary.facts["verify"] = _counts(data["records"])
    boots = report.extra.get("boots", {})
    summary.facts["ready_s"] = {name: b.get("timings_s", {}).get("ready_s") for name, b in boots.items()}
    if not report.passed:
        failed = [f"{r.firmware}-{r.platform}: {r.check}" for r in report.records if r.result == "Failed"]
        raise GateError(f"verification failed: {'; '.join(failed)}",
                        f"evidence under {summary.build.path / 'verify'}; nothing was published")
    return "passed"


def stage_convert(args: argparse.Namespace, summary: RunSummary) -> str:
    from harness.commands.convert import convert_build

    assert summary.build is not None
    result = convert_build(summary.build)
    summary.facts["vhd"] = result.vhd
    return "passed"


def stage_publish(args: argparse.Namespace, summary: RunSummary) -> str:
    from harness.commands.publish import publish_build

    assert summary.build is not None
    target, _, outcomes, _ = publish_build(summary.build, args)
    summary.facts["published"] = [f"{o['definition']} {o['version']}" + ("" if o["created"] else " (no-op)")
                                  for o in outcomes]
    summary.facts["target"] = target
    return "passed"


STAGE_FUNCTIONS = {"build": stage_build, "check": stage_check, "verify": stage_verify,
                   "convert": stage_convert, "publish": stage_publish}


def run_pipeline(args: argparse.Namespace) -> RunSummary:
    """Run the chosen stages in order; a failed stage stops the run (GateError carries why)."""
    stages = parse_stages(args.stages)
    summary = RunSummary(args.recipe, [StageOutcome(name) for name in stages])
    if "build" not in stages:
        summary.build = resolve(args.build or f"{args.recipe}@latest")
    with StageBoard(stages) as board:
        for outcome in summary.outcomes:
            board.begin(outcome.name)
            start = time.monotonic()
            try:
                outcome.result = STAGE_FUNCTIONS[outcome.name](args, summary)
            except HarnessError as exc:
                outcome.result = "failed"
                outcome.detail = exc.message
                summary.facts["error"] = exc
                break
            finally:
                outcome.duration_s = round(time.monotonic() - start, 1)
                board.end(outcome.name, outcome.result)
            outcome.detail = str(summary.facts.get(outcome.name, ""))
    return summary
