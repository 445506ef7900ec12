"""Merged results of a build folder: results.json, junit.xml and summary.md, regenerated from every stage file
after each stage (re-running one stage never erases another's results)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from typing import Any

from harness.buildfolder import BuildFolder, write_json_atomic, write_text_atomic
from harness.enums import Result
from harness.manifest import Manifest
from harness.results import RECORDED_STAGES, Record, StageReport, load_stage, now


def write_stage(build: BuildFolder, report: StageReport,
                amend: Callable[[BuildFolder, StageReport], None] | None = None) -> dict[str, Any]:
    """Write `<stage>.json`, then regenerate results.json, junit.xml and summary.md.

    Under the folder's lock, so concurrent stages (or two verify runs) never lose each other's
    results; `amend` runs under the same lock, to fold in what the previous file holds.
    """
    with build.locked():
        if amend is not None:
            amend(build, report)
        data = report.to_json()
        write_json_atomic(build.stage_file(report.stage), data)
        merge(build)
    return data


def merge(build: BuildFolder) -> dict[str, Any]:
    """results.json + junit.xml + summary.md from every stage file present."""
    manifest = build.manifest()
    stages = {str(s): r for s in RECORDED_STAGES if (r := load_stage(build, s)) is not None}
    records = [r for report in stages.values() for r in report.records]
    results = {
        "recipe": manifest.recipe,
        "build_id": manifest.build_id,
        "content_digest": manifest.content_digest,
        "generated": now(),
        "stages": {name: {"passed": r.passed, "verdict": r.result.value, "counts": r.counts(),
                          "content_digest": r.content_digest, "started": r.started, "finished": r.finished}
                   for name, r in stages.items()},
        "records": [r.to_json() for r in records],
    }
    write_json_atomic(build.path / "results.json", results)
    write_text_atomic(build.path / "junit.xml", junit_xml(manifest, records))
    write_text_atomic(build.path / "summary.md", summary_markdown(manifest, stages))
    return results


def _suite_name(record: Record) -> str:
    return f"{record.stage}.{record.where}" if record.where else record.stage


def junit_xml(manifest: Manifest, records: Iterable[Record]) -> str:
    """JUnit XML any CI understands: a suite per stage/boot, a case per check."""
    suites: dict[str, list[Record]] = {}
    for record in records:
        suites.setdefault(_suite_name(record), []).append(record)
    root = ET.Element("testsuites", name=f"harness {manifest.recipe} {manifest.build_id}")
    for name, items in suites.items():
        suite = ET.SubElement(
            root, "testsuite", name=name, tests=str(len(items)),
            failures=str(sum(r.result == Result.FAILED for r in items)),
            skipped=str(sum(r.result == Result.SKIPPED for r in items)),
            time=f"{sum(r.duration_s for r in items):.3f}")
        for record in items:
            case = ET.SubElement(suite, "testcase", classname=f"{manifest.recipe}.{name}",
                                 name=record.check, time=f"{record.duration_s:.3f}")
            detail = f"actual: {record.actual}\nrequired: {record.required}\n{record.message}".strip()
            if record.result == Result.FAILED:
                ET.SubElement(case, "failure", message=record.message or record.check).text = detail
            elif record.result == Result.SKIPPED:
                ET.SubElement(case, "skipped", message=record.message)
            elif record.result == Result.WARNING:
                props = ET.SubElement(case, "properties")
                ET.SubElement(props, "property", name="result", value=Result.WARNING.value)
                ET.SubElement(case, "system-out").text = detail
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def summary_markdown(manifest: Manifest, stages: dict[str, StageReport]) -> str:
    """A summary a CI job can post as-is."""
    lines = [
        f"## harness: {manifest.recipe} build `{manifest.build_id}`",
        "",
        f"- kernel `{manifest.kernel_version}`, agent `{manifest.agent}`, "
        f"OS state `{manifest.os_state}`, disk {manifest.disk.size_mib} MiB",
        f"- content digest `{manifest.content_digest}`",
        "",
        "| stage | result | passed | warnings | failed | skipped |",
        "|---|---|---|---|---|---|",
    ]
    for name, report in stages.items():
        counts = report.counts()
        verdict = "✅ passed" if report.passed else "❌ failed"
        lines.append(f"| {name} | {verdict} | {counts['Passed']} | {counts['Warning']} | "
                     f"{counts['Failed']} | {counts['Skipped']} |")
    failed = [r for report in stages.values() for r in report.failed_records()]
    if failed:
        lines += ["", "### Failed checks", ""]
        for record in failed:
            where = f"/{record.where}" if record.where else ""
            lines.append(f"- **{record.stage}{where}: {record.check}**: {record.message}")
    publish = stages.get("publish")
    if publish is not None and publish.details.get("version"):
        lines += ["", f"Published as `{publish.details.get('definition')}` version `{publish.details.get('version')}` "
                  f"in `{publish.details.get('target')}`."]
    return "\n".join(lines) + "\n"
