"""Provenance of a published VHD: an in-toto Statement v1 with a SLSA Provenance v1 predicate in a DSSE envelope,
signed with the user's Ed25519 or ECDSA P-256 key (or unsigned); it and the SBOM travel into the version folder."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from harness import __version__, dsse, provenance, sbom
from harness.buildfolder import BuildFolder, read_json
from harness.cli import main
from harness.digest import content_digest
from harness.enums import Stage
from harness.errors import IntegrityError, UsageError
from harness.manifest import DiskStamp
from harness.report import write_stage
from harness.results import PASSED, Record, StageReport
from harness.stages import publish
from harness.stages.publish import LocalTarget, PublishOptions
from tests.factories import make_build, make_manifest, plain_sha256

MIB = 1024 * 1024
SIGN_KEY_PASSWORD = "HARNESS_SIGN_KEY_PASSWORD"


def write_key(path: Path, key: Any, password: bytes | None = None) -> Path:
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    return path


def ed25519_key(tmp_path: Path, name: str = "key.pem") -> tuple[Path, ed25519.Ed25519PrivateKey]:
    key = ed25519.Ed25519PrivateKey.generate()
    return write_key(tmp_path / name, key), key


# -- the statement ----------------------------------------------------------------------------------

def test_statement_names_the_vhd_its_inputs_and_byproducts() -> None:
    manifest = make_manifest(recipe_digest="ab" * 32, harness_version=__version__, created="2026-12-01T10:00:00Z",
                             archives={"mirror.example_debian_dists_bookworm_InRelease": "cd" * 32,
                                       "base_image": "sha512:" + "ef" * 64, "baseos": "sha256:" + "12" * 32})
    document = provenance.statement(manifest, subject_name="disk.vhd", vhd_sha256="99" * 32,
                                    byproducts=[provenance.byproduct("results.json", "77" * 32, "application/json")])
    assert document["_type"] == "https://in-toto.io/Statement/v1"
    assert document["predicateType"] == "https://slsa.dev/provenance/v1"
    assert document["subject"][0]["name"] == "disk.vhd"
    assert document["subject"][0]["digest"] == {"sha256": "99" * 32}
    definition, run = document["predicate"]["buildDefinition"], document["predicate"]["runDetails"]
    assert definition["externalParameters"]["recipe"] == "debian-12"
    deps = {d["name"]: d for d in definition["resolvedDependencies"]}
    assert deps["recipe debian-12"]["digest"] == {"sha256": "ab" * 32}
    assert deps["mirror.example_debian_dists_bookworm_InRelease"]["digest"] == {"sha256": "cd" * 32}
    assert deps["base_image"]["digest"] == {"sha512": "ef" * 64}
    assert deps["baseos"]["digest"] == {"sha256": "12" * 32}
    assert deps["azure-image-harness"]["uri"] == f"pkg:pypi/azure-image-harness@{__version__}"
    assert run["builder"]["id"] == f"urn:azure-image-harness:{__version__}"
    assert run["byproducts"] == [{"name": "results.json", "digest": {"sha256": "77" * 32},
                                  "mediaType": "application/json"}]
    assert all("uri" in d or "digest" in d for d in definition["resolvedDependencies"])


# -- DSSE -------------------------------------------------------------------------------------------

def test_pae_is_the_dsse_v1_encoding() -> None:
    # the DSSE specification's own example (protocol.md)
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa-p256"])
def test_envelope_verifies_with_the_public_key_only(tmp_path: Path, kind: str) -> None:
    private = ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else ec.generate_private_key(ec.SECP256R1())
    key = dsse.load_signing_key(write_key(tmp_path / "key.pem", private))
    payload = b'{"_type":"https://in-toto.io/Statement/v1"}'
    envelope = dsse.envelope(payload, key)
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert [s["keyid"] for s in envelope["signatures"]] == [dsse.key_id(private.public_key())]
    assert dsse.verify(envelope, private.public_key()) == payload
    other = ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(IntegrityError, match="no signature"):
        dsse.verify(envelope, other.public_key())
    changed = {**envelope, "payload": base64.b64encode(payload.replace(b"v1", b"v2")).decode()}
    with pytest.raises(IntegrityError, match="no signature"):
        dsse.verify(changed, private.public_key())
    retyped = {**envelope, "payloadType": "application/json"}  # the type is signed too (PAE)
    with pytest.raises(IntegrityError, match="no signature"):
        dsse.verify(retyped, private.public_key())


def test_unsigned_envelope_has_no_signatures() -> None:
    envelope = dsse.envelope(b"{}", None)
    assert envelope["signatures"] == []
    with pytest.raises(IntegrityError):
        dsse.verify(envelope, ed25519.Ed25519PrivateKey.generate().public_key())


def test_keys_that_cannot_sign_are_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SIGN_KEY_PASSWORD, raising=False)
    rsa_key = write_key(tmp_path / "rsa.pem", rsa.generate_private_key(public_exponent=65537, key_size=2048))
    p384 = write_key(tmp_path / "p384.pem", ec.generate_private_key(ec.SECP384R1()))
    (tmp_path / "junk.pem").write_text("not a key\n")
    locked = write_key(tmp_path / "locked.pem", ed25519.Ed25519PrivateKey.generate(), b"s3cret")
    for path, match in ((rsa_key, "RSA"), (p384, "secp384r1"), (tmp_path / "junk.pem", "not a PEM private key"),
                        (tmp_path / "missing.pem", "cannot read"), (locked, "signing key")):
        with pytest.raises(UsageError, match=match) as info:
            dsse.load_signing_key(path)
        assert info.value.hint
    monkeypatch.setenv(SIGN_KEY_PASSWORD, "s3cret")
    assert dsse.load_signing_key(locked).algorithm == "ed25519"


# -- publishing to the local gallery ----------------------------------------------------------------

def verified_raw_build(tmp_path: Path, build_id: str = "20261201-000000-aaaaaa") -> BuildFolder:
    """A raw build as `harness build` leaves it (disk.raw, manifest with its SBOM), checked and verified."""
    build = make_build(tmp_path / "builds", build_id=build_id, kernel_version="6.1.0-28-cloud-amd64",
                       packages=[{"name": "bash", "version": "5.2.15-2+b7", "arch": "amd64"}],
                       archives={"mirror.example_debian_dists_bookworm_InRelease": "cd" * 32},
                       recipe_digest="ab" * 32)
    disk = build.path / "disk.raw"
    with disk.open("wb") as handle:
        handle.truncate(21 * MIB)
        handle.seek(MIB)
        handle.write(os.urandom(256 * 1024))
    manifest = build.manifest()
    build.write_manifest(manifest.replace(content_digest=content_digest(disk), disk=dataclasses.replace(
        manifest.disk, size_bytes=21 * MIB, stamp=DiskStamp.of(disk))))
    sbom.write_sbom(build)
    digest = build.manifest().content_digest
    write_stage(build, StageReport(Stage.CHECK, digest, [Record("check", "azure-readiness", PASSED)]))
    write_stage(build, StageReport(Stage.VERIFY, digest, [Record("verify", "provisioning", PASSED, firmware=fw,
                                                                 platform="azure") for fw in ("bios", "uefi")]))
    return build


def version_folders(gallery: Path) -> list[Path]:
    return sorted(p.parent for p in gallery.glob("*/*/version.json"))


def test_published_version_holds_sbom_and_signed_provenance(tmp_path: Path) -> None:
    build = verified_raw_build(tmp_path)
    key_path, key = ed25519_key(tmp_path)
    report = publish.run(build, PublishOptions(target=LocalTarget(tmp_path / "gallery"), sign_key=key_path))
    manifest = build.manifest()
    assert manifest.vhd is not None and manifest.vhd.sha256 == plain_sha256(build.path / "disk.vhd")
    folders = version_folders(tmp_path / "gallery")
    assert len(folders) == 2  # gen1 and gen2
    for folder in folders:
        envelope = json.loads((folder / "provenance.intoto.jsonl").read_text())
        statement = json.loads(dsse.verify(envelope, key.public_key()))
        (subject,) = statement["subject"]
        assert subject["digest"]["sha256"] == plain_sha256(folder / "disk.vhd") == manifest.vhd.sha256
        assert subject["annotations"]["harnessContentDigest"] == manifest.content_digest
        assert (folder / "sbom.spdx.json").read_bytes() == (build.path / "sbom.spdx.json").read_bytes()
        byproducts = {b["name"]: b["digest"]["sha256"] for b in statement["predicate"]["runDetails"]["byproducts"]}
        assert byproducts == {"sbom.spdx.json": plain_sha256(folder / "sbom.spdx.json"),
                              "results.json": plain_sha256(folder / "results.json")}
        record = read_json(folder / "version.json")
        assert record["files_sha256"]["provenance.intoto.jsonl"] == plain_sha256(folder / "provenance.intoto.jsonl")
    details = report.details["attestations"]
    assert details["signed"] is True and details["keyid"] == dsse.key_id(key.public_key())
    assert read_json(build.path / "publish.json")["attestations"] == details


def test_unsigned_by_default_and_an_sbom_for_a_build_made_before_sboms(tmp_path: Path) -> None:
    build = verified_raw_build(tmp_path)
    (build.path / "sbom.spdx.json").unlink()
    build.write_manifest(build.manifest().replace(sbom=None))
    publish.run(build, PublishOptions(target=LocalTarget(tmp_path / "gallery")))
    for folder in version_folders(tmp_path / "gallery"):
        envelope = json.loads((folder / "provenance.intoto.jsonl").read_text())
        assert envelope["signatures"] == []
        assert dsse.statement_of((folder / "provenance.intoto.jsonl").read_text())["subject"][0]["digest"][
            "sha256"] == plain_sha256(folder / "disk.vhd")
        assert (folder / "sbom.spdx.json").is_file()
    assert build.manifest().sbom is not None


def test_a_bad_key_is_refused_before_anything_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build = verified_raw_build(tmp_path)
    (tmp_path / "key.pem").write_text("nope\n")
    code = main(["publish", str(build.path), "--to", f"local:{tmp_path / 'gallery'}", "--sign-key",
                 str(tmp_path / "key.pem")])
    assert code == 2
    assert "not a PEM private key" in capsys.readouterr().err
    assert not (tmp_path / "gallery").exists() and (build.path / "disk.raw").exists()


def test_publish_cli_signs_with_an_ecdsa_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build = verified_raw_build(tmp_path)
    private = ec.generate_private_key(ec.SECP256R1())
    key_path = write_key(tmp_path / "p256.pem", private)
    code = main(["publish", str(build.path), "--to", f"local:{tmp_path / 'gallery'}", "--sign-key", str(key_path),
                 "--json"])
    assert code == 0, capsys.readouterr().err
    for folder in version_folders(tmp_path / "gallery"):
        envelope = json.loads((folder / "provenance.intoto.jsonl").read_text())
        assert json.loads(dsse.verify(envelope, private.public_key()))["subject"][0]["name"] == "disk.vhd"


def test_a_changed_sbom_is_not_published(tmp_path: Path) -> None:
    build = verified_raw_build(tmp_path)
    (build.path / "sbom.spdx.json").write_text("{}\n")
    with pytest.raises(IntegrityError, match="changed after the build"):
        publish.run(build, PublishOptions(target=LocalTarget(tmp_path / "gallery")))
    assert version_folders(tmp_path / "gallery") == []
