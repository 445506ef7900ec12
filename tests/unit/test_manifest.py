"""The typed manifest: JSON round trip, schema 1 read, one clear error for anything that is not a manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import vhd
from harness.buildfolder import read_json
from harness.enums import Stage
from harness.errors import NotFoundError
from harness.manifest import Manifest, VhdInfo
from harness.results import load_stage
from tests.factories import make_build, manifest_data


def test_round_trip_keeps_every_field_and_unknown_keys() -> None:
    data = manifest_data(packages=[{"name": "a", "version": "1", "arch": "amd64"}], kernel_version="6.1",
                         settings=[{"file": "/f", "key": "k", "value": "v", "style": "kv", "reason": "r"}],
                         future_key={"x": 1})
    manifest = Manifest.from_json(data)
    again = Manifest.from_json(manifest.to_json())
    assert again == manifest
    assert again.to_json()["future_key"] == {"x": 1}


def test_schema_1_manifest_reads_and_drops_host_paths() -> None:
    old = manifest_data(schema=1, recipe_path="/home/someone/harness/distros/debian-12.toml")
    old["disk"]["partition_table"] = [{"node": "/tmp/x/disk.raw1", "start": 2048, "type": "x"}]
    manifest = Manifest.from_json(old)
    assert manifest.recipe_source == "debian-12.toml"
    assert manifest.disk.partition_table == ({"start": 2048, "type": "x"},)
    assert "/home/someone" not in str(manifest.to_json())


@pytest.mark.parametrize("data", [[], {"disk": "x"}, "text", {"recipe": "r"}, manifest_data(schema=99),
                                  manifest_data(family="pacman")])
def test_anything_else_is_one_clear_error(data: object) -> None:
    with pytest.raises(NotFoundError, match="manifest"):
        Manifest.from_json(data, "build/manifest.json")


def test_vhd_info_from_a_real_footer(tmp_path: Path) -> None:
    disk = tmp_path / "disk.raw"
    disk.write_bytes(bytes(21 * 1024 * 1024))
    vhd.to_fixed_vhd(disk)
    footer = vhd.describe(vhd.read_footer(disk))
    info = VhdInfo.from_json({**footer, "footer_timestamp": footer["timestamp"], "converted": "t"})
    assert info.geometry == tuple(footer["geometry"]) and info.current_size == 21 * 1024 * 1024
    assert VhdInfo.from_json(info.to_json()) == info


def test_a_number_too_long_to_convert_is_invalid_json_not_a_bug(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text('{"schema": 2, "x": ' + "1" * 5000 + "}")
    with pytest.raises(NotFoundError, match="is not valid JSON"):
        read_json(path)


@pytest.mark.parametrize("text", ['{"stage": "check", "records": [1]}', '{"stage": "bogus"}',
                                  '{"stage": "check", "duration_s": "soon"}'])
def test_a_damaged_stage_file_is_one_clear_error(tmp_path: Path, text: str) -> None:
    build = make_build(tmp_path)
    build.stage_file("check").write_text(text)
    with pytest.raises(NotFoundError, match=r"check\.json is damaged: not a stage report"):
        load_stage(build, Stage.CHECK)
