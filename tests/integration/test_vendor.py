"""The vendor-image route for real, with a locally built image standing in for a vendor's: the debian-12-generic
build (NoCloud enabled) exported as qcow2 and served over loopback HTTP with Range support.

Download, resume, checksum and signature tests are local and quick. The stand-in build boots once (the
customization boot) and is verified with one more boot (bios only), as the test budget allows.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import proc
from harness import recipe as recipe_mod
from harness.builder import fetch, vendor
from harness.builder.context import BuildOptions
from harness.builder.customize import DONE_MARKER
from harness.builder.pipeline import build, make_context
from harness.buildfolder import BuildFolder, builds_root
from harness.checks.audit import audit
from harness.enums import Firmware, KeepPolicy
from harness.errors import BuildError, CommandError
from harness.recipe import DISTROS_DIR
from harness.results import FAILED, PASSED
from harness.stages.verify import VerifyOptions
from harness.stages.verify import run as verify
from tests.conftest import TEST_DISK_MIB, build_recipe
from tests.integration.rangeserver import RangeServer, closed_port

MIB = 1024 * 1024
STANDIN = "vendor-standin"
EXTRA_PACKAGE = "tree"


def standin_recipe(folder: Path, url: str, image_source: str, name: str = STANDIN) -> Path:
    """debian-12's recipe (family apt, same packages and declared settings) with a base image as its source."""
    text = (DISTROS_DIR / "debian-12.toml").read_text().replace('name = "debian-12"', f'name = "{name}"')
    text = text.replace('[source]\nbootstrap = "mmdebstrap"\ncomponents = ["main"]\n',
                        f'[source]\n{image_source.format(url=url)}')
    assert "base_image" in text
    # a package the stand-in image lacks: the customization installs it from the archive through its proxy
    text = text.replace('"eject", "waagent",', f'"eject", "waagent", "{EXTRA_PACKAGE}",')
    assert EXTRA_PACKAGE in text
    path = folder / f"{name}.toml"
    path.write_text(text.replace('sku = "12"', f'sku = "{name}"'))
    return path


def pinned(digest: str) -> str:
    return f'[source.base_image]\nurl = "{{url}}"\nsha256 = "{digest}"\nformat = "qcow2"\n'


# ---------------------------------------------------------------------------------------------
# Download: resume, checksum, signature, unreachable host (local, no boot).

@pytest.fixture
def served(tmp_path: Path) -> tuple[Path, bytes]:
    folder = tmp_path / "srv"
    folder.mkdir()
    data = os.urandom(3 * MIB + 4321)
    (folder / "image.qcow2").write_bytes(data)
    return folder, data


def sha256(data: bytes) -> fetch.Digest:
    return fetch.Digest("sha256", hashlib.sha256(data).hexdigest())


def test_interrupted_download_resumes_without_sending_a_byte_twice(tmp_path: Path, served: tuple[Path, bytes]) -> None:
    folder, data = served
    cut = MIB + 123
    dest = tmp_path / "cache" / "image.qcow2"
    with RangeServer(folder, cut_first_get={"/image.qcow2": cut}) as server:
        fetch.download(f"{server.url}/image.qcow2", dest, sha256(data))
        gets = server.gets("/image.qcow2")
    assert [(g.range, g.status, g.bytes_sent) for g in gets] == [(None, 200, cut),
                                                                 (f"bytes={cut}-", 206, len(data) - cut)]
    assert sum(g.bytes_sent for g in gets) == len(data)
    assert dest.read_bytes() == data and sorted(dest.parent.iterdir()) == [dest]


def test_a_partial_file_from_an_earlier_run_is_resumed(tmp_path: Path, served: tuple[Path, bytes]) -> None:
    folder, data = served
    dest = tmp_path / "cache" / "image.qcow2"
    dest.parent.mkdir()
    dest.with_name("image.qcow2.part").write_bytes(data[:2 * MIB])
    with RangeServer(folder) as server:
        fetch.download(f"{server.url}/image.qcow2", dest, sha256(data))
        gets = server.gets("/image.qcow2")
    assert [(g.range, g.bytes_sent) for g in gets] == [(f"bytes={2 * MIB}-", len(data) - 2 * MIB)]
    assert dest.read_bytes() == data


