"""What a rule is: a named function from the image to records, plus helpers that build check records."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.enums import Result
from harness.results import FAILED, PASSED, SKIPPED, WARNING, Record

if TYPE_CHECKING:
    from harness.checks.image import Image

STAGE = "check"
_ORDER = {SKIPPED: 0, PASSED: 1, WARNING: 2, FAILED: 3}

RuleFn = Callable[["Image"], list[Record]]


@dataclass(frozen=True)
class Rule:
    """A checklist rule; `name` is the record name used if the rule cannot be evaluated at all."""

    name: str
    fn: RuleFn

    def __call__(self, image: Image) -> list[Record]:
        return self.fn(image)


def rule(name: str) -> Callable[[RuleFn], Rule]:
    def wrap(fn: RuleFn) -> Rule:
        return Rule(name, fn)

    return wrap


def record(check: str, result: Result | str, actual: str = "", required: str = "", message: str = "") -> Record:
    return Record(stage=STAGE, check=check, result=Result(result), actual=actual, required=required, message=message)


def worst(results: Iterable[Result]) -> Result:
    """The most severe result (Failed > Warning > Passed > Skipped); Passed for none."""
    found = list(results)
    return max(found, key=lambda r: _ORDER[r]) if found else PASSED


Problem = tuple[Result, str]  # (severity, what is wrong and how to fix it)


def verdict(check: str, problems: Sequence[Problem], actual: str, required: str, ok_message: str = "") -> Record:
    """One record from (severity, problem-with-fix) pairs: the worst severity wins, messages are joined."""
    result = worst(severity for severity, _ in problems)
    message = "; ".join(text for _, text in problems) or ok_message
    return record(check, result, actual, required, message)


def skipped(check: str, reason: str) -> Record:
    return record(check, SKIPPED, f"not applicable: {reason}", "", reason)


def listing(items: Iterable[str], limit: int = 8) -> str:
    """'a, b, c (+3 more)' for actual values."""
    values = list(items)
    shown = ", ".join(values[:limit])
    return shown + (f" (+{len(values) - limit} more)" if len(values) > limit else "") if values else "none"


__all__ = ["FAILED", "PASSED", "SKIPPED", "WARNING", "Problem", "Record", "Rule", "listing", "record", "rule",
           "skipped", "verdict", "worst"]
