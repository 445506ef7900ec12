"""report.html and the gallery's index.html rendered by a real headless browser (Debian's chromium): the DOM it
builds (timeline bars with their recorded values, warning rows, the embedded boot chart, relative links that
resolve, guest text shown as text) and a screenshot kept as a test artifact.

The build folders are fake (no VM is booted): manifests, stage files written through harness.report like the
real stages, evidence folders with logs and a systemd-analyze plot, and a hand-made local gallery.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness import cli, proc
from harness.buildfolder import BuildFolder, write_json_atomic
from harness.enums import Stage, Verdict
from harness.publish.model import ImageDefinition, ImageVersion
from harness.report import write_stage
from harness.results import FAILED, PASSED, SKIPPED, WARNING, Record, StageReport
from tests.factories import DIGEST, make_build

pytestmark = pytest.mark.chromium

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
SCRIPT_MESSAGE = "<script>alert('from the guest')</script> & more"
IMG_MESSAGE = '<img src="http://example.invalid/x.png" onerror="alert(1)">'
TIMINGS = {
    "bios-azure": {"first_serial_s": 1.4, "kernel_s": 9.8, "imds_first_s": 24.2, "goalstate_first_s": 25.0,
                   "ready_s": 55.7, "ssh_ready_s": 58.3, "checks_done_s": 71.9},
    "uefi-azure": {"first_serial_s": 3.1, "kernel_s": 14.6, "imds_first_s": 31.0, "goalstate_first_s": 31.9,
                   "ready_s": 63.2, "ssh_ready_s": 66.0, "checks_done_s": 80.4},
}
PLOT = """<?xml version="1.0" standalone="no"?>
<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">
<svg width="900px" height="260px" version="1.1" xmlns="http://www.w3.org/2000/svg">
<!-- This file is a systemd-analyze SVG file. -->
<defs><style type="text/css"><![CDATA[
 rect.activating { fill: rgb(255,0,0); fill-opacity: 0.7; } rect.active { fill: rgb(200,150,150); }
 rect.kernel { fill: rgb(150,150,150); } text { font-family: Verdana, Helvetica; font-size: 12px; }
]]></style></defs>
<rect x="0" y="0" width="900" height="260" fill="white"/>
<text x="20" y="30">Startup finished in 9.8s (kernel) + 45.9s (userspace) = 55.7s</text>
<g transform="translate(20,50)">
<rect class="kernel" x="0" y="0" width="160" height="18"/><text x="165" y="14">kernel</text>
<rect class="active" x="160" y="24" width="300" height="18"/><text x="465" y="38">cloud-init-local.service</text>
<rect class="activating" x="460" y="48" width="340" height="18"/><text x="805" y="62">cloud-init.service</text>
</g>
<script>document.title = 'guest script ran'</script>
</svg>
"""


# -- a DOM as the browser serialised it -------------------------------------------------------------------------

@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.walk()

    def find_all(self, tag: str, **wanted: str) -> list[Node]:
        """Elements of a tag whose attributes hold these values (class matches one of the classes)."""
        def matches(node: Node) -> bool:
            for name, value in wanted.items():
                key = name.rstrip("_").replace("_", "-")
                have = node.attrs.get(key)
                if have is None or (value not in have.split() if key == "class" else have != value):
                    return False
            return True
        return [n for n in self.walk() if n.tag == tag and matches(n)]

    def one(self, tag: str, **wanted: str) -> Node:
        found = self.find_all(tag, **wanted)
        assert len(found) == 1, (tag, wanted, len(found))
        return found[0]


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(dom: str) -> Node:
    builder = _Builder()
    builder.feed(dom)
    builder.close()
    return builder.root


# -- the browser ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's chromium (scripts/setup.sh installs it); missing: skipped here, a failure under CI=true."""
    if CHROMIUM.is_file():
        return CHROMIUM
    why = f"{CHROMIUM} is missing (apt-get install --no-install-recommends chromium, or run `make setup`)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and this chromium test cannot run: {why}", pytrace=False)
    pytest.skip(f"chromium: {why}")


def browse(chromium: Path, page: Path, workdir: Path, *options: str) -> str:
    """Run headless chromium on a file:// page with a private profile and no background networking."""
    profile = workdir / f"profile-{len(list(workdir.glob('profile-*')))}"
    argv = [str(chromium), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
            *options, page.as_uri()]
    return proc.run(argv, timeout_s=180, env={**os.environ, "HOME": str(workdir)}).stdout


def dump_dom(chromium: Path, page: Path, workdir: Path) -> Node:
    return parse(browse(chromium, page, workdir, "--dump-dom"))


