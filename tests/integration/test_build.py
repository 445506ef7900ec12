"""Real builds of debian-12 and ubuntu-24.04 (small test disks), checked offline without mounting."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from harness import proc
from harness import recipe as recipe_mod
from harness.builder.context import BuildOptions
from harness.builder.pipeline import build
from harness.buildfolder import BuildFolder, builds_root, list_builds
from harness.digest import content_digest
from harness.errors import CommandError
from tests.conftest import TEST_DISK_MIB

pytestmark = pytest.mark.network

RECIPES = ["debian12_build", "ubuntu2404_build"]


def root_offset(b: BuildFolder) -> int:
    root = b.manifest().disk.partition("root")
    assert root is not None
    return root.start_bytes


def debugfs(b: BuildFolder, request: str) -> str:
    return proc.run(["debugfs", "-c", "-R", request, f"{b.disk()}?offset={root_offset(b)}"]).stdout


@pytest.fixture(params=RECIPES)
def built(request: pytest.FixtureRequest) -> BuildFolder:
    folder: BuildFolder = request.getfixturevalue(request.param)
    return folder


def test_manifest_records_the_build(built: BuildFolder) -> None:
    m = built.manifest()
    assert m.build_id == built.path.name and m.recipe == built.path.parent.name
    assert len(m.cache_key) == 64 and m.archives
    assert m.disk.size_bytes == TEST_DISK_MIB * 1024 * 1024
    assert [p["name"] for p in m.disk.partition_table] == ["bios", "esp", "root"]
    names = m.package_versions()
    assert "openssh-server" in names and all(names.values())
    assert m.kernel_version and m.content_digest == content_digest(built.disk(), m.disk.size_bytes)
    assert {"bootstrap_rootfs", "assemble_disk", "digest"} <= set(m.timings_s)
    assert m.agent == "cloud-init" and m.os_state == "generalized"


def test_hybrid_gpt_with_three_partitions(built: BuildFolder) -> None:
    table = json.loads(proc.run(["sfdisk", "-J", str(built.disk())]).stdout)["partitiontable"]
    assert table["label"] == "gpt"
    types = [p["type"].upper() for p in table["partitions"]]
    assert types == ["21686148-6449-6E6F-744E-656564454649", "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
                     "0FC63DAF-8483-4772-8E79-3D69D8477DE4"]
    assert all(p["start"] % 2048 == 0 for p in table["partitions"])
    listing = proc.run(["sfdisk", "-l", str(built.disk())]).stdout
    assert "EFI System" in listing and "BIOS boot" in listing


def test_bios_boot_code_points_at_core_img(built: BuildFolder) -> None:
    with built.disk().open("rb") as handle:
        mbr = handle.read(512)
        handle.seek(2048 * 512)
        core_first = handle.read(512)
    assert struct.unpack_from("<Q", mbr, 0x5C)[0] == 2048
    assert mbr[510:512] == b"\x55\xaa"
    start, length, segment = struct.unpack_from("<QHH", core_first, 500)
    assert (start, segment) == (2049, 0x820) and length > 10


def test_esp_holds_the_removable_media_loader(built: BuildFolder) -> None:
    partition = built.manifest().disk.partition("esp")
    assert partition is not None
    esp = partition.start_bytes
    out = proc.run(["mdir", "-b", "-i", f"{built.disk()}@@{esp}", "::/EFI/BOOT"]).stdout
    assert "BOOTX64.EFI" in out.upper()


def test_grub_config_kernel_and_initramfs(built: BuildFolder) -> None:
    m = built.manifest()
    cfg = debugfs(built, "cat /boot/grub/grub.cfg")
    assert f"root=UUID={m.disk.root_uuid}" in cfg
    for param in m.kernel_cmdline:
        assert param in cfg
    boot = debugfs(built, "ls /boot")
    assert f"vmlinuz-{m.kernel_version}" in boot and f"initrd.img-{m.kernel_version}" in boot
    modules = debugfs(built, "ls /boot/grub")
    assert "i386-pc" in modules and "x86_64-efi" in modules
    fstab = debugfs(built, "cat /etc/fstab")
    assert f"UUID={m.disk.root_uuid} / ext4" in fstab and "swap" not in fstab


def test_hyperv_drivers_in_initramfs_or_built_in(built: BuildFolder, tmp_path: Path) -> None:
    version = built.manifest().kernel_version
    config = debugfs(built, f"cat /boot/config-{version}")
    initrd = tmp_path / "initrd"
    debugfs(built, f"dump /boot/initrd.img-{version} {initrd}")
    listing = proc.run(["lsinitramfs", str(initrd)]).stdout
    for module, option in (("hv_vmbus", "CONFIG_HYPERV"), ("hv_storvsc", "CONFIG_HYPERV_STORAGE"),
                           ("hv_netvsc", "CONFIG_HYPERV_NET")):
        in_initrd = f"/{module}.ko" in listing.replace(".ko.zst", ".ko").replace(".ko.xz", ".ko")
        assert in_initrd or f"{option}=y" in config, module


def test_generalized(built: BuildFolder) -> None:
    assert "ssh_host_" not in debugfs(built, "ls /etc/ssh")
    assert debugfs(built, "cat /etc/machine-id").strip() in ("", "uninitialized")
    assert debugfs(built, "cat /etc/hostname").strip() == "localhost"
    cloud_state = debugfs(built, "ls /var/lib/cloud")
    assert "instance" not in cloud_state and "data" not in cloud_state


def test_unchanged_recipe_is_a_cache_hit(debian12_build: BuildFolder) -> None:
    result = build(recipe_mod.load("debian-12"), BuildOptions(disk_size_mib=TEST_DISK_MIB))
    assert result.cache_hit and result.folder.path == debian12_build.path


def test_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    bad = tmp_path / "debian-12.toml"
    text = recipe_mod.load("debian-12").path.read_text().replace('"less",', '"no-such-package-xyz",')
    bad.write_text(text)
    before = {b.path for b in list_builds("debian-12")}
    with pytest.raises(CommandError) as info:
        build(recipe_mod.load(bad), BuildOptions(disk_size_mib=TEST_DISK_MIB))
    assert "does not exist in bookworm" in info.value.hint
    assert {b.path for b in list_builds("debian-12")} == before
    assert list((builds_root() / "debian-12").glob(".tmp-*")) == []


def test_the_real_builds_sbom_is_valid_spdx_with_every_installed_package(built: BuildFolder) -> None:
    """The SPDX project's own parser and validator find nothing to say about a real build's SBOM."""
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    path = built.path / "sbom.spdx.json"
    messages = [m.validation_message for m in validate_full_spdx_document(parse_file(str(path)))]
    assert messages == []
    document = json.loads(path.read_text())
    manifest = built.manifest()
    family = "ubuntu" if manifest.recipe.startswith("ubuntu") else "debian"
    purls = {ref["referenceLocator"] for p in document["packages"] for ref in p.get("externalRefs", [])
             if ref.get("referenceType") == "purl"}
    for package in manifest.packages:
        assert any(p.startswith(f"pkg:deb/{family}/{package.name.replace('+', '%2B')}@") for p in purls), package.name
    kernel = [p for p in document["packages"] if manifest.kernel_version in p["name"] + p.get("versionInfo", "")]
    assert kernel, "the kernel is a package of its own"
