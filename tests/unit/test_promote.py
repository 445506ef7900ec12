"""`harness promote`: a staged version (published with --exclude-from-latest) joins 'latest', in a local gallery
(version.json rewritten atomically) and on Azure (a PATCH of the publishing profile through azure-mgmt-compute's
begin_update, against the local fake ARM endpoint); old staging versions are deleted, never the latest one."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.errors import NotFoundError, UsageError
from harness.publish import model
from harness.publish.arm import Arm, Region
from harness.publish.azure import compute_client
from harness.publish.azure_settings import AzureTarget
from harness.publish.local import LocalGallery
from harness.publish.promote import (
    AzurePromoteGallery,
    GalleryVersion,
    LocalPromoteGallery,
    PromoteOptions,
    keep_reason,
    parse_item,
    promote,
)
from harness.stages import publish as publish_stage
from harness.stages.publish import LocalTarget, PublishOptions
from tests.factories import DIGEST, make_build
from tests.fakes.arm import FakeArm, running_fake_arm

GEN1, GEN2 = "debian-12-gen1", "debian-12-gen2"
NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)


def request_for(tmp_path: Path, build_id: str, digest: str, *, staged: bool = True) -> model.PublishRequest:
    """A V1+V2 request for a small fake build (the gallery does not parse the VHD)."""
    build = make_build(tmp_path / "builds", build_id=build_id, content_digest=digest)
    vhd = build.path / "disk.vhd"
    with vhd.open("wb") as handle:
        handle.truncate(1024 * 1024)
        handle.write(build_id.encode())
    definitions = model.definitions_for(build.manifest(), ["V1", "V2"])
    return model.PublishRequest(build=build, vhd=vhd, content_digest=digest, definitions=definitions,
                                exclude_from_latest=staged)


def publish_local(gallery: LocalGallery, tmp_path: Path, n: int, *, staged: bool = True,
                  day: str = "2026-12-03") -> str:
    request = request_for(tmp_path, f"b{n}", DIGEST[:-2] + f"{n:02d}", staged=staged)
    outcomes = gallery.publish(request, today=time.strptime(day, "%Y-%m-%d"))
    return outcomes[0].version


def set_published(gallery: LocalGallery, definition: str, version: str, when: str) -> None:
    path = gallery.version_dir(definition, version) / "version.json"
    data = json.loads(path.read_text())
    path.chmod(0o644)
    path.write_text(json.dumps({**data, "published": when}))


@pytest.fixture
def gallery(tmp_path: Path) -> LocalGallery:
    return LocalGallery.at(tmp_path / "gallery")


def test_promote_includes_a_staged_local_version_in_latest(gallery: LocalGallery, tmp_path: Path) -> None:
    old = publish_local(gallery, tmp_path, 1, staged=False)
    new = publish_local(gallery, tmp_path, 2)
    assert gallery.latest(GEN2).version == old  # staged: latest did not move
    result = promote(LocalPromoteGallery(gallery), PromoteOptions(items=((GEN2, new),)))
    assert result.promoted == [{"definition": GEN2, "version": new, "changed": True}]
    assert result.latest == {GEN2: new} and gallery.latest(GEN2).version == new
    assert gallery.latest(GEN1).version == old  # only what was named
    path = gallery.version_dir(GEN2, new) / "version.json"
    record = json.loads(path.read_text())
    assert record["exclude_from_latest"] is False and len(record["promotions"]) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o444  # still read-only by convention
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".version.json")] == []  # no temp left
    again = promote(LocalPromoteGallery(gallery), PromoteOptions(items=((GEN2, new),)))
    assert again.promoted == [{"definition": GEN2, "version": new, "changed": False}]


def test_an_unknown_version_changes_nothing(gallery: LocalGallery, tmp_path: Path) -> None:
    new = publish_local(gallery, tmp_path, 1)
    with pytest.raises(NotFoundError, match=r"no version 9\.9\.9"):
        promote(LocalPromoteGallery(gallery), PromoteOptions(items=((GEN1, new), (GEN2, "9.9.9"))))
    assert gallery.version(GEN1, new).exclude_from_latest  # looked up first, nothing changed


def test_cleanup_deletes_old_staging_versions_only(gallery: LocalGallery, tmp_path: Path) -> None:
    released = publish_local(gallery, tmp_path, 1, staged=False, day="2026-10-01")
    stale = publish_local(gallery, tmp_path, 2, day="2026-10-02")
    recent = publish_local(gallery, tmp_path, 3, day="2026-12-01")
    new = publish_local(gallery, tmp_path, 4, day="2026-12-03")
    for version, when in ((released, "2026-10-01T00:00:00Z"), (stale, "2026-10-02T00:00:00Z"),
                          (recent, "2026-12-01T00:00:00Z"), (new, "2026-12-03T00:00:00Z")):
        set_published(gallery, GEN2, version, when)
    options = PromoteOptions(items=((GEN2, new),), delete_older_than_days=14)
    result = promote(LocalPromoteGallery(gallery), options, at=NOW)
    assert [d["version"] for d in result.deleted] == [stale]
    kept = {k["version"]: k["reason"] for k in result.kept}
    assert kept[released].startswith("takes part in 'latest'")
    assert kept[recent].startswith("published 2.5 days ago")
    assert kept[new] == "the latest version"
    assert [v.version for v in gallery.versions(GEN2)] == [released, recent, new]
    assert [v.version for v in gallery.versions(GEN1)] == [released, stale, recent, new]  # not named: untouched


def test_include_latest_deletes_old_released_versions_but_never_the_latest(gallery: LocalGallery,
                                                                            tmp_path: Path) -> None:
    first = publish_local(gallery, tmp_path, 1, staged=False, day="2026-10-01")
    second = publish_local(gallery, tmp_path, 2, staged=False, day="2026-10-02")
    for version in (first, second):
        set_published(gallery, GEN1, version, "2026-10-01T00:00:00Z")
    options = PromoteOptions(delete_older_than_days=14, include_latest=True, definitions=(GEN1,), dry_run=True)
    result = promote(LocalPromoteGallery(gallery), options, at=NOW)
    assert [d["version"] for d in result.deleted] == [first] and result.dry_run
    assert [v.version for v in gallery.versions(GEN1)] == [first, second]  # a dry run deletes nothing
    result = promote(LocalPromoteGallery(gallery), dataclasses.replace(options, dry_run=False), at=NOW)
    assert [v.version for v in gallery.versions(GEN1)] == [second] and result.latest == {GEN1: second}


def test_keep_reason_rules() -> None:
    def version(v: str, excluded: bool, days_old: float | None) -> GalleryVersion:
        published = None if days_old is None else NOW - dt.timedelta(days=days_old)
        return GalleryVersion("d", v, excluded, published)

    latest = version("1.0.5", False, 100)
    common: dict[str, Any] = {"latest": latest, "promoted": {("d", "1.0.9")}, "days": 14, "at": NOW}
    assert keep_reason(latest, include_latest=True, **common) == "the latest version"
    assert keep_reason(version("1.0.9", True, 100), include_latest=True, **common) == "promoted by this call"
    assert keep_reason(version("1.0.1", False, 100), include_latest=False, **common).startswith("takes part")
    assert keep_reason(version("1.0.1", False, 100), include_latest=True, **common) is None
    assert keep_reason(version("1.0.2", True, None), include_latest=False, **common).startswith("the gallery does")
    assert keep_reason(version("1.0.3", True, 3), include_latest=False, **common).startswith("published 3.0 days")
    assert keep_reason(version("1.0.4", True, 15), include_latest=False, **common) is None


@pytest.mark.parametrize("text", ["nodefinition", "def/", "/1.0.0", "def/1.0", "def/1.0.0/x"])
def test_parse_item_refuses_what_is_not_definition_slash_version(text: str) -> None:
    with pytest.raises(Exception, match=r"DEFINITION/VERSION|Major\.Minor\.Patch"):
        parse_item(text)


def test_cli_promotes_what_a_build_was_published_as(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    request = request_for(tmp_path, "b1", DIGEST)
    monkeypatch.setattr(publish_stage, "_prepare", lambda build, options: request)  # the gate is tested elsewhere
    where = tmp_path / "gallery"
    publish_stage.run(request.build, PublishOptions(target=LocalTarget(where), exclude_from_latest=True))
    gallery = LocalGallery.at(where)
    assert gallery.latest(GEN1) is None and gallery.latest(GEN2) is None
    assert main(["promote", "--build", str(request.build.path), "--to", f"local:{where}", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(p["definition"] for p in out["promoted"] if p["changed"]) == [GEN1, GEN2]
    assert gallery.latest(GEN1) is not None and gallery.latest(GEN2) is not None
    assert main(["promote", "--build", str(request.build.path), "--to", f"local:{tmp_path / 'other'}"]) == 2
    assert "no successful publish to local:" in capsys.readouterr().err


def test_cli_needs_something_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["promote", "--to", f"local:{tmp_path / 'g'}"]) == UsageError.exit_code
    assert "nothing to do" in capsys.readouterr().err
    assert main(["promote", "--to", f"local:{tmp_path / 'g'}", "--delete-older-than", "-1"]) == UsageError.exit_code


# -- Azure, against the local fake ARM endpoint ------------------------------------------------------------

SUB = "00000000-0000-0000-0000-000000000001"
RG, GALLERY, DEFINITION = "images-rg", "harness_gallery", "testdistro-base-gen2"


@pytest.fixture
def fake_arm() -> Iterator[FakeArm]:
    with running_fake_arm() as fake:
        yield fake


def azure(fake: FakeArm) -> Arm:
    target = AzureTarget(subscription_id=SUB, resource_group=RG, location="westeurope", gallery=GALLERY,
                         arm_endpoint=fake.url)
    return Arm(compute_client(target), RG, "westeurope")


def seed(fake: FakeArm, versions: list[tuple[str, bool, str]]) -> Arm:
    """A gallery, a V2 definition and versions (version, excluded from latest, published date)."""
    arm = azure(fake)
    arm.ensure_gallery(GALLERY)
    arm.ensure_definition(GALLERY, model.ImageDefinition(DEFINITION, "harness-tests", "testdistro", "base",
                                                         "Generalized", "V2"))
    for version, excluded, published in versions:
        arm.create_version(GALLERY, DEFINITION, version, blob_url="https://account.blob.core.windows.net/vhds/x.vhd",
                           storage_account_id="/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/"
                           "storageAccounts/account", regions=[Region("westeurope", 1, "Standard_LRS"),
                                                               Region("northeurope", 2, "Standard_ZRS")],
                           replica_count=1, storage_account_type="Standard_LRS", exclude_from_latest=excluded,
                           end_of_life=None, tags={"harness-content-digest": version})
        key = next(k for k in fake.resources if k.endswith(f"/versions/{version}"))
        fake.resources[key]["properties"]["publishingProfile"]["publishedDate"] = published
    return arm


def test_azure_promote_patches_the_publishing_profile_and_deletes_old_staging_versions(fake_arm: FakeArm) -> None:
    arm = seed(fake_arm, [("1.0.0", False, "2026-09-01T00:00:00Z"), ("1.0.1", True, "2026-10-01T00:00:00Z"),
                          ("1.0.2", True, "2026-12-02T00:00:00Z"), ("1.0.3", True, "2026-12-03T00:00:00Z")])
    gallery = AzurePromoteGallery(arm, GALLERY)
    result = promote(gallery, PromoteOptions(items=((DEFINITION, "1.0.3"),), delete_older_than_days=14), at=NOW)
    patches = fake_arm.bodies("PATCH", r"/versions/1\.0\.3$")
    assert patches == [{"properties": {"publishingProfile": {"excludeFromLatest": False, "targetRegions": [
        {"name": "westeurope", "regionalReplicaCount": 1, "storageAccountType": "Standard_LRS"},
        {"name": "northeurope", "regionalReplicaCount": 2, "storageAccountType": "Standard_ZRS"}]}}}]
    assert [r.path.rsplit("/", 1)[-1] for r in fake_arm.requests if r.method == "DELETE"] == ["1.0.1"]
    assert [d["version"] for d in result.deleted] == ["1.0.1"] and result.latest == {DEFINITION: "1.0.3"}
    after = {v.version: v for v in gallery.versions(DEFINITION)}
    assert sorted(after) == ["1.0.0", "1.0.2", "1.0.3"]
    assert not after["1.0.3"].exclude_from_latest and after["1.0.2"].exclude_from_latest
    stored = next(r for k, r in fake_arm.resources.items() if k.endswith("/versions/1.0.3"))
    assert stored["properties"]["storageProfile"]["osDiskImage"]["source"]["uri"].endswith("/x.vhd")  # untouched
    assert stored["properties"]["provisioningState"] == "Succeeded"


def test_azure_promote_from_the_command_line_needs_no_storage_account(fake_arm: FakeArm, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("AZURE_SUBSCRIPTION_ID", "HARNESS_AZURE_CONFIG", "AZURE_STORAGE_CONNECTION_STRING"):
        monkeypatch.delenv(name, raising=False)
    seed(fake_arm, [("1.0.0", True, "2026-12-03T00:00:00Z")])
    argv = ["promote", f"{DEFINITION}/1.0.0", "--to", "azure", "--subscription", SUB, "--resource-group", RG,
            "--location", "westeurope", "--azure-gallery", GALLERY, "--arm-endpoint", fake_arm.url, "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["promoted"] == [{"definition": DEFINITION, "version": "1.0.0", "changed": True}]
    assert out["latest"] == {DEFINITION: "1.0.0"}
    assert main([*argv[:2], "--to", "azure", "--subscription", SUB, "--resource-group", RG, "--location",
                 "westeurope", "--arm-endpoint", fake_arm.url]) == UsageError.exit_code
    assert "azure-gallery" in capsys.readouterr().err


def test_azure_promote_of_a_missing_version_is_an_error(fake_arm: FakeArm) -> None:
    gallery = AzurePromoteGallery(seed(fake_arm, [("1.0.0", True, "2026-12-03T00:00:00Z")]), GALLERY)
    with pytest.raises(NotFoundError, match=r"no version 2\.0\.0"):
        promote(gallery, PromoteOptions(items=((DEFINITION, "2.0.0"),)))
    assert fake_arm.bodies("PATCH", ".") == []
