"""The audit in the Azure Marketplace self-test's result shape (image-checks section 4), so the publish gate
speaks a vocabulary people already know. Records with a self-test counterpart take its name and id.
"""

from __future__ import annotations

from typing import Any

from harness.manifest import Manifest
from harness.results import FAILED, SKIPPED, Record

# record name (or its prefix before ' (') -> (TestID, TestCaseName)
SELFTEST_NAMES = {
    "D4 shell histories empty": ("48", "Bash History"),
    "A16 waagent version": ("39", "Linux Agent Version"),
    "A9 kernel command line": ("40", "Required Kernel Parameters"),
    "A5 no swap": ("41", "Swap Partition on OS Disk"),
    "A4 root partition": ("42", "Root Partition on OS Disk"),
    "A16 openssl version": ("44", "OpenSSL Version"),
    "A16 python version": ("45", "Python Version"),
    "A15 ClientAliveInterval": ("46", "Client Alive Interval"),
    "A16 architecture": ("49", "OS Architecture"),
}





def selftest_entry(rec: Record) -> dict[str, str]:
    base, _, variant = rec.check.partition(" (")
    test_id, name = SELFTEST_NAMES.get(rec.check) or SELFTEST_NAMES.get(base) or ("", rec.check)
    if variant and name != rec.check:
        name = f"{name} ({variant}"
    entry = {"TestCaseName": name, "Description": rec.message, "Result": rec.result,
             "ActualValue": rec.actual, "RequiredValue": rec.required}
    return {"TestID": test_id, **entry} if test_id else entry


def selftest_json(records: list[Record], manifest: Manifest, os_release: dict[str, str],
                  kernel_version: str) -> dict[str, Any]:
    """SchemaVersion, OSName, KernelVersion, TestResult, Tests[...] as the self-test API returns them."""
    tests = [selftest_entry(r) for r in records if r.result != SKIPPED]
    return {
        "SchemaVersion": 1,
        "AppCertificationCategory": "Microsoft Single VM Certification",
        "OSName": os_release.get("NAME", manifest.recipe),
        "OSDistro": os_release.get("PRETTY_NAME", manifest.recipe),
        "KernelVersion": kernel_version,
        "OSVersion": os_release.get("VERSION_ID", manifest.release),
        "TestResult": "Fail" if any(r.result == FAILED for r in records) else "Pass",
        "Tests": tests,
    }
