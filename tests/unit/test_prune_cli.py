"""`harness builds prune` against hostile build roots: symlinks, galleries, publish histories, stale scratch.

Only the command line is used here (no import of the prune module), so these tests also run against older code.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from harness.buildfolder import BuildFolder, write_json_atomic
from harness.cli import main
from harness.enums import Stage, Verdict
from harness.report import write_stage
from harness.results import FAILED, PASSED, Record, StageReport
from harness.stages.publish import keep_history
from tests.factories import DIGEST, make_build

USAGE = 2


def bid(n: int) -> str:
    """A build id like new_build_id() makes: 202601NN-000000-<6 hex>."""
    return f"202601{n:02d}-000000-{n:06x}"


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty builds root; the working folder is elsewhere and holds no ./gallery."""
    builds = tmp_path / "builds"
    builds.mkdir()
    monkeypatch.setenv("HARNESS_BUILDS", str(builds))
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return builds


def prune(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["builds", "prune", *argv, "--json"])
    out = capsys.readouterr().out
    return code, (json.loads(out) if out.strip() else {})


def publish_attempt(build: BuildFolder, target: str, ok: bool) -> None:
    """Append one publish attempt to publish.json the way the publish stage does."""
    if ok:
        report = StageReport(Stage.PUBLISH, DIGEST, [Record("publish", "publish to x", PASSED)],
                             verdict=Verdict.PASSED, details={"target": target, "versions": {"x": "1.0.0"}})
    else:
        report = StageReport(Stage.PUBLISH, DIGEST, [Record("publish", "publish", FAILED, message="refused")],
                             details={"target": target, "error": "refused"})
    write_stage(build, report, amend=keep_history)


def make_gallery(path: Path, sources: dict[str, str]) -> None:
    """A local gallery on disk whose definition 'd-gen1' holds one version per {version: source_build}."""
    definition = path / "d-gen1"
    definition.mkdir(parents=True)
    write_json_atomic(path / "gallery.json", {"schema": 1, "name": path.name, "kind": "local"})
    write_json_atomic(definition / "definition.json", {
        "name": "d-gen1", "publisher": "p", "offer": "o", "sku": "s", "os_state": "Generalized",
        "hyper_v_generation": "V1"})
    for version, source in sources.items():
        (definition / version).mkdir()
        write_json_atomic(definition / version / "version.json", {
            "version": version, "content_digest": DIGEST, "source_build": source, "build_id": source.split("/")[-1]})