def test_checksum_mismatch_is_refused_and_nothing_is_left_in_the_cache(tmp_path: Path,
                                                                       served: tuple[Path, bytes]) -> None:
    folder, data = served
    cache = tmp_path / "cache"
    wrong = sha256(data + b"x")
    with RangeServer(folder) as server, pytest.raises(BuildError) as info:
        fetch.download(f"{server.url}/image.qcow2", cache / "image.qcow2", wrong)
    assert info.value.message == (f"image.qcow2 has sha256 {sha256(data).value}, expected {wrong.value}; the "
                                  "partial download was deleted")
    assert "check the recipe's digest" in info.value.hint
    assert list(cache.iterdir()) == []


def test_unreachable_base_image_host_fails_fast_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_BUILDS", str(tmp_path / "builds"))
    port = closed_port()
    path = standin_recipe(tmp_path, f"http://127.0.0.1:{port}/image.qcow2", pinned("0" * 64), name="unreachable")
    started = time.monotonic()
    with pytest.raises(fetch.UnreachableError) as info:
        build(recipe_mod.load(path), BuildOptions(disk_size_mib=TEST_DISK_MIB))
    assert time.monotonic() - started < 5
    assert info.value.message.startswith(f"cannot reach 127.0.0.1:{port} (")
    assert info.value.message.endswith("recipe unreachable needs network access to it")
    assert list((tmp_path / "builds/unreachable").iterdir()) == []


@pytest.fixture
def signing_key(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """A throw-away OpenPGP key in its own GNUPGHOME (its agent is stopped afterwards) and its public keyring."""
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    try:
        proc.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "harness test <test@invalid>", "ed25519",
                 "sign", "never"], env=env)
        keyring = tmp_path / "vendor-key.gpg"
        proc.run(["gpg", "--batch", "--export", "-o", str(keyring)], env=env)
        yield env, keyring
    finally:
        proc.run(["gpgconf", "--kill", "gpg-agent"], env=env, check=False)


def test_checksum_list_and_its_signature_are_checked(tmp_path: Path, served: tuple[Path, bytes],
                                                     signing_key: tuple[dict[str, str], Path],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    folder, data = served
    env, keyring = signing_key
    monkeypatch.setenv("HARNESS_BUILDS", str(tmp_path / "builds"))
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    (folder / "SHA256SUMS").write_text(f"{'0' * 64}  other.qcow2\n{sha256(data).value}  image.qcow2\n")
    proc.run(["gpg", "--batch", "--yes", "--detach-sign", "-o", str(folder / "SHA256SUMS.sig"),
             str(folder / "SHA256SUMS")], env=env)
    source = (f'keyring = "{keyring}"\n' '[source.base_image]\nurl = "{url}/image.qcow2"\n'
              'checksum_url = "{url}/SHA256SUMS"\nsignature = "{url}/SHA256SUMS.sig"\nformat = "qcow2"\n')
    with RangeServer(folder) as server:
        path = standin_recipe(tmp_path, server.url, source)
        ctx = make_context(recipe_mod.load(path), BuildOptions(disk_size_mib=TEST_DISK_MIB))
        ctx.work_dir.mkdir(parents=True)
        assert vendor.probe(ctx) == {"base_image": f"sha256:{sha256(data).value}"}
        vendor.fetch_base_image(ctx)
        assert Path(ctx.facts["base_image_path"]).read_bytes() == data
        (folder / "SHA256SUMS").write_text(f"{sha256(data).value}  image.qcow2\n")  # altered after signing
        ctx = make_context(ctx.recipe, BuildOptions(disk_size_mib=TEST_DISK_MIB))
        ctx.work_dir.mkdir(parents=True)
        vendor.probe(ctx)
        with pytest.raises(CommandError) as info:
            vendor.fetch_base_image(ctx)
    assert "does not verify" in info.value.hint and info.value.argv[0].endswith("gpgv")


# ---------------------------------------------------------------------------------------------
# The stand-in vendor image: one customization boot, the offline audit, one verify boot.

@pytest.fixture(scope="session")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BuildFolder, Path, RangeServer]]:
    """debian-12-generic as a vendor qcow2, built through the vendor route into a vendor-standin build."""
    generic = build_recipe("debian-12-generic")
    folder = tmp_path_factory.mktemp("vendor")
    image = folder / "srv" / "debian-12-generic.qcow2"
    image.parent.mkdir()
    proc.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(generic.disk()), str(image)])
    digest = fetch.Digest("sha256", "").of_file(image)
    shutil.rmtree(builds_root() / STANDIN, ignore_errors=True)  # one stand-in build at a time
    with RangeServer(image.parent) as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARNESS_CACHE", str(folder / "cache"))  # a cold download cache
        path = standin_recipe(folder, f"{server.url}/{image.name}", pinned(digest))
        result = build(recipe_mod.load(path), BuildOptions(disk_size_mib=TEST_DISK_MIB))
        yield result.folder, image, server