def screenshot(chromium: Path, page: Path, workdir: Path, keep_as: str) -> Path:
    """A 1280x2000 PNG of the page under the test's tmp folder; with HARNESS_KEEP_ARTIFACTS set, also copied to
    tests/artifacts/<keep_as> (a folder named after the test)."""
    shot = workdir / Path(keep_as).name
    browse(chromium, page, workdir, f"--screenshot={shot}", "--window-size=1280,2000", "--hide-scrollbars")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("HARNESS_KEEP_ARTIFACTS"):
        kept = ARTIFACTS / keep_as
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, kept)
    return shot


# -- fake builds and a hand-made gallery ---------------------------------------------------------------------

def packages(n: int, bump: int) -> list[dict[str, str]]:
    """n packages; every 10th one's version depends on bump (so consecutive builds differ)."""
    return [{"name": f"pkg{i:03d}", "version": f"1.{bump if i % 10 == 0 else 0}-1", "arch": "amd64"}
            for i in range(n)]


def verify_report(digest: str, timings: dict[str, dict[str, float]], records: list[Record]) -> StageReport:
    boots = {name: {"firmware": name.split("-")[0], "platform": "azure", "accel": "tcg", "timings_s": t,
                    "evidence": f"verify/{name}", "passed": True} for name, t in timings.items()}
    return StageReport(Stage.VERIFY, digest, records, details={"accel": "tcg", "boots": boots})


def older_build(root: Path, build_id: str, bump: int, ready: tuple[float, float]) -> BuildFolder:
    digest = f"sha256-sparse4m:{bump:064x}"
    build = make_build(root, build_id=build_id, packages=packages(40, bump), kernel_version=f"6.1.0-{20 + bump}-cloud",
                       content_digest=digest)
    write_stage(build, StageReport(Stage.CHECK, digest, [Record("check", "A1 partition table", PASSED)]))
    timings = {name: {**t, "ready_s": r} for (name, t), r in zip(TIMINGS.items(), ready, strict=True)}
    records = [Record("verify", "C1 provisioning", PASSED, firmware=n.split("-")[0], platform="azure")
               for n in timings]
    write_stage(build, verify_report(digest, timings, records))
    return build


def evidence(build: BuildFolder, with_chart: bool) -> None:
    for name in TIMINGS:
        folder = build.path / "verify" / name
        folder.mkdir(parents=True)
        (folder / "serial.log").write_text(f"SeaBIOS\nLinux version 6.1.0\n{name} login:\n")
        (folder / "journal.txt").write_text("-- journal begins --\n")
        if with_chart and name == "bios-azure":
            (folder / "systemd-analyze-plot.svg").write_text(PLOT)


def current_build(root: Path, gallery: Path) -> BuildFolder:
    pkgs = [*packages(40, 3)[1:], {"name": "newpkg", "version": "2.0-1", "arch": "amd64"}]
    build = make_build(root, build_id="20261203-000000-cccccc", packages=pkgs, kernel_version="6.1.0-23-cloud",
                       content_digest=DIGEST)
    evidence(build, with_chart=True)
    write_stage(build, StageReport(Stage.CHECK, DIGEST, [
        Record("check", "A1 partition table", PASSED, actual="GPT, hybrid", required="GPT"),
        Record("check", "D3 undeclared deviation", WARNING, actual="/etc/ssh/sshd_config", message=SCRIPT_MESSAGE),
        Record("check", "E3 swap", SKIPPED, message="no swap partition")]))
    write_stage(build, verify_report(DIGEST, TIMINGS, [
        Record("verify", "C1 provisioning", PASSED, firmware="bios", platform="azure"),
        Record("verify", "B4 failed units", FAILED, actual="<b>motd-news.service</b>", required="none",
               message=IMG_MESSAGE, firmware="bios", platform="azure"),
        Record("verify", "C1 provisioning", PASSED, firmware="uefi", platform="azure"),
        Record("verify", "boot to Ready time", WARNING, actual="63.2 s (tcg)", required="<= 60 s",
               firmware="uefi", platform="azure")]))
    history = [
        {"time": "2026-12-03T10:00:00Z", "target": f"local:{gallery}", "content_digest": DIGEST, "result": "failed",
         "versions": {}, "message": "refusing to publish an unverified build"},
        {"time": "2026-12-03T11:00:00Z", "target": f"local:{gallery}", "content_digest": DIGEST, "result": "passed",
         "versions": {"debian-12-gen1": "2026.1203.0"}, "message": ""}]
    write_stage(build, StageReport(Stage.PUBLISH, DIGEST, [Record("publish", "publish to debian-12-gen1", PASSED,
                                                                  firmware="bios")],
                                   verdict=Verdict.PASSED, details={"target": f"local:{gallery}",
                                                                    "versions": {"debian-12-gen1": "2026.1203.0"},
                                                                    "history": history}))
    return build


