"""The offline audit: every rule of the checklist's offline section that applies, the generalization audit,
declared settings and undeclared deviations, for one build's disk, without booting or mounting it.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import proc
from harness.buildfolder import BuildFolder
from harness.checks import (
    declared,
    offline_agent,
    offline_boot,
    offline_config,
    offline_disk,
    offline_hygiene,
    offline_secure,
)
from harness.checks.declared import Deviation
from harness.checks.image import Image
from harness.checks.rulebase import FAILED, Record, Rule, record
from harness.checks.selftest import selftest_json
from harness.errors import HarnessError
from harness.shellsyntax import parse_assignments

log = logging.getLogger(__name__)

RULES: tuple[Rule, ...] = (*offline_disk.RULES, *offline_boot.RULES, *offline_agent.RULES, *offline_config.RULES,
                           *offline_hygiene.RULES, *offline_secure.RULES)
PREFETCH_STATS = (*offline_agent.PREFETCH_STATS, *offline_config.PREFETCH_STATS, *offline_hygiene.PREFETCH_STATS)
PREFETCH_LISTS = ("/boot", *offline_agent.PREFETCH_LISTS, *offline_config.PREFETCH_LISTS,
                  *offline_hygiene.PREFETCH_LISTS)
DISK_TOOLS = ("sfdisk", "debugfs", "mcopy", "mdir")
SHM = "/dev/shm"


@dataclass
class AuditResult:
    """What `harness check` reports and writes to check.json."""

    records: list[Record]
    declared_settings: list[dict[str, Any]] = field(default_factory=list)
    deviations: list[Deviation] = field(default_factory=list)
    selftest: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def failed(self) -> list[Record]:
        return [r for r in self.records if r.result == FAILED]


def evaluate(rule: Rule, img: Image) -> list[Record]:
    """Run one rule; an image it cannot read is that rule's failure, not the audit's."""
    start = time.monotonic()
    try:
        records = rule(img)
    except HarnessError as exc:
        records = [record(rule.name, FAILED, "not evaluated", "", f"the image could not be read: {exc}")]
    share = round((time.monotonic() - start) / max(1, len(records)), 3)
    for rec in records:
        rec.duration_s = share
    return records


def prefetch(img: Image) -> None:
    """Few debugfs runs for the trees, stats, listings and small files the rules will ask for."""
    kernel = img.manifest.kernel_version
    files = (f"{img.grub_dir}/grub.cfg", f"{img.grub_dir}/i386-pc/lzma_decompress.img", f"/boot/config-{kernel}",
             "/usr/lib/os-release")
    leases = img.family.dhcp_lease_dirs if img.family else ()
    stats = (*PREFETCH_STATS, *offline_disk.SWAP_FILES, *files, *leases)
    lists = (*PREFETCH_LISTS, *(f"/lib/modules/{kernel}/{d}" for _, d in offline_boot.PROVISIONING_FS.values()))
    try:
        img.root.prefetch(stats=stats, lists=lists)
        img.root.texts(files)
    except HarnessError as exc:
        log.debug("prefetch failed (rules will report it): %s", exc)


def settings_and_deviations(img: Image) -> tuple[list[Record], list[dict[str, Any]], list[Deviation]]:
    settings = declared.manifest_settings(img.manifest)
    try:
        records, listed = declared.verify_settings(img, settings)
        deviation_recs, deviations = declared.deviation_records(img, settings)
    except HarnessError as exc:
        failure = record("declared settings", FAILED, "not evaluated", "", f"the image could not be read: {exc}")
        return [failure], [], []
    return records + deviation_recs, listed, deviations


def audit(build: BuildFolder) -> AuditResult:
    """Audit a build's disk (raw or VHD); the disk is only read."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="harness-check-", dir=scratch_root()) as scratch:
        img = Image(build, Path(scratch))
        proc.require(*DISK_TOOLS, img.family.initramfs_tool if img.family else "lsinitramfs")
        prefetch(img)
        records = [rec for rule in RULES for rec in evaluate(rule, img)]
        setting_records, listed, deviations = settings_and_deviations(img)
        records += setting_records
        selftest = selftest_json(records, img.manifest, _os_release(img), _kernel(img))
    return AuditResult(records, listed, deviations, selftest, round(time.monotonic() - start, 3))


def scratch_root() -> str | None:
    """tmpfs when there is one: the dump is a few thousand small files (1 s on a busy disk, 50 ms in memory)."""
    shm = Path(SHM)
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def _os_release(img: Image) -> dict[str, str]:
    try:
        return parse_assignments(img.text("/etc/os-release") or img.text("/usr/lib/os-release") or "")
    except HarnessError:
        return {}


def _kernel(img: Image) -> str:
    try:
        return img.kernel_version
    except HarnessError:
        return img.manifest.kernel_version
