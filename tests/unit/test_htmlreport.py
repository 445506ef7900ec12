"""report.html and the gallery index, the pure parts: SVG geometry, escaping of every text a guest or a recipe
controls, evidence paths that stay inside the build folder, and a rendering error never failing a stage."""

from __future__ import annotations

import json
import logging
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness import cli, htmlreport
from harness.buildfolder import BuildFolder, write_json_atomic
from harness.diffing import Diff
from harness.enums import Stage
from harness.evidence import Boot, boots, existing, record_evidence, safe_relative
from harness.galleryindex import render_index
from harness.htmlreport import ReportInput, read_chart, recorded_gallery, render
from harness.htmlsections import Chart, Checked, Compared
from harness.publish.local import LocalGallery
from harness.publish.model import ImageDefinition, ImageVersion
from harness.report import merge, write_stage
from harness.results import FAILED, PASSED, WARNING, Record, StageReport
from harness.svgcharts import Axis, known, nice_step, segments, timeline_layout, timeline_svg, trend_layout
from harness.trend import TrendPoint, previous, ready_trend
from tests.factories import DIGEST, make_build, make_manifest

EVIL = "<script>alert(1)</script>"
TIMINGS = {"first_serial_s": 2.0, "kernel_s": 10.0, "imds_first_s": 20.0, "goalstate_first_s": 21.0,
           "ready_s": 55.7, "ssh_ready_s": 60.0, "checks_done_s": 80.0}


