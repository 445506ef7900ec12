"""A user's own pytest checks, run inside a verify boot (`harness verify --tests DIR`, `[checks] tests`).

The tests run in a separate pytest process with the harness plugin attached to the live boot (the same
`ssh`, `vm`, `azure_platform` and `harness_build` fixtures as `pytest --harness-build`, without a second
boot). Its JUnit report becomes one verify record per test, so a failing user test fails verify and
blocks publish like any built-in check.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

from harness import proc
from harness.errors import CommandTimeoutError
from harness.results import FAILED, PASSED, SKIPPED, Record

TIMEOUT_S = 1800.0
REPORT = "user-tests.xml"
ATTACH = "user-tests-attach.json"
OUTPUT = "user-tests.txt"
# pytest's exit codes that mean "the run itself went wrong" (not: some tests failed).
PYTEST_BROKEN = {2: "interrupted", 3: "internal error", 4: "usage error", 5: "no tests were collected"}


@dataclass(frozen=True)
class Attachment:
    """What the plugin needs to reach a running boot (written to a file the pytest process reads)."""

    build: str
    firmware: str
    platform: str
    ssh_socket: str
    user: str
    private_key: str
    platform_config: str
    events: str
    requests: str
    evidence: str

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> Attachment:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def _records_from_junit(xml_path: Path, where: tuple[str, str], evidence: str) -> list[Record]:
    """One record per test case of a pytest JUnit report."""
    records = []
    tree = ET.parse(xml_path)  # noqa: S314 - written by the pytest process the harness just ran
    for case in tree.getroot().iter("testcase"):
        name = f"user {case.get('classname', '')}::{case.get('name', '')}".replace("..", ".")
        failure = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            result, message = FAILED, (failure.get("message") or failure.text or "failed").strip()
        elif skipped is not None:
            result, message = SKIPPED, (skipped.get("message") or "skipped").strip()
        else:
            result, message = PASSED, ""
        records.append(Record(stage="verify", check=name, result=result, actual=result.value.lower(),
                              required="passed", message=message[:500],
                              duration_s=round(float(case.get("time") or 0), 2), evidence=evidence,
                              firmware=where[0], platform=where[1]))
    return records


def _broken(message: str, where: tuple[str, str], evidence: str) -> Record:
    return Record(stage="verify", check="user tests", result=FAILED, actual="not run", required="the user's tests run",
                  message=message, evidence=evidence, firmware=where[0], platform=where[1])


def _plugin_option() -> list[str]:
    """`-p harness.pytest_plugin` unless the installed package already registers it (entry point pytest11)."""
    from importlib.metadata import entry_points

    if any(ep.value.startswith("harness.pytest_plugin") for ep in entry_points(group="pytest11")):
        return []
    return ["-p", "harness.pytest_plugin"]


def run(paths: tuple[Path, ...], attachment: Attachment, evidence: Path, evidence_rel: str) -> list[Record]:
    """Run the user's tests against the attached boot; every outcome is a record (a broken run included).
    `evidence_rel` is the boot's evidence folder relative to the build folder (records name files there)."""
    where = (attachment.firmware, attachment.platform)
    relative = f"{evidence_rel}/{OUTPUT}"
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        return [_broken(f"user test path not found: {', '.join(missing)}", where, relative)]
    attach_file, report = evidence / ATTACH, evidence / REPORT
    attachment.write(attach_file)
    argv = [sys.executable, "-m", "pytest", *map(str, paths), *_plugin_option(), "-p", "no:cacheprovider",
            "--harness-attach", str(attach_file), f"--junitxml={report}", "-o", "junit_family=xunit1", "-q",
            "--rootdir", str(evidence)]
    try:
        result = proc.run(argv, check=False, timeout_s=TIMEOUT_S, cwd=evidence)
    except CommandTimeoutError as exc:
        return [_broken(f"the user tests did not finish in {TIMEOUT_S:.0f} s: {exc.message}", where, relative)]
    (evidence / OUTPUT).write_text(result.stdout + result.stderr, encoding="utf-8")
    if result.returncode in PYTEST_BROKEN or not report.exists():
        why = PYTEST_BROKEN.get(result.returncode, f"exit code {result.returncode}")
        tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
        return [_broken(f"pytest could not run the user tests ({why}): {' / '.join(tail)}", where, relative)]
    try:
        return _records_from_junit(report, where, f"{evidence_rel}/{REPORT}")
    except ET.ParseError as exc:
        return [_broken(f"the user tests' JUnit report is not readable: {exc}", where, relative)]