def debugfs(folder: BuildFolder, request: str) -> str:
    root = folder.manifest().disk.partition("root")
    assert root is not None
    return proc.run(["debugfs", "-c", "-R", request, f"{folder.disk()}?offset={root.start_bytes}"]).stdout


@pytest.mark.qemu
@pytest.mark.network
@pytest.mark.nightly  # builds debian-12-generic (a recipe beyond the default two) and boots twice
def test_vendor_image_is_customized_sealed_and_described(standin: tuple[BuildFolder, Path, RangeServer],
                                                         debian12_build: BuildFolder) -> None:
    folder, image, server = standin
    manifest = folder.manifest()
    assert manifest.source == "base_image" and manifest.family == "apt"
    assert manifest.archives == {"base_image": f"sha256:{hashlib.sha256(image.read_bytes()).hexdigest()}"}
    assert [g.status for g in server.gets(f"/{image.name}")] == [200]  # downloaded once, whole
    serial = (folder.path / "customize/serial.log").read_text(errors="replace")
    assert f"{DONE_MARKER} status=0 seal=0" in serial
    versions = manifest.package_versions()
    assert versions["cloud-init"] and versions["waagent"] and versions[EXTRA_PACKAGE] and len(versions) > 150
    # ... installed through the package proxy, the boot's only way out; IMDS and WireServer were never asked for
    egress = (folder.path / "customize/egress.log").read_text().splitlines()
    assert egress and all(line.startswith("allowed ") for line in egress)
    assert manifest.kernel_version == debian12_build.manifest().kernel_version
    assert [p.name for p in manifest.disk.layout] == ["bios", "esp", "root"]
    assert manifest.disk.size_bytes == TEST_DISK_MIB * MIB
    # the customization applied the recipe's datasource lock (the stand-in image allowed NoCloud too) ...
    assert debugfs(folder, "cat /etc/cloud/cloud.cfg.d/91-azure_datasource.cfg").startswith(
        "datasource_list: [ Azure ]\n")
    # ... and the seal removed what its own boot left behind
    assert "ssh_host_" not in debugfs(folder, "ls /etc/ssh")
    assert debugfs(folder, "cat /etc/machine-id") == ""
    assert "instance" not in debugfs(folder, "ls /var/lib/cloud")


@pytest.mark.qemu
@pytest.mark.network
@pytest.mark.nightly  # builds debian-12-generic (a recipe beyond the default two) and boots twice
def test_sealed_vendor_build_passes_the_offline_audit(standin: tuple[BuildFolder, Path, RangeServer]) -> None:
    result = audit(standin[0])
    assert [f"{r.check}: {r.message}" for r in result.failed] == []
    names = {r.check for r in result.records if r.result == PASSED}
    assert {"D2 no SSH host keys", "D3 machine-id not baked in", "D5 no agent state", "A6 Hyper-V drivers in the "
            "initramfs"} <= names
    assert {s["file"] for s in result.declared_settings} >= {"/etc/cloud/cloud.cfg.d/91-azure_datasource.cfg"}


@pytest.mark.qemu
@pytest.mark.network
@pytest.mark.nightly  # builds debian-12-generic (a recipe beyond the default two) and boots twice
def test_vendor_build_verifies_on_the_fake_azure_platform(standin: tuple[BuildFolder, Path, RangeServer]) -> None:
    report = verify(standin[0], VerifyOptions(firmwares=(Firmware.BIOS,), keep=KeepPolicy.NEVER))
    failed = [f"{r.check}: {r.actual} / {r.message}" for r in report.records if r.result == FAILED]
    assert failed == []
    passed = {r.check for r in report.records if r.result == PASSED}
    assert {"C3 Ready reported by the guest's agent", "C6 exactly the injected SSH key",
            "C10 SSH host keys generated on first boot", "C8 custom data delivered"} <= passed
