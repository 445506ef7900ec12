"""Vendor-image route, pure parts: checksum lists, sizes, the customization program's pieces, the facts disk."""

from __future__ import annotations

import base64
import io
import tarfile
from pathlib import Path

import pytest
import yaml

from harness import proc, recipe
from harness.builder import customize, fetch, vendor
from harness.builder.context import BuildOptions
from harness.builder.families import APT, DNF
from harness.builder.pipeline import make_context
from harness.errors import BuildError
from harness.recipe import Setting

SHA256 = "a" * 64
SHA512 = "b" * 128
WHIRLPOOL = "c" * 128
IMAGE = "flatcar_production_azure_image.vhd.bz2"


def test_checksums_coreutils_style_with_binary_marker() -> None:
    text = f"{'d' * 64}  other.qcow2\n{SHA256} *disk.qcow2\n"
    assert fetch.parse_checksums(text, "disk.qcow2") == fetch.Digest("sha256", SHA256)
    assert fetch.parse_checksums(text, "missing.qcow2") is None


def test_checksums_bsd_style_as_centos_publishes_them() -> None:
    text = f"# CentOS-Stream-GenericCloud-9-latest.x86_64.qcow2: 1234 bytes\n" \
           f"SHA256 (CentOS-Stream-GenericCloud-9-latest.x86_64.qcow2) = {SHA256.upper()}\n"
    digest = fetch.parse_checksums(text, "CentOS-Stream-GenericCloud-9-latest.x86_64.qcow2")
    assert digest == fetch.Digest("sha256", SHA256)


def test_checksums_digests_file_takes_sha512_and_ignores_other_128_hex_algorithms() -> None:
    text = (f"# MD5 HASH\n{'e' * 32}  {IMAGE}\n# SHA1 HASH\n{'f' * 40}  {IMAGE}\n"
            f"# WHIRLPOOL HASH\n{WHIRLPOOL}  {IMAGE}\n# SHA512 HASH\n{SHA512}  {IMAGE}\n")
    assert fetch.parse_checksums(text, IMAGE) == fetch.Digest("sha512", SHA512)
    only_whirlpool = f"# WHIRLPOOL HASH\n{WHIRLPOOL}  {IMAGE}\n"
    assert fetch.parse_checksums(only_whirlpool, IMAGE) is None


def test_digest_of_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert fetch.Digest("sha256", "").of_file(path) == \
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_url_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    assert fetch.file_name("https://h/a/b/img.qcow2?sig=x") == "img.qcow2"
    assert fetch.local_path("file:///var/lib/a%20b.qcow2") == Path("/var/lib/a b.qcow2")
    assert fetch.endpoint("https://mirror.example:8443/x") == ("mirror.example", 8443)
    monkeypatch.setenv("https_proxy", "http://proxy.internal:3128")
    monkeypatch.setenv("no_proxy", "")
    assert fetch.endpoint("https://mirror.example/x") == ("proxy.internal", 3128)


def test_probe_of_a_missing_local_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"does not exist: recipe r needs it"):
        fetch.probe(str(tmp_path / "absent.qcow2"), "recipe r")


def test_target_size_is_a_whole_mib_and_never_shrinks_the_image() -> None:
    mib = 1024 * 1024
    assert vendor.target_size(10 * 1024 * mib + 1, 4096) == (10 * 1024 + 1) * mib
    assert vendor.target_size(2 * 1024 * mib, 4096) == 4096 * mib
    assert vendor.convert_argv(Path("/c/i.vhd"), "vpc", Path("/w/disk.raw")) == [
        "qemu-img", "convert", "-f", "vpc", "-O", "raw", "/c/i.vhd", "/w/disk.raw"]


def test_setting_calls_quote_every_value() -> None:
    assert customize.setting_call(Setting(file="/etc/a b.conf", value="x'y\n", reason="r", style="file")) == \
        "harness_set_file '/etc/a b.conf' 'x'\"'\"'y\n'"
    assert customize.setting_call(Setting(file="/etc/dhcp/dhclient.conf", value="timeout 300;", reason="r",
                                          style="line")) == "harness_set_line /etc/dhcp/dhclient.conf 'timeout 300;'"
    call = customize.setting_call(Setting(file="/etc/default/grub", key="GRUB_TERMINAL", value="console serial",
                                          reason="r", style="shell"))
    assert call == "harness_set_key /etc/default/grub shell GRUB_TERMINAL 'GRUB_TERMINAL=\"console serial\"'"