def gallery_version(gallery: Path, definition: str, source: BuildFolder, version: str, **flags: Any) -> Path:
    """A version folder as harness.publish.local writes it (minus the disk), report.html included."""
    folder = gallery / definition / version
    folder.mkdir(parents=True)
    manifest = source.manifest()
    write_json_atomic(folder / "version.json", ImageVersion(
        version=version, content_digest=manifest.content_digest, published="2026-12-01T00:00:00Z",
        source_build=f"{manifest.recipe}/{manifest.build_id}", build_id=manifest.build_id, recipe=manifest.recipe,
        **flags).to_json())
    for name in ("manifest.json", "results.json", "check.json", "verify.json", "report.html"):
        if (source.path / name).exists():
            shutil.copyfile(source.path / name, folder / name)
    return folder


def make_gallery(gallery: Path, first: BuildFolder, second: BuildFolder) -> None:
    gallery.mkdir(parents=True)
    write_json_atomic(gallery / "gallery.json", {"schema": 1, "name": gallery.name, "kind": "local"})
    definition = ImageDefinition("debian-12-gen1", "harness", "debian", "12", "Generalized", "V1",
                                 description="Debian 12 <b>for Azure</b>")
    (gallery / definition.name).mkdir()
    write_json_atomic(gallery / definition.name / "definition.json", definition.to_json())
    gallery_version(gallery, definition.name, first, "2026.1201.0", end_of_life="2026-12-01")
    gallery_version(gallery, definition.name, second, "2026.1202.0")
    no_report = gallery_version(gallery, definition.name, first, "2026.1202.1", exclude_from_latest=True)
    (no_report / "report.html").unlink()


@pytest.fixture
def scenario(tmp_path: Path) -> dict[str, Any]:
    root, gallery = tmp_path / "builds", tmp_path / "gallery"
    first = older_build(root, "20261201-000000-aaaaaa", 1, (50.2, 60.1))
    second = older_build(root, "20261202-000000-bbbbbb", 2, (52.4, 58.8))
    make_gallery(gallery, first, second)
    build = current_build(root, gallery)
    return {"build": build, "gallery": gallery, "first": first, "second": second, "work": tmp_path / "browser"}


# -- the tests ----------------------------------------------------------------------------------------------

def assert_self_contained(dom: Node) -> None:
    """Nothing is loaded from anywhere: no script, no stylesheet link, no URL with a scheme but data:."""
    assert not dom.find_all("script") and not dom.find_all("link") and not dom.find_all("iframe")
    for node in dom.walk():
        for name in ("src", "href", "xlink:href"):
            value = node.attrs.get(name)
            if value is not None:
                scheme = urllib.parse.urlsplit(value).scheme
                assert scheme in ("", "data"), (node.tag, value)
                assert not value.startswith(("/", "//")), value


def assert_links_resolve(dom: Node, page: Path) -> list[str]:
    hrefs = [a.attrs["href"] for a in dom.find_all("a")]
    for href in hrefs:
        target = (page.parent / urllib.parse.unquote(href)).resolve()
        assert target.is_file(), href
    return hrefs


