"""A recipe's recent builds as the HTML report reads them: the build before this one, and boot-to-Ready over the
last builds (one series per boot name)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from harness.buildfolder import BuildFolder, list_builds
from harness.enums import Stage
from harness.errors import HarnessError
from harness.evidence import boots
from harness.results import load_stage

log = logging.getLogger(__name__)

TREND_BUILDS = 20


@dataclass(frozen=True)
class TrendPoint:
    """Seconds from QEMU's start to the agent's Ready in one boot of one build."""

    build_id: str
    boot: str
    ready_s: float


def history(build: BuildFolder) -> list[BuildFolder]:
    """The recipe's builds up to and including this one, oldest first (its siblings in the builds folder)."""
    siblings = list_builds(build.recipe_name, build.path.parent.parent)
    ids = [b.build_id for b in siblings]
    if build.build_id not in ids:
        return [*siblings, build]
    return siblings[:ids.index(build.build_id) + 1]


def previous(build: BuildFolder) -> BuildFolder | None:
    """The recipe's build made just before this one, if any."""
    found = history(build)
    return found[-2] if len(found) >= 2 else None


def ready_points(builds: list[BuildFolder]) -> list[TrendPoint]:
    """Every recorded Ready time of these builds; a build whose verify.json cannot be read adds none."""
    points = []
    for build in builds:
        try:
            verify = load_stage(build, Stage.VERIFY)
        except (HarnessError, KeyError, TypeError, ValueError) as exc:
            log.debug("trend: skipping %s (%s)", build.path, exc)
            continue
        for boot in boots(verify):
            ready = boot.timings_s.get("ready_s")
            if ready is not None:
                points.append(TrendPoint(build.build_id, boot.name, ready))
    return points


def ready_trend(build: BuildFolder, limit: int = TREND_BUILDS) -> tuple[list[str], list[TrendPoint]]:
    """(build ids oldest first, Ready points) over the recipe's last `limit` builds up to this one."""
    recent = history(build)[-limit:]
    return [b.build_id for b in recent], ready_points(recent)