def test_keeps_the_newest_and_dry_run_deletes_nothing(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, newer, newest = (make_build(root, build_id=bid(n)).path for n in (1, 2, 3))
    code, out = prune(capsys, "--keep", "1", "--dry-run")
    assert code == 0 and out["deleted"] == [str(old), str(newer)] and out["dry_run"] is True
    assert old.exists() and newer.exists()
    code, out = prune(capsys, "--keep", "1")
    assert code == 0 and out["deleted"] == [str(old), str(newer)]
    assert not old.exists() and not newer.exists() and newest.exists()


def test_text_output_names_deleted_protected_and_skipped(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = make_build(root, build_id=bid(1))
    published = make_build(root, build_id=bid(2))
    publish_attempt(published, "azure", ok=True)
    (root / "debian-12" / "notes").mkdir()
    assert main(["builds", "prune", "--keep", "0", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would delete {old.path} (older than the newest 0 of debian-12)" in out
    assert f"kept {published.path} (a publish of it succeeded" in out and "--include-published" in out
    assert f"skipped {root / 'debian-12' / 'notes'} (name is not a build id" in out


def test_symlinked_build_folder_is_skipped_never_followed(root: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    elsewhere = make_build(tmp_path / "precious", build_id=bid(1)).path
    (root / "debian-12").mkdir()
    link = root / "debian-12" / bid(2)
    link.symlink_to(elsewhere)
    real = make_build(root, build_id=bid(3)).path
    (root / "linked-recipe").symlink_to(elsewhere.parent)
    code, out = prune(capsys, "--keep", "0")
    assert code == 0
    assert out["deleted"] == [str(real)] and not real.exists()
    skipped = {i["path"]: i["reason"] for i in out["skipped"]}
    assert "symlink" in skipped[str(link)] and "symlink" in skipped[str(root / "linked-recipe")]
    assert link.is_symlink() and (elsewhere / "manifest.json").exists()


@pytest.mark.parametrize("how", ["absolute", "absolute-definition", "relative-definition", "dotdot", "under-root"])
def test_gallery_given_as_the_recipe_is_refused(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                how: str) -> None:
    gallery = root / "gallery" if how == "under-root" else tmp_path / "cwd" / "gallery"
    make_gallery(gallery, {"1.0.0": "debian-12/" + bid(1)})
    (gallery / "d-gen1" / "1.0.0" / "manifest.json").write_text("{}")  # a version looks much like a build
    argument = {"absolute": str(gallery), "absolute-definition": str(gallery / "d-gen1"),
                "relative-definition": "gallery/d-gen1", "dotdot": "../cwd/gallery", "under-root": "gallery"}[how]
    code, out = prune(capsys, "--keep", "0", argument)
    assert code == USAGE and out == {}
    assert (gallery / "d-gen1" / "1.0.0" / "version.json").exists()


def test_refused_publish_after_a_successful_one_still_protects(root: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    build = make_build(root, build_id=bid(1))
    publish_attempt(build, "azure", ok=True)
    publish_attempt(build, "azure", ok=False)  # the last attempt failed: the build is still published
    code, out = prune(capsys, "--keep", "0")
    assert code == 0 and out["deleted"] == [] and out["kept_published"] == [str(build.path)]
    assert build.path.exists()


@pytest.mark.parametrize("style", ["recipe/build-id", "absolute path"])
def test_gallery_named_in_a_publish_history_protects_without_gallery_option(
        root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], style: str) -> None:
    gallery = tmp_path / "somewhere" / "gallery"
    source = make_build(root, build_id=bid(1))  # its own publish.json is gone; the gallery remembers it
    refused = make_build(root, build_id=bid(2))  # only a refused publish to that gallery in its history
    publish_attempt(refused, f"local:{gallery}", ok=False)
    recorded = str(source.path) if style == "absolute path" else f"debian-12/{bid(1)}"
    make_gallery(gallery, {"1.0.0": recorded})
    code, out = prune(capsys, "--keep", "0")
    assert code == 0
    assert out["kept_published"] == [str(source.path)] and out["deleted"] == [str(refused.path)]
    reason = out["protected"][0]["reason"]
    assert str(gallery) in reason and "1.0.0" in reason
    assert source.path.exists()
    code, out = prune(capsys, "--keep", "0", "--include-published")
    assert code == 0 and out["deleted"] == [str(source.path)] and not source.path.exists()


def test_explicit_gallery_protects_its_sources(root: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    build = make_build(root, build_id=bid(1))
    gallery = tmp_path / "g"
    make_gallery(gallery, {"2.0.0": f"debian-12/{bid(1)}"})
    code, out = prune(capsys, "--keep", "0", "--gallery", str(gallery))
    assert code == 0 and out["kept_published"] == [str(build.path)] and build.path.exists()


def test_unreadable_gallery_stops_prune_before_deleting(root: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    builds = [make_build(root, build_id=bid(n)).path for n in (1, 2)]
    gallery = tmp_path / "g"
    make_gallery(gallery, {"1.0.0": "x/y"})
    (gallery / "d-gen1" / "1.0.0" / "version.json").write_text("{not json")
    code, out = prune(capsys, "--keep", "0", "--gallery", str(gallery))
    assert code != 0 and out == {}
    assert all(p.exists() for p in builds)


def test_only_build_folders_are_deleted(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    named = make_build(root, build_id="my-precious").path
    incomplete = root / "debian-12" / bid(2)
    incomplete.mkdir()
    (incomplete / "disk.raw").write_text("x")
    code, out = prune(capsys, "--keep", "0")
    assert code == 0 and out["deleted"] == []
    skipped = {i["path"]: i["reason"] for i in out["skipped"]}
    assert "not a build id" in skipped[str(named)] and "no manifest.json" in skipped[str(incomplete)]
    assert named.exists() and incomplete.exists()


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_stale_scratch_folders_are_pruned_unless_in_use(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scratch = root / ".scratch"
    killed, busy, fresh = (scratch / f"debian-12-bios-azure-{n}" for n in ("killed", "busy", "fresh"))
    interrupted = root / "debian-12" / f".tmp-{bid(1)}"
    for folder in (killed, busy, fresh, interrupted):
        folder.mkdir(parents=True)
        (folder / "id_ed25519").write_text("PRIVATE KEY")
        (folder / ".lock").touch()
    for folder in (killed, busy, interrupted):
        age(folder, 2 * 3600)
    with open(busy / ".lock", "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a boot still running
        code, out = prune(capsys, "--keep", "3")
    assert code == 0 and out["deleted"] == []
    assert sorted(i["path"] for i in out["stale"]) == sorted([str(killed), str(interrupted)])
    assert not killed.exists() and not interrupted.exists()
    assert busy.exists() and fresh.exists()
    skipped = {i["path"]: i["reason"] for i in out["skipped"]}
    assert "in use" in skipped[str(busy)] and "younger" in skipped[str(fresh)]


def test_a_scratch_folder_with_file_systems_still_mounted_inside_is_never_deleted(
        root: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build killed hard inside mmdebstrap leaves /proc, /sys and /dev/pts mounted in its root."""
    interrupted = root / "debian-12" / f".tmp-{bid(1)}"
    (interrupted / "rootfs" / "proc").mkdir(parents=True)
    (interrupted / ".lock").touch()
    age(interrupted, 2 * 3600)
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 0:21 / / rw - ext4 /dev/vda rw\n"
        f"98 22 0:5 / {interrupted.resolve()}/rootfs/proc rw,nosuid - proc proc rw\n"
        f"99 22 0:6 / {interrupted.resolve()}/rootfs/dev/pts rw - devpts devpts rw\n")
    monkeypatch.setattr("harness.mounts.MOUNTINFO", mountinfo)
    code, out = prune(capsys, "--keep", "3")
    assert interrupted.exists(), "a folder with mounts inside must not be deleted"
    failed = {i["path"]: i["reason"] for i in out["failed"]}
    assert code != 0 and "still mounted" in failed[str(interrupted)] and "rootfs/dev/pts" in failed[str(interrupted)]
    monkeypatch.setattr("harness.mounts.MOUNTINFO", tmp_path / "absent")
    code, out = prune(capsys, "--keep", "3")
    assert code == 0 and not interrupted.exists()


def test_mountinfo_escapes_are_read() -> None:
    from harness.mounts import _unescape
    assert _unescape(r"/a\040b\011c\134d\x") == "/a b\tc\\d\\x"