class Tags(HTMLParser):
    """Every start tag of a page with its attributes, and its text."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def named(self, tag: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag]


# -- SVG geometry --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("largest,ticks,step", [(80.4, 10, 10.0), (80.4, 8, 20.0), (7.0, 10, 1.0), (0.3, 10, 0.05),
                                               (1200.0, 10, 200.0), (55.0, 4, 20.0)])
def test_nice_step_is_one_two_or_five_times_a_power_of_ten(largest: float, ticks: int, step: float) -> None:
    assert nice_step(largest, ticks) == pytest.approx(step)


def test_axis_ends_on_a_whole_step_and_maps_seconds_to_pixels() -> None:
    axis = Axis.fit(100.0, 800.0, 80.4)
    assert (axis.max_s, axis.step_s) == (90.0, 10.0)
    assert axis.ticks() == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert axis.x(0) == 100.0 and axis.x(45.0) == pytest.approx(500.0) and axis.x(90.0) == pytest.approx(900.0)


def test_segments_run_from_qemu_start_through_each_milestone_in_time_order() -> None:
    axis = Axis(0.0, 1000.0, 100.0, 10.0)  # 10 px per second
    found = segments(TIMINGS, axis)
    assert [(s.milestone, s.start_s, s.end_s) for s in found] == [
        ("first_serial_s", 0.0, 2.0), ("kernel_s", 2.0, 10.0), ("imds_first_s", 10.0, 20.0),
        ("ready_s", 20.0, 55.7), ("ssh_ready_s", 55.7, 60.0), ("checks_done_s", 60.0, 80.0)]
    ready = found[3]
    assert ready.x == pytest.approx(200.0) and ready.width == pytest.approx(357.0)
    assert ready.start_label == "first IMDS request"
    assert sum(s.width for s in found) == pytest.approx(800.0)  # contiguous: the bar ends at checks done


def test_missing_and_out_of_order_milestones() -> None:
    axis = Axis(0.0, 100.0, 100.0, 10.0)
    timings = {"first_serial_s": 3.0, "kernel_s": None, "ssh_ready_s": 40.0, "ready_s": 50.0, "bogus_s": 1.0}
    assert known(timings) == [("first_serial_s", 3.0), ("ssh_ready_s", 40.0), ("ready_s", 50.0)]
    assert [(s.milestone, s.start_s, s.end_s) for s in segments(timings, axis)] == [
        ("first_serial_s", 0.0, 3.0), ("ssh_ready_s", 3.0, 40.0), ("ready_s", 40.0, 50.0)]
    assert segments({}, axis) == ()


def test_timeline_puts_every_boot_on_one_axis_one_row_each() -> None:
    layout = timeline_layout([Boot("bios-azure", TIMINGS), Boot("uefi-azure", {**TIMINGS, "checks_done_s": 95.0})])
    assert layout.axis.max_s == 100.0
    bios, uefi = layout.bars
    assert uefi.y - bios.y == 30.0
    assert bios.segments[3].x == uefi.segments[3].x  # same start, same scale: comparable side by side
    assert uefi.segments[-1].x + uefi.segments[-1].width > bios.segments[-1].x + bios.segments[-1].width
    assert [k for k, _, _ in bios.markers] == ["goalstate_first_s"]


def test_timeline_svg_carries_the_recorded_values_and_escapes_names() -> None:
    svg = timeline_svg([Boot("bios-azure", TIMINGS), Boot(f"x{EVIL}", {"ready_s": 12.5})])
    tags = Tags(svg)
    bars = tags.named("g")
    bar = next(a for a in bars if a.get("data-boot") == "bios-azure")
    assert bar["data-ready-s"] == "55.7" and bar["data-first-serial-s"] == "2" and bar["data-checks-done-s"] == "80"
    ready = [a for a in tags.named("rect") if a.get("data-milestone") == "ready_s"]
    assert [(r["data-start-s"], r["data-end-s"]) for r in ready] == [("20", "55.7"), ("0", "12.5")]
    assert not tags.named("script") and f"x{EVIL}" in "".join(tags.text)
    assert "first IMDS request \u2192 Ready: 20.0 s \u2192 55.7 s (35.7 s)" in "".join(tags.text)
    assert timeline_svg([]) == ""


def test_trend_spreads_builds_and_scales_ready_from_zero() -> None:
    points = [TrendPoint("b1", "bios-azure", 50.0), TrendPoint("b2", "bios-azure", 60.0),
              TrendPoint("b3", "bios-azure", 40.0), TrendPoint("b3", "uefi-azure", 70.0),
              TrendPoint("gone", "bios-azure", 99.0)]  # a build outside the window is not drawn
    layout = trend_layout(["b1", "b2", "b3"], points)
    assert layout.xs == (48.0, 336.0, 624.0) and layout.y_max == 80.0
    bios, uefi = layout.series
    assert (bios.boot, [p.build_id for p, _, _ in bios.points]) == ("bios-azure", ["b1", "b2", "b3"])
    assert [x for _, x, _ in uefi.points] == [624.0]
    assert layout.y(0.0) == 146.0 and layout.y(80.0) == 14.0
    assert bios.points[0][2] == pytest.approx(layout.y(50.0)) and bios.color != uefi.color
    single = trend_layout(["only"], [TrendPoint("only", "bios-azure", 30.0)])
    assert single.xs == (336.0,)


# -- evidence paths --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path,expected", [
    ("verify/bios-azure", "verify/bios-azure"), ("check.json", "check.json"), ("../x", None), ("/etc/passwd", None),
    ("a/../../b", None), ("", None), (None, None), (3, None), ("a\\..\\b", None)])
def test_safe_relative(path: object, expected: str | None) -> None:
    assert safe_relative(path) == expected


def test_record_evidence_and_only_existing_files_inside(tmp_path: Path) -> None:
    by_name = {"bios-azure": Boot("bios-azure", {}, "verify/bios-azure")}
    failed = Record("verify", "B4", FAILED, firmware="bios", platform="azure")
    assert record_evidence(failed, by_name) == ["verify/bios-azure/serial.log", "verify/bios-azure/journal.txt"]
    assert record_evidence(Record("check", "A1", WARNING, evidence="check/a1.txt"), by_name) == [
        "check/a1.txt", "check.json"]
    assert record_evidence(Record("verify", "B4", FAILED, firmware="uefi", platform="azure"), by_name) == []
    (tmp_path / "verify" / "bios-azure").mkdir(parents=True)
    (tmp_path / "verify" / "bios-azure" / "serial.log").write_text("x")
    (tmp_path.parent / "outside.txt").write_text("secret")
    os.symlink(tmp_path.parent / "outside.txt", tmp_path / "check.json")
    assert existing(tmp_path, ["verify/bios-azure/serial.log", "verify/bios-azure/journal.txt", "check.json"]) == [
        "verify/bios-azure/serial.log"]


def test_boots_keep_what_is_readable_of_a_damaged_verify_json() -> None:
    report = StageReport(Stage.VERIFY, details={"boots": {
        "bios-azure": {"timings_s": {"ready_s": 50, "kernel_s": "soon", "ssh_ready_s": True}, "evidence": "/etc"},
        "uefi-azure": "not a dict"}})
    bios, uefi = boots(report)
    assert bios.timings_s == {"ready_s": 50.0, "kernel_s": None, "ssh_ready_s": None} and bios.evidence is None
    assert uefi == Boot("uefi-azure")
    assert boots(None) == [] and boots(StageReport(Stage.VERIFY, details={"boots": []})) == []


# -- escaping ------------------------------------------------------------------------------------------------

def test_every_guest_and_recipe_text_is_text_never_markup() -> None:
    manifest = make_manifest(recipe=f"r{EVIL}", kernel_version=EVIL, build_id=f"b{EVIL}",
                             packages=[{"name": f"p{EVIL}", "version": EVIL}])
    record = Record("verify", f"c{EVIL}", FAILED, actual=EVIL, required=EVIL, message=EVIL, firmware=EVIL,
                    platform="azure")
    verify = StageReport(Stage.VERIFY, DIGEST, [record])
    change = Diff(f"a{EVIL}", "b", added={f"n{EVIL}": EVIL}, upgraded={EVIL: (EVIL, EVIL)}, kernel=(EVIL, EVIL))
    data = ReportInput(
        manifest=manifest, stages={"verify": verify}, boots=(Boot(f"boot{EVIL}", {"ready_s": 5.0}, None, EVIL),),
        charts=(Chart(f"boot{EVIL}", None, f"failed: {EVIL}"), Chart("svg", f"<svg>{EVIL}</svg>".encode())),
        checked=(Checked(record, (f"verify/{EVIL}/serial.log",)),), compared=(Compared(EVIL, change),
                                                                              Compared("x", None, EVIL)),
        trend_builds=(f"b{EVIL}",), trend_points=(TrendPoint(f"b{EVIL}", f"boot{EVIL}", 5.0),),
        history=({"time": EVIL, "target": EVIL, "result": EVIL, "versions": {EVIL: EVIL}, "message": EVIL},))
    page = render(data)
    tags = Tags(page)
    assert not tags.named("script")
    assert {t for t, _ in tags.tags} <= {
        "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "dl", "dt", "dd", "section", "p",
        "table", "thead", "tbody", "tr", "th", "td", "div", "svg", "g", "text", "rect", "line", "a",
        "img", "details", "summary", "polyline", "circle"}
    assert [a["src"][:26] for a in tags.named("img")] == ["data:image/svg+xml;base64,"]  # the guest's SVG, inert
    assert [a["href"] for a in tags.named("a")] == ["verify/%3Cscript%3Ealert%281%29%3C/script%3E/serial.log"]
    assert EVIL in "".join(tags.text) and "<script" not in page.replace("&lt;script", "")


def test_the_page_loads_nothing_from_outside() -> None:
    page = render(ReportInput(manifest=make_manifest(), stages={}))
    tags = Tags(page)
    csp = next(a["content"] for a in tags.named("meta") if a.get("http-equiv") == "Content-Security-Policy")
    assert csp.startswith("default-src 'none'") and "script-src" not in csp
    assert not tags.named("link") and not tags.named("script")
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page


# -- the boot chart ------------------------------------------------------------------------------------------

def test_boot_chart_embedded_absent_or_failed(tmp_path: Path) -> None:
    folder = tmp_path / "verify" / "bios-azure"
    folder.mkdir(parents=True)
    boot = Boot("bios-azure", {}, "verify/bios-azure")
    assert "absent" in read_chart(tmp_path, boot).note and read_chart(tmp_path, boot).svg is None
    (folder / "systemd-analyze-plot.svg").write_text("command failed with exit code 1: Bootup is not yet finished\n")
    assert read_chart(tmp_path, boot).note == (
        "systemd-analyze plot failed in the guest: command failed with exit code 1: Bootup is not yet finished")
    (folder / "systemd-analyze-plot.svg").write_text('<?xml version="1.0"?>\n<svg xmlns="x"></svg>\n')
    assert read_chart(tmp_path, boot).svg == b'<?xml version="1.0"?>\n<svg xmlns="x"></svg>\n'
    assert "no evidence folder" in read_chart(tmp_path, Boot("uefi-azure")).note


# -- writing, after every stage ----------------------------------------------------------------------------

def test_merge_writes_report_html_and_a_rendering_error_keeps_the_previous_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    build = make_build(tmp_path)
    write_stage(build, StageReport(Stage.CHECK, DIGEST, [Record("check", "A1", WARNING, message=EVIL)]))
    page = (build.path / "report.html").read_text()
    assert "&lt;script&gt;" in page and 'class="check result-warning"' in page

    def broken(data: ReportInput) -> str:
        raise ZeroDivisionError("a bug in a section")

    monkeypatch.setattr(htmlreport, "render", broken)
    with caplog.at_level(logging.WARNING, logger="harness.htmlreport"):
        write_stage(build, StageReport(Stage.CHECK, DIGEST, [Record("check", "A1", PASSED)]))
    assert (build.path / "report.html").read_text() == page
    assert "report.html of" in caplog.text and "ZeroDivisionError: a bug in a section" in caplog.text
    assert json.loads((build.path / "results.json").read_text())["records"][0]["result"] == PASSED
    assert not [p for p in build.path.iterdir() if p.name.endswith(".tmp")]


def test_previous_build_and_trend_stop_at_this_build(tmp_path: Path) -> None:
    made = [make_build(tmp_path, build_id=f"2026120{i}") for i in range(1, 5)]
    for build, ready in zip(made, (50.0, 51.0, 52.0, 53.0), strict=True):
        write_stage(build, StageReport(Stage.VERIFY, DIGEST, [], details={"boots": {
            "bios-azure": {"timings_s": {"ready_s": ready}}}}))
    assert previous(made[2]) == made[1] and previous(made[0]) is None
    ids, points = ready_trend(made[2], limit=2)
    assert ids == ["20261202", "20261203"] and [p.ready_s for p in points] == [51.0, 52.0]
    (made[3].path / "verify.json").write_text("{broken")
    assert [p.build_id for p in ready_trend(made[3])[1]] == ["20261201", "20261202", "20261203"]


def test_recorded_gallery_is_the_latest_local_target() -> None:
    history = [{"target": "local:/g1", "versions": {"d-gen2": "1", "d-gen1": "1"}}, {"target": "azure:x"}]
    assert recorded_gallery(StageReport(Stage.PUBLISH, details={"target": "azure:x", "history": history})) == (
        Path("/g1"), "d-gen1")
    assert recorded_gallery(StageReport(Stage.PUBLISH, details={"target": "local:/g2"})) == (Path("/g2"), None)
    assert recorded_gallery(None) is None


# -- gallery index -------------------------------------------------------------------------------------------

def make_gallery(root: Path) -> LocalGallery:
    gallery = LocalGallery.at(root / "gallery")
    definition = ImageDefinition("debian-12-gen1", "harness", "debian", "12", "Generalized", "V1",
                                 description=f"d{EVIL}")
    folder = gallery.path / definition.name
    (folder / "2026.1201.0").mkdir(parents=True)
    write_json_atomic(folder / "definition.json", definition.to_json())
    write_json_atomic(folder / "2026.1201.0" / "version.json", ImageVersion(
        "2026.1201.0", DIGEST, "2026-12-01T00:00:00Z", f"debian-12/{EVIL}", EVIL).to_json())
    write_json_atomic(folder / "2026.1201.0" / "results.json", {"stages": {EVIL: {"verdict": EVIL, "passed": False}}})
    (folder / "2026.1201.0" / "report.html").write_text("<html></html>")
    return gallery


def test_gallery_index_escapes_and_links_relative(tmp_path: Path) -> None:
    gallery = make_gallery(tmp_path)
    page = render_index(gallery, gallery.path)
    tags = Tags(page)
    assert not tags.named("script") and f"d{EVIL}" in "".join(tags.text)
    assert [a["href"] for a in tags.named("a")] == ["debian-12-gen1/2026.1201.0/report.html"]
    assert [a["data-flags"] for a in tags.named("tr") if "data-version" in a] == ["latest"]
    assert f"{EVIL} {EVIL} (0 passed, 0 warnings, 0 failed)" in "".join(tags.text)
    assert [a["href"] for a in Tags(render_index(gallery, tmp_path / "x" / "y")).named("a")] == [
        "../../gallery/debian-12-gen1/2026.1201.0/report.html"]


def test_gallery_report_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gallery = make_gallery(tmp_path)
    assert cli.main(["gallery", "report", "--gallery", str(gallery.path)]) == 0
    assert capsys.readouterr().out == f"wrote {gallery.path / 'index.html'} (1 definitions, 1 versions)\n"
    assert (gallery.path / "index.html").read_text().startswith("<!DOCTYPE html>")
    assert cli.main(["gallery", "report", "--gallery", str(tmp_path / "none")]) == 2
    assert "no gallery at" in capsys.readouterr().err
    assert cli.main(["gallery", "report", "--gallery", str(gallery.path), "-o", str(tmp_path / "no" / "i.html")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_a_build_without_results_still_gets_a_report(tmp_path: Path) -> None:
    build: BuildFolder = make_build(tmp_path)
    merge(build)
    text = "".join(Tags((build.path / "report.html").read_text()).text)
    assert "no stage has recorded results yet" in text and "this is the recipe's first build" in text
    assert "no verify boot recorded" in text and "never published" in text
