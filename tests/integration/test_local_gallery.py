"""Local gallery on a real file system: atomic versions, immutability, replicas as links, the CLI.

Builds here are small fake build folders: a sparse 32 MiB disk.vhd with a real fixed-VHD footer, a
manifest and check/verify stage files written through harness.report, like the real stages do.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from harness import cli
from harness.buildfolder import BuildFolder, read_json, write_json_atomic
from harness.digest import allocated_bytes, content_digest
from harness.enums import Agent, Family, Generation, OsState, Stage
from harness.errors import EXIT_USAGE, PublishError
from harness.manifest import VHD, DiskInfo, DiskStamp, GalleryIdentity, Manifest
from harness.publish import local, model
from harness.publish.local import LocalGallery
from harness.report import write_stage
from harness.results import FAILED, PASSED, WARNING, Record, StageReport

MIB = 1024 * 1024
DISK_MIB = 32
TODAY = time.strptime("2026-11-26", "%Y-%m-%d")
V0, V1_, V2_ = "2026.1126.0", "2026.1126.1", "2026.1126.2"


def vhd_footer(size: int) -> bytes:
    """A fixed-VHD footer (reference/vhd-and-publishing.md §1): creator qem2 with maximum CHS, checksum set."""
    fields = [b"conectix", 2, 0x00010000, 0xFFFFFFFFFFFFFFFF, 0, b"qem2", 5, 3, b"Wi2k", size, size,
              65535, 16, 255, 2, 0, bytes(range(16)), 0, bytes(427)]
    raw = struct.pack(">8sIIQI4sHH4sQQHBBII16sB427s", *fields)
    fields[15] = ~sum(raw) & 0xFFFFFFFF
    return struct.pack(">8sIIQI4sHH4sQQHBBII16sB427s", *fields)


def make_build(root: Path, name: str = "b1", *, seed: int = 1, os_state: str = "generalized",
               check: bool = True, verify: tuple[str, ...] = ("bios", "uefi"),
               generations: tuple[str, ...] = ("V1", "V2")) -> BuildFolder:
    """A converted build folder whose content (and digest) depends on seed."""
    folder = root / "builds" / "debian-12" / name
    folder.mkdir(parents=True)
    size = DISK_MIB * MIB
    disk = folder / "disk.vhd"
    with disk.open("wb") as handle:
        handle.truncate(size)
        handle.seek(1 * MIB)
        handle.write(bytes([seed]) * (256 * 1024))
        handle.seek(20 * MIB)
        handle.write(b"root file system %d" % seed * 1000)
        handle.seek(size)
        handle.write(vhd_footer(size))
    digest = content_digest(disk, size)
    build = BuildFolder(folder)
    build.write_manifest(Manifest(
        recipe="debian-12", build_id=name, family=Family.APT, release="12", agent=Agent.CLOUD_INIT,
        os_state=OsState(os_state), generations=tuple(Generation(g) for g in generations),
        gallery=GalleryIdentity(publisher="harness", offer="debian", sku="12"),
        disk=DiskInfo(file=VHD, size_bytes=size, stamp=DiskStamp.of(disk)), content_digest=digest,
        kernel_version="6.1.0-test"))
    if check:
        write_stage(build, StageReport(Stage.CHECK, digest, [Record("check", "azure-readiness", PASSED)]))
    if verify:
        write_stage(build, StageReport(Stage.VERIFY, digest, [Record("verify", "provisioning", PASSED, firmware=fw,
                                                                     platform="azure") for fw in verify]))
    return build


def request(build: BuildFolder, **options: Any) -> model.PublishRequest:
    return model.prepare(build, **options)


def gallery_entries(gallery: LocalGallery, definition: str) -> list[str]:
    return sorted(p.name for p in (gallery.path / definition).iterdir() if p.name != local.LOCK_FILE)


@pytest.fixture
def gallery(tmp_path: Path) -> LocalGallery:
    return LocalGallery.at(tmp_path / "gallery")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- publishing -------------------------------------------------------------------------------------

def test_hybrid_build_publishes_to_v1_and_v2(tmp_path: Path, gallery: LocalGallery) -> None:
    build = make_build(tmp_path)
    outcomes = gallery.publish(request(build), today=TODAY)
    assert [(o.definition, o.version, o.created) for o in outcomes] == [
        ("debian-12-gen1", V0, True), ("debian-12-gen2", V0, True)]
    assert [(d.name, d.hyper_v_generation, d.os_state) for d in gallery.definitions()] == [
        ("debian-12-gen1", "V1", "Generalized"), ("debian-12-gen2", "V2", "Generalized")]
    digest = build.manifest().content_digest
    for definition in ("debian-12-gen1", "debian-12-gen2"):
        folder = gallery.version_dir(definition, V0)
        assert sorted(p.name for p in folder.iterdir()) == [
            "check.json", "content-digest.txt", "disk.vhd", "manifest.json", "regions", "report.html", "results.json",
            "verify.json",
            "version.json"]
        record = read_json(folder / "version.json")
        assert record["content_digest"] == digest
        assert record["source_build"] == "debian-12/b1" and record["build_id"] == "b1"
        assert record["force_unverified"] is False and record["unverified_reasons"] == []
        assert record["target_regions"] == [{"name": "local", "replicas": 1, "storage_account_type": "Standard_LRS"}]
        assert (folder / "content-digest.txt").read_text() == digest + "\n"
        assert read_json(folder / "manifest.json") == read_json(build.manifest_path)
        vhd = folder / "disk.vhd"
        assert vhd.stat().st_size == DISK_MIB * MIB + 512
        assert content_digest(vhd, DISK_MIB * MIB) == digest  # same bytes as the build's disk
        assert vhd.read_bytes()[-512:] == (build.path / "disk.vhd").read_bytes()[-512:]
        assert allocated_bytes(vhd) < 4 * MIB  # holes kept: 32 MiB file, well under 1 MiB of data
        assert vhd.stat().st_ino != (build.path / "disk.vhd").stat().st_ino  # never tied to the build folder
        assert record["disk"]["copy_method"] in ("reflink", "sparse-copy")


def test_replicas_are_links_not_copies(tmp_path: Path, gallery: LocalGallery) -> None:
    build = make_build(tmp_path)
    gallery.publish(request(build, generation="V2", target_regions=["westeurope=2", "eastus=1"]), today=TODAY)
    folder = gallery.version_dir("debian-12-gen2", V0)
    vhd = folder / "disk.vhd"
    replicas = sorted(folder.glob("regions/*/replica-*.vhd"))
    assert [str(p.relative_to(folder)) for p in replicas] == [
        "regions/eastus/replica-1.vhd", "regions/westeurope/replica-1.vhd", "regions/westeurope/replica-2.vhd"]
    record = read_json(folder / "version.json")
    assert record["disk"]["replica_method"] == "hardlink"
    assert {p.stat().st_ino for p in replicas} == {vhd.stat().st_ino}
    assert vhd.stat().st_nlink == 4
    unique = {p.stat().st_ino: allocated_bytes(p) for p in [vhd, *replicas]}
    assert sum(unique.values()) == allocated_bytes(vhd)  # four names, one file's worth of blocks
    assert record["target_regions"] == [
        {"name": "westeurope", "replicas": 2, "storage_account_type": "Standard_LRS"},
        {"name": "eastus", "replicas": 1, "storage_account_type": "Standard_LRS"}]
    assert not os.access(vhd, os.W_OK) or os.geteuid() == 0  # read-only by mode (root ignores modes)
    assert vhd.stat().st_mode & 0o222 == 0


@pytest.mark.parametrize("step", ["replicate", "install"])
def test_failure_midway_leaves_no_partial_version(tmp_path: Path, gallery: LocalGallery,
                                                  monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    build = make_build(tmp_path)
    calls: list[Path] = []
    real = getattr(local, step)

    def failing(src: Path, dst: Path) -> Any:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(local, step, failing)
    args = {"target_regions": ["eu=3"]} if step == "replicate" else {}
    with pytest.raises(OSError, match="No space left"):
        gallery.publish(request(build, **args), today=TODAY)
    # Both definitions or neither (issue: gen1 published while gen2 failed): nothing is left of this publish.
    assert gallery.versions("debian-12-gen1") == [] and gallery.versions("debian-12-gen2") == []
    for name in ("debian-12-gen1", "debian-12-gen2"):
        assert set(gallery_entries(gallery, name)) <= {"definition.json"}
    assert not [p for p in gallery.path.rglob(".staging-*")] and not [p for p in gallery.path.rglob(".deleted-*")]
    monkeypatch.undo()
    outcomes = gallery.publish(request(build), today=TODAY)  # no version number was burned
    assert [(o.version, o.created) for o in outcomes] == [(V0, True), (V0, True)]


def test_a_legacy_version_spelled_with_zeros_is_the_same_number(tmp_path: Path, gallery: LocalGallery) -> None:
    """A gallery written before versions were canonical holds 01.0.0: publishing 1.0.0 beside it is refused."""
    first, second = make_build(tmp_path, "b1", seed=1), make_build(tmp_path, "b2", seed=2)
    gallery.publish(request(first, generation="V1", version="1.0.0"))
    folder = gallery.version_dir("debian-12-gen1", "1.0.0")
    record = read_json(folder / "version.json")
    write_json_atomic(folder / "version.json", {**record, "version": "01.0.0"})
    folder.rename(folder.with_name("01.0.0"))
    with pytest.raises(PublishError, match=r"already exists \(as 01.0.0\) with other content"):
        gallery.publish(request(second, generation="V1", version="1.0.0"))
    assert [v.version for v in gallery.versions("debian-12-gen1")] == ["01.0.0"]


def test_explicit_version_with_other_content_is_refused(tmp_path: Path, gallery: LocalGallery) -> None:
    first, second = make_build(tmp_path, "b1", seed=1), make_build(tmp_path, "b2", seed=2)
    gallery.publish(request(first, generation="V1", version="1.0.0"))
    before = (gallery.version_dir("debian-12-gen1", "1.0.0") / "version.json").read_bytes()
    with pytest.raises(PublishError, match=r"version 1.0.0 of 'debian-12-gen1' already exists with other content"):
        gallery.publish(request(second, generation="V1", version="1.0.0"))
    assert (gallery.version_dir("debian-12-gen1", "1.0.0") / "version.json").read_bytes() == before
    assert [v.version for v in gallery.versions("debian-12-gen1")] == ["1.0.0"]


def test_explicit_version_taken_in_one_definition_refuses_before_copying(tmp_path: Path,
                                                                         gallery: LocalGallery) -> None:
    first, second = make_build(tmp_path, "b1", seed=1), make_build(tmp_path, "b2", seed=2)
    gallery.publish(request(first, generation="V2", version="1.0.0"))
    with pytest.raises(PublishError, match="already exists"):
        gallery.publish(request(second, version="1.0.0"))  # V1 would be free, V2 is taken
    assert gallery.versions("debian-12-gen1") == []


def test_same_content_is_a_noop_returning_existing_version(tmp_path: Path, gallery: LocalGallery) -> None:
    build = make_build(tmp_path)
    gallery.publish(request(build, generation="V1"), today=TODAY)
    again = gallery.publish(request(build, generation="V1"), today=TODAY)
    assert [(o.version, o.created, o.note) for o in again] == [
        (V0, False, f"content already published as version {V0}")]
    explicit = gallery.publish(request(build, generation="V1", version="9.9.9"), today=TODAY)
    assert [(o.version, o.created) for o in explicit] == [(V0, False)]
    assert "version 9.9.9 was not created" in explicit[0].note
    assert gallery_entries(gallery, "debian-12-gen1") == [V0, "definition.json"]


def test_auto_versions_count_up_on_the_same_day(tmp_path: Path, gallery: LocalGallery) -> None:
    found = [gallery.publish(request(make_build(tmp_path, f"b{i}", seed=i), generation="V2"), today=TODAY)[0]
             for i in range(1, 4)]
    assert [(o.version, o.created) for o in found] == [(V0, True), (V1_, True), (V2_, True)]
    next_day = gallery.publish(request(make_build(tmp_path, "b9", seed=9), generation="V2"),
                               today=time.strptime("2026-11-27", "%Y-%m-%d"))
    assert next_day[0].version == "2026.1127.0"


def test_latest_honours_exclude_and_end_of_life(tmp_path: Path, gallery: LocalGallery) -> None:
    builds = [make_build(tmp_path, f"b{i}", seed=i) for i in range(1, 4)]
    gallery.publish(request(builds[0], generation="V1", version="1.0.0"))
    gallery.publish(request(builds[1], generation="V1", version="1.0.1", end_of_life="2030-01-31"))
    gallery.publish(request(builds[2], generation="V1", version="1.0.2", exclude_from_latest=True))
    assert gallery.version("debian-12-gen1", "1.0.2").exclude_from_latest is True
    found = gallery.latest("debian-12-gen1", dt.date(2030, 1, 31))
    assert found is not None and found.version == "1.0.1"
    later = gallery.version("debian-12-gen1", "latest", dt.date(2030, 2, 1))
    assert later.version == "1.0.0"


def test_specialized_build_needs_a_specialized_definition(tmp_path: Path, gallery: LocalGallery) -> None:
    gallery.publish(request(make_build(tmp_path, "gen", seed=1), generation="V1"))
    special = make_build(tmp_path, "spec", seed=2, os_state="specialized")
    (outcome,) = gallery.publish(request(special, generation="V1"))
    assert outcome.definition == "debian-12-gen1-specialized"
    assert gallery.definition(outcome.definition).os_state == "Specialized"
    with pytest.raises(PublishError, match="os_state is 'Generalized', the build needs 'Specialized'") as info:
        gallery.publish(request(special, generation="V1", definitions=["debian-12-gen1"]))
    assert "--definition" in info.value.hint


def test_generation_must_match_the_definition(tmp_path: Path, gallery: LocalGallery) -> None:
    build = make_build(tmp_path)
    gallery.publish(request(build, generation="V1", definitions=["shared"]))
    with pytest.raises(PublishError, match="hyper_v_generation is 'V1', the build needs 'V2'"):
        gallery.publish(request(make_build(tmp_path, "b2", seed=2), generation="V2", definitions=["shared"]))


def test_concurrent_publishers_do_not_clobber(tmp_path: Path, gallery: LocalGallery) -> None:
    builds = [make_build(tmp_path, f"b{i}", seed=i) for i in range(1, 5)]
    errors: list[BaseException] = []

    def publish(build: BuildFolder) -> None:
        try:
            gallery.publish(request(build, generation="V2"), today=TODAY)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(b,)) for b in builds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    found = gallery.versions("debian-12-gen2")
    assert [v.version for v in found] == [f"2026.1126.{n}" for n in range(4)]
    assert sorted(v.content_digest for v in found) == sorted(b.manifest().content_digest for b in builds)


def test_unconverted_or_broken_vhd_is_refused(tmp_path: Path) -> None:
    build = make_build(tmp_path)
    vhd = build.path / "disk.vhd"
    os.rename(vhd, build.path / "disk.raw")
    with pytest.raises(PublishError, match=r"has no disk\.vhd") as info:
        request(build)
    assert "harness convert" in info.value.hint
    os.rename(build.path / "disk.raw", vhd)
    with vhd.open("r+b") as handle:
        handle.seek(-512, os.SEEK_END)
        handle.write(b"notavhd!")
    with pytest.raises(PublishError, match="not a valid fixed VHD"):
        request(build)


# -- the publish command ----------------------------------------------------------------------------

def test_publish_cli_json_and_publish_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build = make_build(tmp_path)
    target = tmp_path / "g"
    code, out, _ = run_cli(capsys, "publish", str(build.path), "--to", f"local:{target}",
                           "--target-region", "westeurope=2", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["target"] == f"local:{target}"
    assert [(p["definition"], p["created"]) for p in data["published"]] == [
        ("debian-12-gen1", True), ("debian-12-gen2", True)]
    version = data["published"][0]["version"]
    assert (target / "debian-12-gen2" / version / "regions" / "westeurope" / "replica-2.vhd").exists()
    stage = read_json(build.path / "publish.json")
    assert stage["passed"] is True and stage["content_digest"] == build.manifest().content_digest
    assert [(r["check"], r["result"], r["firmware"]) for r in stage["records"]] == [
        ("publish to debian-12-gen1", PASSED, "bios"), ("publish to debian-12-gen2", PASSED, "uefi")]
    assert stage["definitions"] == ["debian-12-gen1", "debian-12-gen2"]
    assert stage["versions"] == {"debian-12-gen1": version, "debian-12-gen2": version}
    assert "publish" in read_json(build.path / "results.json")["stages"]
    assert f"Published as `debian-12-gen1, debian-12-gen2` version `{version}`" in (
        build.path / "summary.md").read_text()
    code, out, _ = run_cli(capsys, "publish", str(build.path), "--to", f"local:{target}")
    assert code == 0
    assert out.splitlines() == [f"debian-12-gen1: content already published as version {version} (no-op)",
                                f"debian-12-gen2: content already published as version {version} (no-op)"]


def test_unverified_build_refused_then_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build = make_build(tmp_path, verify=())
    target = f"local:{tmp_path / 'g'}"
    code, out, err = run_cli(capsys, "publish", str(build.path), "--to", target)
    assert code == 1 and out == ""
    assert err.startswith("error: refusing to publish an unverified build: verify has not passed on bios (V1)")
    assert "--force-unverified" in err
    failed = read_json(build.path / "publish.json")
    assert [(r["check"], r["result"]) for r in failed["records"]] == [("publish", FAILED)]
    assert not (tmp_path / "g" / "debian-12-gen1").exists()
    code, out, err = run_cli(capsys, "publish", str(build.path), "--to", target, "--force-unverified", "--json")
    assert code == 0 and "warning: published an unverified build" in err
    data = json.loads(out)
    assert data["force_unverified"] is True and len(data["unverified_reasons"]) == 2
    for definition, firmware in (("debian-12-gen1", "bios (V1)"), ("debian-12-gen2", "uefi (V2)")):
        record = read_json(tmp_path / "g" / definition / data["published"][0]["version"] / "version.json")
        assert record["force_unverified"] is True
        assert record["unverified_reasons"] == [f"verify has not passed on {firmware} for this content"]
    stage = read_json(build.path / "publish.json")
    assert {r["result"] for r in stage["records"]} == {WARNING}
    assert [h["result"] for h in stage["history"]] == ["failed", "passed"]  # the refused attempt is kept


def test_forced_hybrid_marks_only_the_unverified_generation(tmp_path: Path, gallery: LocalGallery) -> None:
    build = make_build(tmp_path, verify=("bios",))
    outcomes = gallery.publish(request(build, force_unverified=True), today=TODAY)
    v1, v2 = (gallery.version(o.definition, o.version) for o in outcomes)
    assert (v1.force_unverified, v1.unverified_reasons) == (False, ())
    assert (v2.force_unverified, v2.unverified_reasons) == (
        True, ("verify has not passed on uefi (V2) for this content",))


def test_bios_only_verify_refuses_v2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build = make_build(tmp_path, verify=("bios",))
    target = f"local:{tmp_path / 'g'}"
    code, _, err = run_cli(capsys, "publish", str(build.path), "--to", target, "--generation", "V2")
    assert code == 1 and "verify has not passed on uefi (V2)" in err
    code, _, err = run_cli(capsys, "publish", str(build.path), "--to", target)  # default: both generations
    assert code == 1 and "uefi (V2)" in err and "bios" not in err.split("hint")[0]
    code, out, _ = run_cli(capsys, "publish", str(build.path), "--to", target, "--generation", "V1", "--json")
    assert code == 0 and [p["definition"] for p in json.loads(out)["published"]] == ["debian-12-gen1"]


def test_publish_to_azure_without_module_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # the Azure target module (and its SDK) not installed: importing it raises ModuleNotFoundError
    monkeypatch.setitem(sys.modules, "harness.publish.azure", None)
    build = make_build(tmp_path)
    code, _, err = run_cli(capsys, "publish", str(build.path), "--to", "azure")
    assert code == 3  # the environment, not the image: EXIT_ENVIRONMENT
    assert err.splitlines()[0] == "error: --to azure is not available: module harness.publish.azure is missing"
    assert not (build.path / "publish.json").exists()


# -- the gallery command ----------------------------------------------------------------------------

def test_gallery_list_show_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = tmp_path / "g"
    gallery = LocalGallery.at(g)
    for i, version in enumerate(["1.0.0", "1.0.1", "1.0.2"], start=1):
        gallery.publish(request(make_build(tmp_path, f"b{i}", seed=i), generation="V2", version=version,
                                exclude_from_latest=version == "1.0.2"))
    code, out, _ = run_cli(capsys, "gallery", "list", "--gallery", str(g), "--json")
    assert code == 0
    listed = json.loads(out)
    assert [(d["name"], d["latest"]) for d in listed["definitions"]] == [("debian-12-gen2", "1.0.1")]
    rows = listed["definitions"][0]["versions"]
    assert [(v["version"], v["latest"], v["exclude_from_latest"]) for v in rows] == [
        ("1.0.0", False, False), ("1.0.1", True, False), ("1.0.2", False, True)]
    code, out, _ = run_cli(capsys, "gallery", "list", "--gallery", str(g))
    assert code == 0 and "debian-12-gen2" in out and "latest" in out and "excluded" in out

    code, out, _ = run_cli(capsys, "gallery", "show", "debian-12-gen2", "--gallery", str(g), "--json")
    shown = json.loads(out)
    assert (shown["hyper_v_generation"], shown["latest"], len(shown["versions"])) == ("V2", "1.0.1", 3)
    code, out, _ = run_cli(capsys, "gallery", "show", "debian-12-gen2/latest", "--gallery", str(g), "--json")
    version = json.loads(out)
    assert (version["version"], version["latest"], version["build_id"]) == ("1.0.1", True, "b2")
    files = {f["path"]: f for f in version["files"]}
    assert files["disk.vhd"]["inode"] == files["regions/local/replica-1.vhd"]["inode"]
    assert files["disk.vhd"]["links"] == 2
    code, _, err = run_cli(capsys, "gallery", "show", "debian-12-gen2/7.7.7", "--gallery", str(g))
    assert code == EXIT_USAGE and "no version 7.7.7" in err and "1.0.0, 1.0.1, 1.0.2" in err

    code, _, err = run_cli(capsys, "gallery", "delete", "debian-12-gen2/1.0.1", "--gallery", str(g))
    assert code == EXIT_USAGE and "is the latest" in err and "--yes" in err
    assert (g / "debian-12-gen2" / "1.0.1" / "version.json").exists()
    code, out, _ = run_cli(capsys, "gallery", "delete", "debian-12-gen2/1.0.2", "--gallery", str(g), "--json")
    assert code == 0 and json.loads(out) == {"deleted": {"definition": "debian-12-gen2", "version": "1.0.2"},
                                             "latest": "1.0.1"}
    code, out, _ = run_cli(capsys, "gallery", "delete", "debian-12-gen2/1.0.1", "--yes", "--gallery", str(g))
    assert code == 0 and out.strip() == "deleted debian-12-gen2/1.0.1; latest is now 1.0.0"
    assert gallery_entries(gallery, "debian-12-gen2") == ["1.0.0", "definition.json"]  # no tombstones left
    code, _, err = run_cli(capsys, "gallery", "delete", "debian-12-gen2", "--gallery", str(g))
    assert code == EXIT_USAGE and "names no version" in err