def test_environment_carries_packages_units_and_the_family_policies() -> None:
    ctx = make_context(recipe.load("rhel-9"), BuildOptions(agent="waagent"))
    env = customize.environment(ctx, DNF)
    assert "HARNESS_REMOVE_PACKAGES=(cloud-init)\n" in env
    assert "HARNESS_PACKAGES=(cloud-utils-growpart hyperv-daemons WALinuxAgent WALinuxAgent-udev)\n" in env
    assert "HARNESS_ENABLE_UNITS=(waagent.service)\n" in env
    assert "HARNESS_MACHINE_ID=uninitialized\n" in env
    assert "HARNESS_BOOT_FILES=(/etc/default/grub /etc/kernel/cmdline)\n" in env
    assert "HARNESS_MACHINE_ID=empty\n" in customize.environment(ctx, APT)


def test_user_data_writes_the_program_and_starts_it_after_cloud_final() -> None:
    data = yaml.safe_load(customize.user_data("echo 'hi'\n"))
    (entry,) = data["write_files"]
    assert base64.b64decode(entry["content"]) == b"echo 'hi'\n" and entry["path"] == customize.GUEST_PROGRAM
    assert "--property=After=cloud-final.service" in data["runcmd"][0]
    assert data["preserve_hostname"] is True and data["resize_rootfs"] is False


def _facts_disk(tmp_path: Path, files: dict[str, str]) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    disk = tmp_path / "facts.raw"
    disk.write_bytes(buffer.getvalue() + bytes(1024 * 1024))
    return disk


def test_facts_are_read_from_the_tar_the_guest_wrote(tmp_path: Path) -> None:
    disk = _facts_disk(tmp_path, {"status": "0\n", "seal-status": "0\n", "customize.log": "done\n",
                                  "packages.tsv": "bash\t5.2.15-2+b7\tamd64\nbroken line\n",
                                  "kernel": "6.1.0-28-cloud-amd64\n", "root-uuid": "ABCD-1\n"})
    facts = customize.read_facts(disk)
    assert facts.failure() is None and facts.kernel_version == "6.1.0-28-cloud-amd64" and facts.root_uuid == "abcd-1"
    assert facts.packages == [{"name": "bash", "version": "5.2.15-2+b7", "arch": "amd64"}]


def test_failed_customization_and_missing_facts_are_errors(tmp_path: Path) -> None:
    failed = customize.read_facts(_facts_disk(tmp_path, {"status": "100\n", "seal-status": "0\n"}))
    assert failed.failure() == "the customization failed with exit status 100"
    blank = tmp_path / "blank.raw"
    blank.write_bytes(bytes(1024 * 1024))
    with pytest.raises(BuildError, match="wrote no"):
        customize.read_facts(blank)


def test_customization_asks_the_package_tool_only_for_what_is_missing_or_present(tmp_path: Path) -> None:
    """main.sh picks the packages; a family's family_install/family_remove only run its tool."""
    library = customize.snippet("common/main.sh").rsplit("harness_main", 1)[0]
    script = tmp_path / "t.sh"
    script.write_text("set -euo pipefail\n" + library + """
family_installed() { case "$1" in waagent|hyperv-daemons) return 0 ;; *) return 1 ;; esac; }
family_install() { echo "install $*"; }
family_remove() { echo "remove $*"; }
harness_install_missing cloud-init waagent gdisk
harness_remove_present hyperv-daemons swapspace
harness_install_missing waagent
harness_remove_present swapspace
""")
    result = proc.run(["bash", str(script)], check=False)
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines() == ["install cloud-init gdisk", "remove hyperv-daemons"]


def test_in_guest_seal_unregisters_before_sealing() -> None:
    text = customize.snippet("common/seal.sh")
    unregister = text[text.index("harness_unregister() {"):text.index("\n}\n", text.index("harness_unregister() {"))]
    assert "subscription-manager unregister" in unregister and "subscription-manager clean" in unregister
    assert "SUSEConnect --cleanup" in unregister
    body = text[text.index("harness_seal() {"):]
    assert body.index("harness_unregister") < body.index("family_clean")
