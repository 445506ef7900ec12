"""Merged results of a build folder: results.json, junit.xml, summary.md and report.html, regenerated from every
stage file after each stage (re-running one stage never erases another's results)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from harness import htmlreport
from harness.buildfolder import BuildFolder, write_json_atomic, write_text_atomic
from harness.enums import Result
from harness.evidence import MILESTONES, Boot, boots, record_evidence
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
    """results.json + junit.xml + summary.md + report.html from every stage file present (report.html is best
    effort: a rendering error is logged and the previous page kept)."""
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
    htmlreport.write(build, manifest, stages)
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


def md_text(text: object, limit: int = 400) -> str:
    """A guest's or recipe's text on one Markdown line: whitespace collapsed, no table break, no HTML, bounded."""
    flat = re.sub(r"\s+", " ", str(text)).strip()
    if len(flat) > limit:
        flat = flat[:limit - 1] + "\u2026"
    return flat.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def md_code(path: str) -> str:
    return "`" + path.replace("`", "'") + "`"


def _reason(record: Record) -> str:
    if record.message:
        return md_text(record.message)
    return md_text(f"actual {record.actual or '-'}, required {record.required or '-'}")


def _record_lines(title: str, records: list[Record], by_name: Mapping[str, Boot]) -> list[str]:
    if not records:
        return []
    lines = ["", f"### {title}", ""]
    for record in records:
        where = f"/{record.where}" if record.where else ""
        paths = ", ".join(md_code(p) for p in record_evidence(record, by_name))
        lines.append(f"- **{md_text(record.stage + where)}: {md_text(record.check)}**: {_reason(record)}"
                     + (f" (evidence: {paths})" if paths else ""))
    return lines


SUMMARY_MILESTONES = [(k, label) for k, label in MILESTONES if k != "goalstate_first_s"]


def _timing_lines(found: list[Boot]) -> list[str]:
    if not found:
        return []
    lines = ["", "### Boot timings (seconds from QEMU's start)", "",
             "| boot | " + " | ".join(label for _, label in SUMMARY_MILESTONES) + " | evidence |",
             "|---|" + "---|" * (len(SUMMARY_MILESTONES) + 1)]
    for boot in found:
        values = [f"{v:.1f}" if (v := boot.timings_s.get(k)) is not None else "-" for k, _ in SUMMARY_MILESTONES]
        evidence = md_code(boot.evidence + "/") if boot.evidence else "-"
        lines.append(f"| {md_text(boot.name)} | " + " | ".join(values) + f" | {evidence} |")
    return lines


def _history_lines(publish: StageReport | None) -> list[str]:
    history = publish.details.get("history") if publish is not None else None
    if not isinstance(history, list) or not history:
        return []
    lines = ["", "### Publish history", ""]
    for entry in (e for e in history if isinstance(e, dict)):
        versions = entry.get("versions")
        made = ", ".join(f"{k} {v}" for k, v in versions.items()) if isinstance(versions, dict) else ""
        text = f"{entry.get('time', '?')} {entry.get('target', '?')}: {entry.get('result', '?')}"
        text += f", {made}" if made else ""
        text += f"; {entry.get('message')}" if entry.get("message") else ""
        lines.append(f"- {md_text(text)}")
    return lines


def summary_markdown(manifest: Manifest, stages: dict[str, StageReport]) -> str:
    """A summary a CI job can post as-is: stages, every failed and warning check with its reason and evidence,
    boot timings, the publish history."""
    lines = [
        f"## harness: {md_text(manifest.recipe)} build `{manifest.build_id}`",
        "",
        f"- kernel `{manifest.kernel_version}`, agent `{manifest.agent}`, "
        f"OS state `{manifest.os_state}`, disk {manifest.disk.size_mib} MiB",
        f"- content digest `{manifest.content_digest}`",
        f"- full report: `{htmlreport.REPORT}` in the build folder (paths below are relative to it)",
        "",
        "| stage | result | passed | warnings | failed | skipped |",
        "|---|---|---|---|---|---|",
    ]
    for name, report in stages.items():
        counts = report.counts()
        verdict = "✅ passed" if report.passed else "❌ failed"
        lines.append(f"| {name} | {verdict} | {counts['Passed']} | {counts['Warning']} | "
                     f"{counts['Failed']} | {counts['Skipped']} |")
    found = boots(stages.get("verify"))
    by_name = {b.name: b for b in found}
    records = [r for report in stages.values() for r in report.records]
    lines += _record_lines("Failed checks", [r for r in records if r.result == Result.FAILED], by_name)
    lines += _record_lines("Warnings", [r for r in records if r.result == Result.WARNING], by_name)
    lines += _timing_lines(found)
    publish = stages.get("publish")
    lines += _history_lines(publish)
    if publish is not None and publish.details.get("version"):
        lines += ["", f"Published as `{publish.details.get('definition')}` version `{publish.details.get('version')}` "
                  f"in `{publish.details.get('target')}`."]
    return "\n".join(lines) + "\n"
