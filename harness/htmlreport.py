"""report.html: one self-contained page per build (boot timeline, the guest's boot charts, checks, package
changes, Ready trend, publish history), regenerated with results.json after every stage.

`collect` reads the build folder and its neighbours; `render` is pure; `write` never raises for a rendering
problem: it logs it and keeps the previous report.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import htmlsections as sections
from harness.buildfolder import BuildFolder, write_text_atomic
from harness.diffing import diff, side_of_build, side_of_gallery
from harness.errors import HarnessError
from harness.evidence import BOOT_CHART, BOOT_LOGS, Boot, boots, existing, record_evidence
from harness.htmlkit import page
from harness.htmlsections import Chart, Checked, Compared
from harness.manifest import Manifest
from harness.results import StageReport, now
from harness.trend import TrendPoint, previous, ready_trend

log = logging.getLogger(__name__)

REPORT = "report.html"
MAX_CHART_BYTES = 8 * 1024 * 1024  # a systemd-analyze plot is ~100-500 KB; far more is not a plot to inline


@dataclass(frozen=True)
class ReportInput:
    """Everything report.html shows, read from the build folder (and its recipe's other builds)."""

    manifest: Manifest
    stages: Mapping[str, StageReport]
    boots: tuple[Boot, ...] = ()
    boot_logs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    charts: tuple[Chart, ...] = ()
    checked: tuple[Checked, ...] = ()
    compared: tuple[Compared, ...] = ()
    trend_builds: tuple[str, ...] = ()
    trend_points: tuple[TrendPoint, ...] = ()
    history: tuple[Mapping[str, Any], ...] = ()
    generated: str = ""


def render(data: ReportInput) -> str:
    """The page (pure: no file is read)."""
    manifest = data.manifest
    body = [
        sections.header(manifest, data.generated),
        sections.section("Stages", sections.stages_table(data.stages), "stages"),
        sections.timeline(data.boots, data.boot_logs),
        sections.boot_charts(data.charts),
        sections.checks(data.checked),
        sections.packages(data.compared),
        sections.trend(data.trend_builds, data.trend_points, manifest.build_id),
        sections.publish_history(data.history),
    ]
    return page(f"harness {manifest.recipe} {manifest.build_id}", "\n".join(body))


def read_chart(folder: Path, boot: Boot) -> Chart:
    """The boot's systemd-analyze plot from its evidence folder, or a note saying why there is none."""
    if boot.evidence is None:
        return Chart(boot.name, None, "no evidence folder recorded for this boot")
    relative = f"{boot.evidence}/{BOOT_CHART}"
    if not existing(folder, [relative]):
        return Chart(boot.name, None, f"no boot chart: {relative} is absent (the guest did not record "
                                      "'systemd-analyze plot', or this boot predates that probe)")
    path = folder / relative
    if path.stat().st_size > MAX_CHART_BYTES:
        return Chart(boot.name, None, f"{relative} is larger than {MAX_CHART_BYTES // 2**20} MiB; not embedded")
    data = path.read_bytes()
    if b"<svg" not in data[:4096]:
        first = data.decode("utf-8", "replace").strip().splitlines()[:1]
        return Chart(boot.name, None, f"systemd-analyze plot failed in the guest: {first[0] if first else 'empty'}")
    return Chart(boot.name, data)


def recorded_gallery(publish: StageReport | None) -> tuple[Path, str | None] | None:
    """The local gallery of the build's latest local publish attempt, and a definition it published to."""
    if publish is None:
        return None
    entries = [publish.details, *reversed(publish.details.get("history") or [])]
    for entry in entries:
        target = entry.get("target") if isinstance(entry, dict) else None
        if isinstance(target, str) and target.startswith("local:"):
            versions = entry.get("versions")
            names = sorted(versions) if isinstance(versions, dict) else []
            return Path(target.removeprefix("local:")), names[0] if names else None
    return None


def compare(build: BuildFolder, publish: StageReport | None) -> list[Compared]:
    """The package diffs: against the recipe's previous build, and the latest version of its recorded gallery."""
    out = []
    try:
        before = previous(build)
        out.append(Compared("Against the previous build", diff(side_of_build(before), side_of_build(build)))
                   if before else Compared("Against the previous build", None, "this is the recipe's first build"))
    except HarnessError as exc:
        out.append(Compared("Against the previous build", None, f"not available: {exc}"))
    gallery = recorded_gallery(publish)
    title = "Against the latest local gallery version"
    if gallery is None:
        return [*out, Compared(title, None, "no local gallery recorded (the build was not published to one)")]
    try:
        side = side_of_gallery(gallery[0], build, gallery[1])
        out.append(Compared(f"{title} ({gallery[0]})", diff(side, side_of_build(build))))
    except HarnessError as exc:
        out.append(Compared(f"{title} ({gallery[0]})", None, f"not available: {exc}"))
    return out


def collect(build: BuildFolder, manifest: Manifest, stages: Mapping[str, StageReport]) -> ReportInput:
    """Read what the page shows: boots and their evidence, records with their evidence files, diffs, trend."""
    found = tuple(boots(stages.get("verify")))
    by_name = {b.name: b for b in found}
    logs = {b.name: tuple(existing(build.path, [f"{b.evidence}/{n}" for n in BOOT_LOGS])) if b.evidence else ()
            for b in found}
    checked = tuple(Checked(r, tuple(existing(build.path, record_evidence(r, by_name))))
                    for report in stages.values() for r in report.records)
    publish = stages.get("publish")
    history = publish.details.get("history") if publish is not None else None
    build_ids, points = ready_trend(build)
    return ReportInput(
        manifest=manifest, stages=stages, boots=found, boot_logs=logs,
        charts=tuple(read_chart(build.path, b) for b in found), checked=checked,
        compared=tuple(compare(build, publish)),
        trend_builds=tuple(build_ids), trend_points=tuple(points),
        history=tuple(e for e in history if isinstance(e, dict)) if isinstance(history, list) else (),
        generated=now())


def write(build: BuildFolder, manifest: Manifest, stages: Mapping[str, StageReport]) -> Path | None:
    """Regenerate report.html (temp name, then rename); a failure is logged and the previous report kept."""
    try:
        text = render(collect(build, manifest, stages))
        write_text_atomic(build.path / REPORT, text)
    except Exception as exc:  # a report must never fail the stage that produced the results
        log.warning("report.html of %s not regenerated (the previous one is kept): %s: %s",
                    build.path, type(exc).__name__, exc)
        log.debug("report.html rendering failed", exc_info=True)
        return None
    return build.path / REPORT
