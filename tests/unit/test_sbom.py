"""The build's SBOM (sbom.spdx.json): SPDX 2.3 that the SPDX project's own tools parse and validate without a
message, one package per installed package with its purl, supplier and licence, deterministic, recorded in the
manifest; the apt reader behind it; the SBOM diff by purl."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from harness import __version__, sbom
from harness.builder import apt
from harness.builder.guestroot import GuestRoot
from harness.errors import IntegrityError, NotFoundError
from harness.manifest import Manifest
from harness.sbomdiff import diff_documents, purl_key
from harness.spdxlicense import spdx_expression
from tests.factories import make_build, make_manifest

KERNEL = "6.1.0-28-cloud-amd64"
DEB_PACKAGES: list[dict[str, str]] = [
    {"name": "bash", "version": "5.2.15-2+b7", "arch": "amd64", "maintainer": "Matthias Klose <doko@debian.org>",
     "source_name": "bash", "source_version": "5.2.15-2", "license": "GPL-3+"},
    {"name": "libc6", "version": "2.36-9+deb12u9", "arch": "amd64",
     "maintainer": "GNU Libc Maintainers <debian-glibc@lists.debian.org>", "source_name": "glibc",
     "source_version": "2.36-9+deb12u9"},
    {"name": "libc6", "version": "2.36-9+deb12u9", "arch": "i386", "maintainer": "GNU Libc Maintainers <x@y.org>"},
    {"name": "libstdc++6", "version": "12.2.0-14", "arch": "amd64", "maintainer": "Debian GCC Maintainers <a@b.c>"},
    {"name": "libstdc--6", "version": "1", "arch": "amd64"},  # the same ID characters as the one above
    {"name": "attr", "version": "1:2.5.1-4", "arch": "amd64", "license": "GPL-2+ with some exception"},
    {"name": f"linux-image-{KERNEL}", "version": "6.1.123-1", "arch": "amd64",
     "maintainer": "Debian Kernel Team <debian-kernel@lists.debian.org>", "source_name": "linux-signed-amd64",
     "source_version": "6.1.123+1"},
]


def deb_manifest(**changes: Any) -> Manifest:
    values: dict[str, Any] = {"packages": DEB_PACKAGES, "kernel_version": KERNEL, "created": "2026-12-01T10:00:00Z",
                              "harness_version": __version__}
    return make_manifest(**{**values, **changes})


def validate(path: Path) -> list[str]:
    """The SPDX project's own parser and validator (spdx-tools): every message it has about the file."""
    return [m.validation_message for m in validate_full_spdx_document(parse_file(str(path)))]


def written(tmp_path: Path, manifest: Manifest) -> tuple[dict[str, Any], Manifest]:
    updated = sbom.attach_sbom(tmp_path, manifest)
    return json.loads((tmp_path / sbom.SBOM_FILE).read_text()), updated


def by_name(document: dict[str, Any], name: str, arch: str = "amd64") -> dict[str, Any]:
    return next(p for p in document["packages"] if p["name"] == name and p.get("comment", "").endswith(arch))


def purl(element: dict[str, Any]) -> str:
    (ref,) = element["externalRefs"]
    assert ref["referenceCategory"] == "PACKAGE-MANAGER" and ref["referenceType"] == "purl"
    return str(ref["referenceLocator"])


def test_the_sbom_is_valid_spdx_2_3(tmp_path: Path) -> None:
    document, _ = written(tmp_path, deb_manifest())
    assert validate(tmp_path / sbom.SBOM_FILE) == []
    assert document["spdxVersion"] == "SPDX-2.3" and document["dataLicense"] == "CC0-1.0"
    assert document["creationInfo"]["creators"] == [f"Tool: azure-image-harness-{__version__}"]
    assert document["creationInfo"]["created"] == "2026-12-01T10:00:00Z"
    assert document["documentNamespace"].startswith("https://spdx.org/spdxdocs/harness-debian-12-b1-")


