"""harness.housekeeping: the prune plan is complete before anything goes, apply re-checks, scratch folders lock."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from harness import housekeeping, recipe
from harness.builder import pipeline
from harness.builder.context import BuildContext, BuildOptions
from harness.cli import main
from harness.errors import BuildError, UsageError
from harness.housekeeping import PruneOptions, apply, check_recipe_argument, plan_prune
from harness.verify.boot import BootRequest, BootSession
from harness.vm.accel import AccelChoice
from tests.factories import make_build


def bid(n: int) -> str:
    return f"202601{n:02d}-000000-{n:06x}"


def in_use(folder: Path) -> bool:
    fd = housekeeping._claim(folder)
    housekeeping._release(fd)
    return fd is None


@pytest.mark.parametrize("name", ["../builds", "a/b", "/abs", ".scratch", "..", "", "x\x00", "debian-12\n"])
def test_recipe_argument_must_be_a_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError, match="is not a recipe name"):
        plan_prune(PruneOptions(keep=0, recipe=name), root=tmp_path)


def test_recipe_argument_takes_every_valid_recipe_name(tmp_path: Path) -> None:
    """The same rule as the recipe schema: a name starting with '_' is a recipe name too."""
    assert check_recipe_argument("_base") == "_base"
    assert plan_prune(PruneOptions(keep=0, recipe="_base"), root=tmp_path).delete == ()


@pytest.mark.parametrize("text", ['{"stage": "publish", "passed": true, "history": [1, 2]}', '{"stage": "nope"}',
                                  '{"stage": "publish", "history": "x"}', "{trunc"])
def test_a_malformed_publish_json_keeps_the_build(tmp_path: Path, text: str) -> None:
    build = make_build(tmp_path, build_id=bid(1)).path
    (build / "publish.json").write_text(text)
    plan = plan_prune(PruneOptions(keep=0), root=tmp_path)
    assert plan.delete == () and [i.path for i in plan.protected] == [build]
    assert "publish.json is unreadable" in plan.protected[0].reason


def test_negative_keep_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--keep"):
        plan_prune(PruneOptions(keep=-1), root=tmp_path)


def test_recipe_limits_builds_and_boot_scratch(tmp_path: Path) -> None:
    mine = make_build(tmp_path, build_id=bid(1)).path
    other = make_build(tmp_path, recipe="fedora", build_id=bid(1)).path
    scratch = [tmp_path / ".scratch" / f"{r}-uefi-azure-x" for r in ("debian-12", "debian-12-generic")]
    for folder in scratch:
        folder.mkdir(parents=True)
    plan = plan_prune(PruneOptions(keep=0, recipe="debian-12", stale_after_s=0), root=tmp_path,
                      now_s=time.time() + 10)
    assert [i.path for i in plan.delete] == [mine]
    assert [i.path for i in plan.stale] == [scratch[0]]
    assert other.exists()


def test_apply_rechecks_each_folder_before_deleting(tmp_path: Path) -> None:
    builds = [make_build(tmp_path / "builds", build_id=bid(n)).path for n in (1, 2)]
    plan = plan_prune(PruneOptions(keep=0), root=tmp_path / "builds")
    assert [i.path for i in plan.delete] == builds
    precious = make_build(tmp_path / "precious", build_id=bid(1)).path
    os.rename(builds[0], tmp_path / "moved")
    builds[0].symlink_to(precious)  # swapped for a symlink between planning and applying
    result = apply(plan)
    assert result.deleted == (builds[1],) and not builds[1].exists()
    assert [(i.path, "symlink" in i.reason) for i in result.failed] == [(builds[0], True)]
    assert (precious / "manifest.json").exists()
    assert not [p for p in builds[1].parent.iterdir() if p.name.startswith(housekeeping.PRUNING_PREFIX)]


def test_include_published_reads_no_gallery(tmp_path: Path) -> None:
    build = make_build(tmp_path, build_id=bid(1)).path
    broken = tmp_path / "g" / "d"
    broken.mkdir(parents=True)
    (tmp_path / "g" / "gallery.json").write_text("{}")
    (broken / "definition.json").write_text("{broken")
    plan = plan_prune(PruneOptions(keep=0, galleries=(tmp_path / "g",), include_published=True), root=tmp_path)
    assert [i.path for i in plan.delete] == [build]


def test_a_file_given_as_gallery_is_refused(tmp_path: Path) -> None:
    make_build(tmp_path / "builds", build_id=bid(1))
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        plan_prune(PruneOptions(keep=0, galleries=(tmp_path / "file",)), root=tmp_path / "builds")


def test_held_lock_marks_a_folder_in_use(tmp_path: Path) -> None:
    assert not in_use(tmp_path)  # no .lock at all: free
    with housekeeping.held(tmp_path):
        assert in_use(tmp_path)
    assert not in_use(tmp_path)


def test_boot_session_holds_its_scratch_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_BUILDS", str(tmp_path / "builds"))
    monkeypatch.setattr(BootSession, "_setup", lambda self: None)  # no namespace, platform or QEMU here
    build = make_build(tmp_path / "builds", build_id=bid(1))
    request = BootRequest(build, "bios", "azure", AccelChoice("tcg", "test"), keep="always")
    with BootSession(request) as session:
        assert session.scratch.parent == tmp_path / "builds" / ".scratch"
        assert in_use(session.scratch)
    assert session.scratch.exists() and not in_use(session.scratch)  # kept, and stale once old


def test_build_holds_its_work_folder_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_BUILDS", str(tmp_path / "builds"))
    seen: list[bool] = []

    def step(ctx: BuildContext) -> None:
        seen.append(in_use(ctx.work_dir))
        raise BuildError("stop here", "test")

    route = pipeline.Route(tools=(), probe=lambda ctx: {}, steps=(step,), plan=lambda ctx: {})
    monkeypatch.setattr(pipeline, "route_of", lambda r: route)
    monkeypatch.setattr(pipeline, "preflight", lambda ctx: None)
    with pytest.raises(BuildError, match="stop here"):
        pipeline.build(recipe.load("debian-12"), BuildOptions(rebuild=True))
    assert seen == [True]
    assert not [p for p in (tmp_path / "builds" / "debian-12").iterdir() if p.name.startswith(".tmp-")]


def test_a_failed_deletion_is_reported_after_trying_the_rest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HARNESS_BUILDS", str(tmp_path))
    first, second = (make_build(tmp_path, build_id=bid(n)).path for n in (1, 2))
    real = housekeeping._delete_build
    monkeypatch.setattr(housekeeping, "_delete_build",
                        lambda path: "cannot delete: Device or resource busy" if path == first else real(path))
    assert main(["builds", "prune", "--keep", "0", "--json"]) == 3
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["deleted"] == [str(second)] and data["failed"][0]["path"] == str(first)
    assert err.startswith("error: 1 folder(s) could not be deleted") and "Device or resource busy" in err
    assert first.exists() and not second.exists()
