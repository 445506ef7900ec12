"""Results: one record schema for every stage, merged results.json + junit.xml, summary.md.

A stage file (`check.json`, `verify.json`, `publish.json`) holds the records of its last run; the
merged files are regenerated from all stage files after each stage, so re-running one stage never
erases another's results.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.buildfolder import BuildFolder, read_json, write_json_atomic, write_text_atomic

PASSED = "Passed"
WARNING = "Warning"
FAILED = "Failed"
SKIPPED = "Skipped"
RESULTS = (PASSED, WARNING, FAILED, SKIPPED)
STAGES = ("check", "verify", "publish")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Record:
    """One check's outcome; the Marketplace self-test shape plus where and how long."""

    stage: str
    check: str
    result: str
    actual: str = ""
    required: str = ""
    message: str = ""
    duration_s: float = 0.0
    firmware: str | None = None
    platform: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__ if k in data})  # type: ignore[arg-type]


@dataclass
class StageReport:
    """What one stage run produced, written to `<stage>.json`."""

    stage: str
    content_digest: str
    records: list[Record] = field(default_factory=list)
    started: str = field(default_factory=now)
    finished: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.records) and not any(r.result == FAILED for r in self.records)

    def counts(self) -> dict[str, int]:
        return {result: sum(1 for r in self.records if r.result == result) for result in RESULTS}

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "content_digest": self.content_digest,
            "started": self.started,
            "finished": self.finished or now(),
            "passed": self.passed,
            "counts": self.counts(),
            "records": [r.to_json() for r in self.records],
            **self.extra,
        }


def load_stage(build: BuildFolder, stage: str) -> dict[str, Any] | None:
    path = build.stage_file(stage)
    if not path.exists():
        return None
    data: dict[str, Any] = read_json(path)
    return data


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


def stage_passed(build: BuildFolder, stage: str, digest: str, firmware: str | None = None) -> bool:
    """Whether the stage's last run passed for this content digest (and firmware, for verify)."""
    data = load_stage(build, stage)
    if not data or data.get("content_digest") != digest:
        return False
    records = [Record.from_json(r) for r in data.get("records", [])]
    if firmware is not None:
        records = [r for r in records if r.firmware == firmware]
    return bool(records) and not any(r.result == FAILED for r in records)


def merge(build: BuildFolder) -> dict[str, Any]:
    """results.json + junit.xml + summary.md from every stage file present."""
    manifest = build.manifest()
    stages = {s: d for s in STAGES if (d := load_stage(build, s)) is not None}
    records = [r for d in stages.values() for r in d.get("records", [])]
    results = {
        "recipe": manifest.get("recipe"),
        "build_id": manifest.get("build_id"),
        "content_digest": manifest.get("content_digest"),
        "generated": now(),
        "stages": {s: {k: d.get(k) for k in ("passed", "counts", "content_digest", "started", "finished")}
                   for s, d in stages.items()},
        "records": records,
    }
    write_json_atomic(build.path / "results.json", results)
    write_text_atomic(build.path / "junit.xml", junit_xml(manifest, [Record.from_json(r) for r in records]))
    write_text_atomic(build.path / "summary.md", summary_markdown(manifest, stages))
    return results


def _suite_name(record: Record) -> str:
    where = "-".join(x for x in (record.firmware, record.platform) if x)
    return f"{record.stage}.{where}" if where else record.stage


def junit_xml(manifest: dict[str, Any], records: Iterable[Record]) -> str:
    """JUnit XML any CI understands: a suite per stage/boot, a case per check."""
    suites: dict[str, list[Record]] = {}
    for record in records:
        suites.setdefault(_suite_name(record), []).append(record)
    root = ET.Element("testsuites", name=f"harness {manifest.get('recipe')} {manifest.get('build_id')}")
    for name, items in suites.items():
        suite = ET.SubElement(
            root, "testsuite", name=name, tests=str(len(items)),
            failures=str(sum(r.result == FAILED for r in items)),
            skipped=str(sum(r.result == SKIPPED for r in items)),
            time=f"{sum(r.duration_s for r in items):.3f}")
        for record in items:
            case = ET.SubElement(suite, "testcase", classname=f"{manifest.get('recipe')}.{name}",
                                 name=record.check, time=f"{record.duration_s:.3f}")
            detail = f"actual: {record.actual}\nrequired: {record.required}\n{record.message}".strip()
            if record.result == FAILED:
                ET.SubElement(case, "failure", message=record.message or record.check).text = detail
            elif record.result == SKIPPED:
                ET.SubElement(case, "skipped", message=record.message)
            elif record.result == WARNING:
                props = ET.SubElement(case, "properties")
                ET.SubElement(props, "property", name="result", value=WARNING)
                ET.SubElement(case, "system-out").text = detail
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def summary_markdown(manifest: dict[str, Any], stages: dict[str, dict[str, Any]]) -> str:
    """A summary a CI job can post as-is."""
    lines = [
        f"## harness: {manifest.get('recipe')} build `{manifest.get('build_id')}`",
        "",
        f"- kernel `{manifest.get('kernel_version')}`, agent `{manifest.get('agent')}`, "
        f"OS state `{manifest.get('os_state')}`, disk {manifest.get('disk', {}).get('size_mib')} MiB",
        f"- content digest `{manifest.get('content_digest')}`",
        "",
        "| stage | result | passed | warnings | failed | skipped |",
        "|---|---|---|---|---|---|",
    ]
    for name, data in stages.items():
        counts = data.get("counts", {})
        verdict = "✅ passed" if data.get("passed") else "❌ failed"
        lines.append(f"| {name} | {verdict} | {counts.get(PASSED, 0)} | {counts.get(WARNING, 0)} | "
                     f"{counts.get(FAILED, 0)} | {counts.get(SKIPPED, 0)} |")
    failed = [r for d in stages.values() for r in d.get("records", []) if r.get("result") == FAILED]
    if failed:
        lines += ["", "### Failed checks", ""]
        for record in failed:
            where = "/".join(x for x in (record.get("firmware"), record.get("platform")) if x)
            lines.append(f"- **{record['stage']}{'/' + where if where else ''}: {record['check']}**: "
                         f"{record.get('message', '')}")
    extra = stages.get("publish", {})
    if extra.get("version"):
        lines += ["", f"Published as `{extra.get('definition')}` version `{extra.get('version')}` "
                  f"in `{extra.get('target')}`."]
    return "\n".join(lines) + "\n"