def test_one_package_per_installed_package_with_purl_supplier_and_licence(tmp_path: Path) -> None:
    document, _ = written(tmp_path, deb_manifest())
    bash = by_name(document, "bash")
    assert bash["versionInfo"] == "5.2.15-2+b7"
    assert purl(bash) == "pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64&distro=debian-12"
    assert bash["supplier"] == "Person: Matthias Klose (doko@debian.org)"
    assert bash["licenseDeclared"] == "GPL-3.0-or-later"
    assert bash["sourceInfo"] == "built from source package bash 5.2.15-2"
    libc = by_name(document, "libc6")
    assert libc["supplier"] == "Organization: GNU Libc Maintainers (debian-glibc@lists.debian.org)"
    assert libc["licenseDeclared"] == "NOASSERTION"
    assert purl(by_name(document, "libc6", "i386")).endswith("?arch=i386&distro=debian-12")
    assert purl(by_name(document, "libstdc++6")).startswith("pkg:deb/debian/libstdc%2B%2B6@12.2.0-14?")
    attr = by_name(document, "attr")
    assert purl(attr).startswith("pkg:deb/debian/attr@1:2.5.1-4?")  # a Debian epoch stays in the version
    assert attr["supplier"] == "Organization: Debian" and attr["licenseDeclared"] == "NOASSERTION"
    assert "GPL-2+ with some exception" in attr["licenseComments"]
    ids = [p["SPDXID"] for p in document["packages"]]
    assert len(ids) == len(set(ids)) == len(DEB_PACKAGES) + 2  # + the image and the kernel


