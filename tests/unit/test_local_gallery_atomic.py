"""Local gallery publishing is all or nothing across definitions, and refuses places it must not write to."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.errors import PublishError, UsageError
from harness.publish import local, model
from harness.publish.local import LocalGallery
from harness.stages import publish as publish_stage
from tests.factories import DIGEST, make_build

TODAY = time.strptime("2026-11-26", "%Y-%m-%d")
V0 = "2026.1126.0"
GEN1, GEN2 = "debian-12-gen1", "debian-12-gen2"


def hybrid_request(tmp_path: Path, version: str = "auto") -> model.PublishRequest:
    """A V1+V2 request for a fake build whose disk.vhd is a small sparse file (the gallery does not parse it)."""
    build = make_build(tmp_path / "builds", build_id="20261126-000000-aaaaaa")
    vhd = build.path / "disk.vhd"
    with vhd.open("wb") as handle:
        handle.truncate(1024 * 1024)
        handle.write(b"disk")
    definitions = model.definitions_for(build.manifest(), ["V1", "V2"])
    return model.PublishRequest(build=build, vhd=vhd, content_digest=DIGEST, definitions=definitions,
                                version=version)


def leftovers(gallery: LocalGallery) -> list[str]:
    return sorted(str(p.relative_to(gallery.path)) for p in gallery.path.rglob("*")
                  if p.name.startswith((local.STAGING_PREFIX, local.TOMBSTONE_PREFIX)))


def fail_on_second_call(monkeypatch: pytest.MonkeyPatch, name: str) -> list[Any]:
    """Replace local.<name> with a wrapper whose second call raises ENOSPC."""
    calls: list[Any] = []
    real = getattr(local, name)

    def failing(*args: Any) -> Any:
        calls.append(args)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(*args)

    monkeypatch.setattr(local, name, failing)
    return calls


@pytest.mark.parametrize("step", ["clone_or_copy", "install"])
def test_failure_in_the_second_definition_publishes_neither(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            step: str) -> None:
    gallery = LocalGallery.at(tmp_path / "gallery")
    request = hybrid_request(tmp_path)
    calls = fail_on_second_call(monkeypatch, step)
    with pytest.raises(OSError, match="No space left"):
        gallery.publish(request, today=TODAY)
    assert len(calls) == 2  # the failure hit the second definition (staging, or the second commit)
    assert gallery.versions(GEN1) == [] and gallery.versions(GEN2) == []
    assert not (gallery.path / GEN1 / V0).exists() and not (gallery.path / GEN2 / V0).exists()
    assert leftovers(gallery) == []
    monkeypatch.undo()
    outcomes = gallery.publish(request, today=TODAY)  # no version number was burned, nothing was a no-op
    assert [(o.definition, o.version, o.created) for o in outcomes] == [(GEN1, V0, True), (GEN2, V0, True)]
    assert leftovers(gallery) == []


def test_interrupt_while_committing_undoes_the_first_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gallery = LocalGallery.at(tmp_path / "gallery")
    real = local.install

    def interrupted(staging: Path, final: Path) -> None:
        real(staging, final)
        if final.parent.name == GEN2:
            raise KeyboardInterrupt  # after the rename: the second version is in place too, then undone

    monkeypatch.setattr(local, "install", interrupted)
    with pytest.raises(KeyboardInterrupt):
        gallery.publish(hybrid_request(tmp_path), today=TODAY)
    assert gallery.versions(GEN1) == [] and gallery.versions(GEN2) == []
    assert leftovers(gallery) == []


def test_refusal_in_the_second_definition_writes_no_version(tmp_path: Path) -> None:
    gallery = LocalGallery.at(tmp_path / "gallery")
    request = hybrid_request(tmp_path, version="1.0.0")
    other = model.PublishRequest(build=request.build, vhd=request.vhd, content_digest="sha256-sparse4m:" + "cd" * 32,
                                 definitions=request.definitions[1:], version="1.0.0")
    gallery.publish(other)  # 1.0.0 of gen2 holds other content
    with pytest.raises(PublishError, match=f"version 1.0.0 of '{GEN2}' already exists with other content"):
        gallery.publish(request)
    assert gallery.versions(GEN1) == []
    assert [v.content_digest for v in gallery.versions(GEN2)] == [other.content_digest]


def test_same_content_in_one_definition_is_a_noop_there_only(tmp_path: Path) -> None:
    gallery = LocalGallery.at(tmp_path / "gallery")
    request = hybrid_request(tmp_path)
    first = model.PublishRequest(build=request.build, vhd=request.vhd, content_digest=request.content_digest,
                                 definitions=request.definitions[:1])
    gallery.publish(first, today=TODAY)
    outcomes = gallery.publish(request, today=TODAY)
    assert [(o.definition, o.version, o.created) for o in outcomes] == [(GEN1, V0, False), (GEN2, V0, True)]
    record = json.loads((gallery.version_dir(GEN2, V0) / "version.json").read_text())
    assert record["source_build"] == "debian-12/20261126-000000-aaaaaa"


# -- where a gallery may not be -----------------------------------------------------------------------

def test_a_file_or_a_system_tree_is_not_a_gallery(tmp_path: Path) -> None:
    file = tmp_path / "gallery"
    file.write_text("not a gallery\n")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        LocalGallery.at(file)
    with pytest.raises(UsageError, match="is a file, not a folder"):
        LocalGallery(file).ensure()
    for path in ("/proc/gallery", "/sys/kernel/gallery", "/proc"):
        with pytest.raises(UsageError, match=r"is under /(proc|sys)"):
            LocalGallery.at(path)


def test_a_read_only_folder_is_refused_before_writing(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    request = hybrid_request(tmp_path)
    try:
        for path in (folder, folder / "gallery"):
            with pytest.raises(PublishError, match="read-only") as info:
                LocalGallery.at(path).publish(request)
            assert info.value.hint
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_publish_to_a_file_is_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    request = hybrid_request(tmp_path)
    monkeypatch.setattr(publish_stage, "_prepare", lambda build, options: request)  # the gate is tested elsewhere
    target = tmp_path / "a-file"
    target.write_text("x")
    for where in (str(target), "/proc/self/gallery"):
        code = main(["publish", str(request.build.path), "--to", f"local:{where}"])
        err = capsys.readouterr().err
        assert code == UsageError.exit_code
        assert err.startswith("error: gallery path ") and "Traceback" not in err
        assert [line.split(":")[0] for line in err.strip().splitlines()] == ["error", "  hint"]
    assert target.read_text() == "x"