def test_build_report_in_a_browser(chromium: Path, scenario: dict[str, Any], request: pytest.FixtureRequest) -> None:
    build: BuildFolder = scenario["build"]
    page = build.path / "report.html"
    work: Path = scenario["work"]
    work.mkdir()
    dom = dump_dom(chromium, page, work)
    assert_self_contained(dom)

    bars = {g.attrs["data-boot"]: g for g in dom.find_all("g", class_="boot-bar")}
    assert set(bars) == {"bios-azure", "uefi-azure"}
    for name, timings in TIMINGS.items():
        for key, value in timings.items():
            assert bars[name].attrs["data-" + key.replace("_", "-")] == f"{value:g}"
        segments = bars[name].find_all("rect", class_="segment")
        assert [s.attrs["data-milestone"] for s in segments] == [
            "first_serial_s", "kernel_s", "imds_first_s", "ready_s", "ssh_ready_s", "checks_done_s"]
        ready = bars[name].one("rect", data_milestone="ready_s")
        assert ready.attrs["data-end-s"] == f"{timings['ready_s']:g}" and "Ready" in ready.one("title").text()
        assert float(ready.attrs["width"]) > 0
    assert bars["bios-azure"].attrs["data-ready-s"] == "55.7"

    warnings = dom.find_all("tr", class_="result-warning")
    assert {r.attrs["data-stage"] for r in warnings} == {"check", "verify"}
    check_warning = next(r for r in warnings if r.attrs["data-stage"] == "check")
    assert check_warning.one("td", class_="message").text() == SCRIPT_MESSAGE  # text, never markup
    assert [a.attrs["href"] for a in check_warning.find_all("a")] == ["check.json"]
    failed = dom.one("tr", class_="result-failed")
    assert failed.one("td", class_="message").text() == IMG_MESSAGE
    assert not failed.find_all("img") and not failed.find_all("b")
    assert [a.attrs["href"] for a in failed.find_all("a")] == ["verify/bios-azure/serial.log",
                                                               "verify/bios-azure/journal.txt"]
    rows = dom.one("table", class_="checks").find_all("tr", class_="check")
    assert [r.attrs["data-result"] for r in rows][:3] == [FAILED, WARNING, WARNING]

    chart = dom.one("img", class_="bootchart")
    assert chart.attrs["data-boot"] == "bios-azure"
    assert chart.attrs["src"].startswith("data:image/svg+xml;base64,")
    assert base64.b64decode(chart.attrs["src"].split(",", 1)[1]).decode() == PLOT
    assert "absent" in dom.one("p", class_="bootchart-missing", data_boot="uefi-azure").text()

    previous, against_gallery = dom.find_all("div", class_="diff")
    assert previous.attrs["data-against"] == "debian-12@20261202-000000-bbbbbb"
    assert "newpkg" in previous.one("details", class_="changes-added").text()
    assert "pkg000" in previous.one("details", class_="changes-removed").text()
    assert "6.1.0-22-cloud" in previous.one("p", class_="kernel").text()
    assert against_gallery.attrs["data-against"] == "debian-12-gen1@2026.1202.0"

    points = dom.find_all("circle", class_="point")
    assert len(points) == 6
    assert {(p.attrs["data-build"], p.attrs["data-boot"], p.attrs["data-ready-s"]) for p in points} >= {
        ("20261201-000000-aaaaaa", "bios-azure", "50.2"), ("20261203-000000-cccccc", "uefi-azure", "63.2")}
    attempts = dom.one("table", class_="history").find_all("tr", class_="attempt")
    assert [a.attrs["class"] for a in attempts] == ["attempt attempt-failed", "attempt attempt-passed"]

    hrefs = assert_links_resolve(dom, page)
    assert "verify/bios-azure/serial.log" in hrefs and "check.json" in hrefs
    # the guest SVG's script (it would rename the page) never ran
    assert dom.one("head").one("title").text() == f"harness debian-12 {build.build_id}"
    shot = screenshot(chromium, page, work, f"{request.node.name}/report.png")
    assert shot.stat().st_size > 20_000


def test_gallery_index_in_a_browser(chromium: Path, scenario: dict[str, Any], capsys: pytest.CaptureFixture[str],
                                    request: pytest.FixtureRequest) -> None:
    gallery: Path = scenario["gallery"]
    work: Path = scenario["work"]
    work.mkdir()
    assert cli.main(["gallery", "report", "--gallery", str(gallery), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    page = gallery / "index.html"
    assert out == {"index": str(page), "definitions": {"debian-12-gen1": 3}}
    dom = dump_dom(chromium, page, work)
    assert_self_contained(dom)
    section = dom.one("section", data_definition="debian-12-gen1")
    assert "Debian 12 <b>for Azure</b>" in section.text() and not section.find_all("b")
    rows = {r.attrs["data-version"]: r for r in section.find_all("tr", class_="version")}
    assert list(rows) == ["2026.1202.1", "2026.1202.0", "2026.1201.0"]  # newest first
    assert rows["2026.1202.0"].attrs["data-flags"] == "latest"
    assert rows["2026.1202.1"].attrs["data-flags"] == "excluded"
    assert rows["2026.1201.0"].attrs["data-flags"] == "end-of-life"
    assert ("check passed (1 passed, 0 warnings, 0 failed); verify passed (2 passed, 0 warnings, 0 failed)"
            in rows["2026.1202.0"].text())
    assert "no report" in rows["2026.1202.1"].text()
    hrefs = assert_links_resolve(dom, page)
    assert hrefs == ["debian-12-gen1/2026.1202.0/report.html", "debian-12-gen1/2026.1201.0/report.html"]
    screenshot(chromium, page, work, f"{request.node.name}/index.png")

    elsewhere = work / "pages" / "gallery.html"
    elsewhere.parent.mkdir()
    assert cli.main(["gallery", "report", "--gallery", str(gallery), "-o", str(elsewhere)]) == 0
    assert capsys.readouterr().out == f"wrote {elsewhere} (1 definitions, 3 versions)\n"
    assert_links_resolve(dump_dom(chromium, elsewhere, work), elsewhere)