def test_image_kernel_and_relationships(tmp_path: Path) -> None:
    document, _ = written(tmp_path, deb_manifest())
    image, kernel = document["packages"][0], by_name(document, "linux", "")
    assert image["SPDXID"] == sbom.IMAGE_ID and image["primaryPackagePurpose"] == "OPERATING-SYSTEM"
    assert kernel["versionInfo"] == KERNEL and kernel["primaryPackagePurpose"] == "OPERATING-SYSTEM"
    relations = {(r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"])
                 for r in document["relationships"]}
    assert ("SPDXRef-DOCUMENT", "DESCRIBES", sbom.IMAGE_ID) in relations
    contained = {right for left, kind, right in relations if left == sbom.IMAGE_ID and kind == "CONTAINS"}
    assert contained == {p["SPDXID"] for p in document["packages"][1:]}
    shipper = by_name(document, f"linux-image-{KERNEL}")["SPDXID"]
    assert (shipper, "CONTAINS", sbom.KERNEL_ID) in relations


def test_same_manifest_same_bytes_recorded_in_the_manifest(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, first = written(tmp_path / "a", deb_manifest())
    _, second = written(tmp_path / "b", deb_manifest(packages=list(reversed(DEB_PACKAGES))))
    assert (tmp_path / "a" / sbom.SBOM_FILE).read_bytes() == (tmp_path / "b" / sbom.SBOM_FILE).read_bytes()
    assert first.sbom is not None and first.sbom == second.sbom and first.sbom.file == "sbom.spdx.json"
    assert Manifest.from_json(first.to_json()) == first  # the record and the package extras survive a round trip
    other, _ = written(tmp_path / "a", deb_manifest(build_id="b2"))
    assert other["documentNamespace"] != json.loads((tmp_path / "b" / sbom.SBOM_FILE).read_text())[
        "documentNamespace"]


@pytest.mark.parametrize(("recipe", "family", "vendor", "distro"), [
    ("centos-stream-9", "dnf", "centos", "centos-9"), ("rhel-9", "dnf", "redhat", "redhat-9"),
    ("oracle-9", "dnf", "oracle", "oracle-9"), ("sles-15", "zypper", "suse", "suse-15"),
    ("opensuse-leap-15", "zypper", "opensuse", "opensuse-15"), ("ubuntu-24.04", "apt", "ubuntu", "ubuntu-24.04"),
])
def test_vendor_and_distro_come_from_the_recipe(tmp_path: Path, recipe: str, family: str, vendor: str,
                                                distro: str) -> None:
    packages = [{"name": "kernel-core", "version": "5.14.0-503.el9", "arch": "x86_64"},
                {"name": "shadow-utils", "version": "2:4.9-9.el9", "arch": "x86_64"}]
    document, _ = written(tmp_path, make_manifest(recipe=recipe, family=family, packages=packages,
                                                  kernel_version="5.14.0-503.el9.x86_64",
                                                  created="2026-12-01T10:00:00Z"))
    assert validate(tmp_path / sbom.SBOM_FILE) == []
    kind = "deb" if family == "apt" else "rpm"
    shadow = purl(by_name(document, "shadow-utils", "x86_64"))
    if kind == "rpm":
        assert shadow == f"pkg:rpm/{vendor}/shadow-utils@4.9-9.el9?arch=x86_64&distro={distro}&epoch=2"
    else:
        assert shadow == f"pkg:deb/{vendor}/shadow-utils@2:4.9-9.el9?arch=x86_64&distro={distro}"
    assert by_name(document, "shadow-utils", "x86_64")["supplier"].startswith("Organization: ")
    shipper = by_name(document, "kernel-core", "x86_64")["SPDXID"]
    assert {"spdxElementId": shipper, "relationshipType": "CONTAINS",
            "relatedSpdxElement": sbom.KERNEL_ID} in document["relationships"]


def test_500_packages_take_well_under_two_seconds(tmp_path: Path) -> None:
    packages = [{"name": f"pkg{i}", "version": f"1.{i}-1", "arch": "amd64", "maintainer": f"Dev {i} <d{i}@x.org>",
                 "license": "GPL-2+ or Expat"} for i in range(500)]
    manifest = deb_manifest(packages=packages)
    start = time.perf_counter()
    sbom.attach_sbom(tmp_path, manifest)
    assert time.perf_counter() - start < 2.0
    assert validate(tmp_path / sbom.SBOM_FILE) == []


def test_write_sbom_for_an_older_build_and_read_sbom_checks_it(tmp_path: Path) -> None:
    build = make_build(tmp_path / "builds", packages=DEB_PACKAGES[:2], kernel_version=KERNEL)
    assert build.manifest().sbom is None
    with pytest.raises(NotFoundError, match="has no SBOM"):
        sbom.read_sbom(build)
    info = sbom.write_sbom(build)
    assert build.manifest().sbom == info
    assert sbom.read_sbom(build) == (build.path / "sbom.spdx.json").read_bytes()
    (build.path / "sbom.spdx.json").write_text("{}")
    with pytest.raises(IntegrityError, match="changed after the build"):
        sbom.read_sbom(build)


# -- what apt.py reads for it -----------------------------------------------------------------------

DEP5 = ("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: x\n"
        "License: GPL-2+ or Expat\n\nFiles: *\nLicense: BSD-3-clause\n")


def test_copyright_licence_is_the_dep5_header_only(tmp_path: Path) -> None:
    doc = tmp_path / "usr/share/doc"
    for name, text in {"header": DEP5, "files-only": DEP5.replace("License: GPL-2+ or Expat\n", ""),
                       "free-text": "This package was debianized by someone.\nLicense: GPL\n",
                       "leading-blank": "\n\n" + DEP5}.items():
        (doc / name).mkdir(parents=True)
        (doc / name / "copyright").write_text(text)
    (doc / "linked").symlink_to("/usr/share/doc/header")  # absolute: resolved inside the image, not on the host
    tree = GuestRoot(tmp_path)
    found = {name: apt.copyright_license(tree, name)
             for name in ("header", "files-only", "free-text", "leading-blank", "linked", "missing")}
    assert found == {"header": "GPL-2+ or Expat", "files-only": "", "free-text": "", "leading-blank":
                     "GPL-2+ or Expat", "linked": "GPL-2+ or Expat", "missing": ""}


def test_installed_packages_reads_maintainer_source_and_licence(tmp_path: Path) -> None:
    """dpkg-query on a dpkg database of our own (dpkg is essential on the Debian hosts the harness runs on)."""
    status = tmp_path / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True)
    status.write_text(
        "Package: bash\nStatus: install ok installed\nArchitecture: amd64\nMaintainer: Matthias Klose "
        "<doko@debian.org>\nVersion: 5.2.15-2+b7\nSource: bash (5.2.15-2)\nDescription: sh\n\n"
        "Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nMaintainer: M <m@x>\n"
        "Version: 1\nDescription: removed\n")
    (tmp_path / "usr/share/doc/bash").mkdir(parents=True)
    (tmp_path / "usr/share/doc/bash/copyright").write_text(DEP5.replace("GPL-2+ or Expat", "GPL-3+"))
    assert apt.installed_packages(tmp_path) == [
        {"name": "bash", "version": "5.2.15-2+b7", "arch": "amd64", "maintainer": "Matthias Klose <doko@debian.org>",
         "source_name": "bash", "source_version": "5.2.15-2", "license": "GPL-3+"}]


@pytest.mark.parametrize(("dep5", "spdx"), [
    ("GPL-2+", "GPL-2.0-or-later"), ("GPL-2", "GPL-2.0-only"), ("LGPL-2.1+", "LGPL-2.1-or-later"),
    ("Expat", "MIT"), ("BSD-3-clause", "BSD-3-Clause"), ("LGPL-3+ or GPL-2+", "LGPL-3.0-or-later OR GPL-2.0-or-later"),
    ("Apache-2.0 and MIT", "Apache-2.0 AND MIT"), ("GPL-2+ with OpenSSL exception", None), ("public-domain", None),
    ("GPL-2+ or Expat, and BSD-3-clause", None), ("GPL-4", None), ("", None),
])
def test_dep5_names_map_only_when_exact(dep5: str, spdx: str | None) -> None:
    assert spdx_expression(dep5) == spdx


# -- the SBOM diff ----------------------------------------------------------------------------------

def test_sbom_diff_by_purl(tmp_path: Path) -> None:
    old = sbom.spdx_document(deb_manifest())
    changed = [dict(p) for p in DEB_PACKAGES if p["name"] != "attr"]
    changed[0] = {**changed[0], "version": "5.2.21-2"}  # bash upgraded
    changed[1] = {**changed[1], "license": "LGPL-2.1+"}  # libc6 amd64 declares a licence now
    changed.append({"name": "curl", "version": "7.88.1-10", "arch": "amd64"})
    new = sbom.spdx_document(deb_manifest(packages=changed, recipe="debian-13", build_id="b2"))
    result = diff_documents(old, new, "A", "B")
    assert [p.name for p in result.added] == ["curl"]
    assert [p.name for p in result.removed] == ["attr"]
    changes = {new_.name + ":" + new_.purl.split("arch=")[1][:5]: fields for _, new_, fields in result.changed}
    # debian-12 -> debian-13 changes every purl's distro, which is no change of the package
    assert changes == {"bash:amd64": ["version"], "libc6:amd64": ["license"]}
    data = result.to_json()
    assert data["changed"][0]["old"]["version"] == "5.2.15-2+b7" and data["changed"][0]["new"]["version"] == "5.2.21-2"


def test_purl_key_drops_version_distro_and_epoch() -> None:
    assert purl_key("pkg:rpm/redhat/shadow-utils@4.9-9.el9?arch=x86_64&distro=redhat-9&epoch=2") == \
        "pkg:rpm/redhat/shadow-utils?arch=x86_64"
    assert purl_key("pkg:deb/debian/attr@1:2.5.1-4?arch=amd64&distro=debian-12") == "pkg:deb/debian/attr?arch=amd64"


def test_harness_diff_sbom(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    root = tmp_path / "builds"
    old = make_build(root, build_id="b1", packages=DEB_PACKAGES[:2], created="2026-12-01T10:00:00Z")
    new = make_build(root, build_id="b2", packages=[{**DEB_PACKAGES[0], "version": "5.2.21-2"}, DEB_PACKAGES[3]],
                     created="2026-12-02T10:00:00Z")
    for build in (old, new):
        sbom.write_sbom(build)
    assert main(["diff", "--sbom", str(old.path), str(new.path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in data["added"]] == ["libstdc++6"]
    assert [p["name"] for p in data["removed"]] == ["libc6"]
    assert [(c["name"], c["fields"]) for c in data["changed"]] == [("bash", ["version"])]
    # files work as well, and the plain diff carries the same comparison when both builds have an SBOM
    assert main(["diff", "--sbom", str(old.path / "sbom.spdx.json"), str(new.path / "sbom.spdx.json"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] == data["changed"]
    assert main(["diff", str(old.path), str(new.path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sbom"]["added"] == data["added"]
    assert main(["diff", "--sbom", str(old.path), str(new.path)]) == 0
    assert "libstdc++6" in capsys.readouterr().out
    older = make_build(root, build_id="b0")
    assert main(["diff", "--sbom", str(older.path), str(new.path)]) == 2
    assert "has no SBOM" in capsys.readouterr().err


def test_the_build_writes_the_sbom_before_its_folder_is_renamed_into_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pipeline.finalize on a context as the build steps leave it: the folder arrives with sbom.spdx.json and a
    manifest recording its sha256."""
    from harness import recipe
    from harness.builder import pipeline
    from harness.builder.context import BuildOptions

    monkeypatch.setenv("HARNESS_BUILDS", str(tmp_path / "builds"))
    ctx = pipeline.make_context(recipe.load("debian-12"), BuildOptions(disk_size_mib=512))
    ctx.work_dir.mkdir(parents=True)
    with ctx.disk_tmp.open("wb") as handle:
        handle.truncate(512 * 1024 * 1024)
        handle.write(b"boot")
    ctx.packages, ctx.kernel_version = DEB_PACKAGES, KERNEL
    monkeypatch.setattr(pipeline.disk, "partition_summary", lambda path: [])
    folder = pipeline.finalize(ctx)
    manifest = folder.manifest()
    assert manifest.sbom is not None and manifest.sbom.file == "sbom.spdx.json"
    data = (folder.path / "sbom.spdx.json").read_bytes()
    assert hashlib.sha256(data).hexdigest() == manifest.sbom.sha256
    assert validate(folder.path / "sbom.spdx.json") == []
    assert json.loads(data)["documentNamespace"].startswith(f"https://spdx.org/spdxdocs/harness-debian-12-"
                                                            f"{manifest.build_id}-")
    assert manifest.packages[0].maintainer == "Matthias Klose <doko@debian.org>"  # kept for a later write_sbom
