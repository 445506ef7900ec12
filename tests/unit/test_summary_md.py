"""summary.md for CI: the stage table, every failed and warning check with its reason and evidence, boot timings
per configuration, the publish history; guest text cannot break the Markdown or inject HTML."""

from __future__ import annotations

from pathlib import Path

from harness.enums import Stage, Verdict
from harness.report import md_text, summary_markdown, write_stage
from harness.results import FAILED, PASSED, SKIPPED, WARNING, Record, StageReport
from tests.factories import DIGEST, make_build, make_manifest

BOOTS = {
    "bios-azure": {"evidence": "verify/bios-azure", "timings_s": {
        "first_serial_s": 1.4, "kernel_s": 9.8, "imds_first_s": 24.2, "goalstate_first_s": 25.0, "ready_s": 55.7,
        "ssh_ready_s": 58.3, "checks_done_s": 71.9}},
    "uefi-nocloud": {"evidence": "verify/uefi-nocloud", "timings_s": {
        "first_serial_s": 3.0, "kernel_s": 14.0, "imds_first_s": None, "ready_s": None, "ssh_ready_s": 40.0,
        "checks_done_s": 52.5}},
}


def stages() -> dict[str, StageReport]:
    check = StageReport(Stage.CHECK, DIGEST, [
        Record("check", "A1 partition table", PASSED),
        Record("check", "D3 undeclared deviation", WARNING, message="/etc/ssh/sshd_config differs | <b>x</b>\nline 2"),
        Record("check", "E3 swap", SKIPPED, message="no swap")])
    verify = StageReport(Stage.VERIFY, DIGEST, [
        Record("verify", "B4 failed units", FAILED, message="motd-news.service failed", firmware="bios",
               platform="azure"),
        Record("verify", "boot to Ready time", WARNING, actual="63.2 s (tcg)", required="<= 60 s", firmware="bios",
               platform="azure"),
        Record("verify", "C1 provisioning", PASSED, firmware="uefi", platform="nocloud")],
        details={"boots": BOOTS})
    history = [
        {"time": "2026-12-03T10:00:00Z", "target": "local:/srv/gallery", "result": "failed", "versions": {},
         "message": "refusing to publish an unverified build: verify has not passed on bios (V1)"},
        {"time": "2026-12-03T11:00:00Z", "target": "local:/srv/gallery", "result": "passed",
         "versions": {"debian-12-gen1": "2026.1203.0", "debian-12-gen2": "2026.1203.0"}, "message": ""},
        {"time": "2026-12-03T12:00:00Z", "target": "local:/srv/gallery", "result": "no-op",
         "versions": {"debian-12-gen1": "2026.1203.0"}}]
    publish = StageReport(Stage.PUBLISH, DIGEST, [Record("publish", "publish to debian-12-gen1", PASSED)],
                          verdict=Verdict.NO_OP, details={"target": "local:/srv/gallery", "version": "2026.1203.0",
                                                          "definition": "debian-12-gen1", "history": history})
    return {"check": check, "verify": verify, "publish": publish}


def section(text: str, title: str) -> list[str]:
    """The lines of one ### section (without its title and blank lines)."""
    lines = text.splitlines()
    start = lines.index(f"### {title}") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("#")), len(lines))
    return [line for line in lines[start:end] if line and not line.startswith("Published as")]


def test_stage_table_failed_and_warning_checks_with_reasons_and_evidence() -> None:
    text = summary_markdown(make_manifest(), stages())
    assert "| check | ✅ passed | 1 | 1 | 0 | 1 |" in text
    assert "| verify | ❌ failed | 1 | 1 | 1 | 0 |" in text
    assert "| publish | ✅ passed | 1 | 0 | 0 | 0 |" in text
    assert section(text, "Failed checks") == [
        "- **verify/bios-azure: B4 failed units**: motd-news.service failed (evidence: "
        "`verify/bios-azure/serial.log`, `verify/bios-azure/journal.txt`)"]
    assert section(text, "Warnings") == [
        "- **check: D3 undeclared deviation**: /etc/ssh/sshd_config differs \\| &lt;b&gt;x&lt;/b&gt; line 2 "
        "(evidence: `check.json`)",
        "- **verify/bios-azure: boot to Ready time**: actual 63.2 s (tcg), required &lt;= 60 s (evidence: "
        "`verify/bios-azure/serial.log`, `verify/bios-azure/journal.txt`)"]


def test_boot_timings_per_configuration() -> None:
    text = summary_markdown(make_manifest(), stages())
    assert section(text, "Boot timings (seconds from QEMU's start)") == [
        "| boot | first console byte | kernel | first IMDS request | Ready | SSH | checks done | evidence |",
        "|---|---|---|---|---|---|---|---|",
        "| bios-azure | 1.4 | 9.8 | 24.2 | 55.7 | 58.3 | 71.9 | `verify/bios-azure/` |",
        "| uefi-nocloud | 3.0 | 14.0 | - | - | 40.0 | 52.5 | `verify/uefi-nocloud/` |"]


def test_publish_history_one_line_per_attempt() -> None:
    text = summary_markdown(make_manifest(), stages())
    assert section(text, "Publish history") == [
        "- 2026-12-03T10:00:00Z local:/srv/gallery: failed; refusing to publish an unverified build: verify has not "
        "passed on bios (V1)",
        "- 2026-12-03T11:00:00Z local:/srv/gallery: passed, debian-12-gen1 2026.1203.0, debian-12-gen2 2026.1203.0",
        "- 2026-12-03T12:00:00Z local:/srv/gallery: no-op, debian-12-gen1 2026.1203.0"]
    assert text.endswith("Published as `debian-12-gen1` version `2026.1203.0` in `local:/srv/gallery`.\n")


def test_nothing_to_report_leaves_the_sections_out() -> None:
    text = summary_markdown(make_manifest(), {"check": StageReport(Stage.CHECK, DIGEST, [
        Record("check", "A1", PASSED)])})
    assert "### " not in text and "| check | ✅ passed | 1 | 0 | 0 | 0 |" in text


def test_md_text_keeps_guest_text_on_one_harmless_line() -> None:
    assert md_text("a | b\n\n<script>x</script>\\") == "a \\| b &lt;script&gt;x&lt;/script&gt;\\\\"
    assert md_text("x" * 500, limit=10) == "x" * 9 + "\u2026"


def test_summary_written_after_every_stage(tmp_path: Path) -> None:
    build = make_build(tmp_path)
    for report in stages().values():
        write_stage(build, report)
    text = (build.path / "summary.md").read_text()
    assert "### Failed checks" in text and "### Warnings" in text and "### Publish history" in text
    assert "`report.html`" in text
