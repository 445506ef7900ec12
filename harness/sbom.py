"""The build's software bill of materials: an SPDX 2.3 JSON document, `sbom.spdx.json`, made from the manifest.

One SPDX package per installed package (version, a package URL carrying the architecture, supplier, declared
licence, source package), the kernel as its own OPERATING-SYSTEM package, and the image as the package the document
DESCRIBES and that CONTAINS all the others. The same manifest always gives the same bytes: SPDX IDs come from the
package names, the namespace is a uuid5 of the build, the creation time is the build's.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from harness import __version__
from harness.buildfolder import BuildFolder, write_text_atomic
from harness.enums import Family
from harness.errors import IntegrityError, NotFoundError
from harness.manifest import Manifest, Package, SbomInfo
from harness.spdxlicense import spdx_expression

SBOM_FILE = "sbom.spdx.json"
MEDIA_TYPE = "application/spdx+json"
NOASSERTION = "NOASSERTION"
DOCUMENT_ID = "SPDXRef-DOCUMENT"
IMAGE_ID = "SPDXRef-Image"
KERNEL_ID = "SPDXRef-Kernel"
TOOL = f"azure-image-harness-{__version__}"
# A disk image that boots a whole system: SPDX 2.3's OPERATING-SYSTEM ("the package is an operating system").
# CONTAINER is for images a container runtime runs, which a VM disk is not.
IMAGE_PURPOSE = "OPERATING-SYSTEM"
KERNEL_PACKAGES = ("kernel-core", "kernel-default", "kernel-azure")  # rpm: the package holding vmlinuz
PURL_TYPES = {Family.APT: "deb", Family.DNF: "rpm", Family.ZYPPER: "rpm", Family.FLATCAR: "generic"}


@dataclass(frozen=True)
class Vendor:
    """Who distributes a family's packages: the purl namespace and the SPDX supplier when a package names none."""

    namespace: str
    organization: str


# The first word of the recipe name (or of the gallery offer) -> vendor; then the family's default.
VENDORS = {
    "debian": Vendor("debian", "Debian"), "ubuntu": Vendor("ubuntu", "Canonical"),
    "rhel": Vendor("redhat", "Red Hat"), "redhat": Vendor("redhat", "Red Hat"),
    "centos": Vendor("centos", "CentOS"), "oracle": Vendor("oracle", "Oracle"), "ol": Vendor("oracle", "Oracle"),
    "sles": Vendor("suse", "SUSE"), "suse": Vendor("suse", "SUSE"), "opensuse": Vendor("opensuse", "openSUSE"),
    "fedora": Vendor("fedora", "Fedora Project"), "almalinux": Vendor("almalinux", "AlmaLinux"),
    "rocky": Vendor("rocky", "Rocky Enterprise Software Foundation"), "flatcar": Vendor("flatcar", "Flatcar"),
}
FAMILY_VENDORS = {Family.APT: VENDORS["debian"], Family.DNF: VENDORS["redhat"], Family.ZYPPER: VENDORS["suse"],
                  Family.FLATCAR: VENDORS["flatcar"]}
# A maintainer that is a group rather than a person: "Debian Kernel Team", "GNU Libc Maintainers".
_GROUP = re.compile(r"\b(team|maintainers|developers|group|project|packagers|community|qa)\b", re.IGNORECASE)
# "Matthias Klose <doko@debian.org>"
_MAINTAINER = re.compile(r"\s*(?P<name>[^<]*?)\s*(?:<(?P<email>[^>]*)>)?\s*")
_NOT_IN_ID = re.compile(r"[^A-Za-z0-9.-]")


def vendor_of(manifest: Manifest) -> Vendor:
    for word in (manifest.recipe.split("-")[0], manifest.gallery.offer.split("-")[0]):
        if word.lower() in VENDORS:
            return VENDORS[word.lower()]
    return FAMILY_VENDORS[manifest.family]


def distro_of(manifest: Manifest, vendor: Vendor) -> str:
    """The purl `distro` qualifier: 'debian-12' from recipe debian-12, else the release ('debian-bookworm')."""
    number = next((w for w in manifest.recipe.split("-")[1:] if re.fullmatch(r"[0-9]+(\.[0-9]+)*", w)), "")
    release = number or manifest.release
    return f"{vendor.namespace}-{release}" if release else vendor.namespace


def package_url(kind: str, vendor: Vendor, package: Package, distro: str) -> str:
    """pkg:deb/debian/libstdc%2B%2B6@12.2.0-14?arch=amd64&distro=debian-12 (purl spec; rpm epochs a qualifier)."""
    version, qualifiers = package.version, {"arch": package.arch, "distro": distro}
    if kind == "rpm" and ":" in version:
        qualifiers["epoch"], version = version.split(":", 1)
    query = "&".join(f"{key}={quote(value, safe='')}" for key, value in sorted(qualifiers.items()) if value)
    return (f"pkg:{kind}/{vendor.namespace}/{quote(package.name, safe='')}@{quote(version, safe=':')}"
            + (f"?{query}" if query else ""))


def supplier(package: Package, vendor: Vendor) -> str:
    """'Person: Name (email)' or 'Organization: Name (email)' from the Maintainer field, else the vendor."""
    match = _MAINTAINER.fullmatch(package.maintainer)
    name = re.sub(r"[()]", "", match.group("name")).strip() if match else ""
    if not name:
        return f"Organization: {vendor.organization}"
    kind = "Organization" if _GROUP.search(name) else "Person"
    email = re.sub(r"[()\s]", "", (match.group("email") if match else "") or "")
    return f"{kind}: {name}" + (f" ({email})" if email else "")


def spdx_id(prefix: str, *parts: str) -> str:
    """A deterministic SPDX ID: readable parts, then 8 hex of their hash (names that differ only in characters
    an ID cannot hold, like '+' and '-', still get different IDs)."""
    text = "-".join(parts)
    tag = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8]
    return f"SPDXRef-{prefix}-{_NOT_IN_ID.sub('-', text)}-{tag}"


def _package(package: Package, kind: str, vendor: Vendor, distro: str) -> dict[str, Any]:
    licence = spdx_expression(package.license) if package.license else None
    element: dict[str, Any] = {
        "SPDXID": spdx_id("Package", package.name, package.arch, package.version), "name": package.name,
        "versionInfo": package.version, "supplier": supplier(package, vendor), "downloadLocation": NOASSERTION,
        "filesAnalyzed": False, "licenseConcluded": NOASSERTION, "licenseDeclared": licence or NOASSERTION,
        "copyrightText": NOASSERTION,
        "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                          "referenceLocator": package_url(kind, vendor, package, distro)}],
    }
    if package.arch:
        element["comment"] = f"architecture: {package.arch}"
    if package.license and licence is None:
        element["licenseComments"] = f"declared as {package.license!r} (no exact SPDX expression)"
    if package.source_name and (package.source_name, package.source_version) != (package.name, package.version):
        element["sourceInfo"] = f"built from source package {package.source_name} {package.source_version}".strip()
    return element


def _kernel(manifest: Manifest, vendor: Vendor) -> dict[str, Any]:
    return {"SPDXID": KERNEL_ID, "name": "linux", "versionInfo": manifest.kernel_version,
            "primaryPackagePurpose": "OPERATING-SYSTEM", "supplier": f"Organization: {vendor.organization}",
            "downloadLocation": NOASSERTION, "filesAnalyzed": False, "licenseConcluded": NOASSERTION,
            "licenseDeclared": NOASSERTION, "copyrightText": NOASSERTION,
            "comment": f"the kernel the image boots (uname -r {manifest.kernel_version})"}


def kernel_package(manifest: Manifest) -> Package | None:
    """The installed package that ships the booted kernel (linux-image-<version>; kernel-core <v>-<r> for
    <v>-<r>.<arch>)."""
    version = manifest.kernel_version
    found = [p for p in manifest.packages
             if p.name == f"linux-image-{version}" or f"{p.version}.{p.arch}" == version]
    return min(found, key=lambda p: (p.name not in KERNEL_PACKAGES, p.name), default=None)


def _image(manifest: Manifest) -> dict[str, Any]:
    gallery = manifest.gallery
    return {"SPDXID": IMAGE_ID, "name": manifest.recipe, "versionInfo": manifest.build_id,
            "primaryPackagePurpose": IMAGE_PURPOSE, "supplier": f"Organization: {gallery.publisher}",
            "downloadLocation": NOASSERTION, "filesAnalyzed": False, "licenseConcluded": NOASSERTION,
            "licenseDeclared": NOASSERTION, "copyrightText": NOASSERTION, "builtDate": _created(manifest),
            "description": f"Azure VM image {gallery.publisher}/{gallery.offer}/{gallery.sku}: {manifest.family} "
                           f"family, release {manifest.release or 'unknown'}, generations "
                           f"{','.join(g.value for g in manifest.generations)}, {manifest.os_state}",
            "comment": f"disk content digest {manifest.content_digest}"}


def _created(manifest: Manifest) -> str:
    return manifest.created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def namespace(manifest: Manifest) -> str:
    """A URI naming this document (never fetched): the build and a uuid5 of its identity and content."""
    unique = uuid.uuid5(uuid.NAMESPACE_URL, f"azure-image-harness/{manifest.recipe}/{manifest.build_id}/"
                                            f"{manifest.content_digest}")
    return f"https://spdx.org/spdxdocs/harness-{quote(manifest.recipe, safe='')}-" \
           f"{quote(manifest.build_id, safe='')}-{unique}"


def _relationships(image_contains: list[str], extra: list[tuple[str, str, str]]) -> Iterator[dict[str, str]]:
    yield {"spdxElementId": DOCUMENT_ID, "relationshipType": "DESCRIBES", "relatedSpdxElement": IMAGE_ID}
    for element in image_contains:
        yield {"spdxElementId": IMAGE_ID, "relationshipType": "CONTAINS", "relatedSpdxElement": element}
    for left, kind, right in extra:
        yield {"spdxElementId": left, "relationshipType": kind, "relatedSpdxElement": right}


def spdx_document(manifest: Manifest) -> dict[str, Any]:
    """The SPDX 2.3 document (JSON-ready) for a build's manifest."""
    vendor, kind = vendor_of(manifest), PURL_TYPES[manifest.family]
    distro = distro_of(manifest, vendor)
    packages = [_package(p, kind, vendor, distro) for p in sorted(set(manifest.packages), key=_order)]
    extra: list[tuple[str, str, str]] = []
    if manifest.kernel_version:
        packages.append(_kernel(manifest, vendor))
        shipped = kernel_package(manifest)
        if shipped is not None:
            extra.append((spdx_id("Package", shipped.name, shipped.arch, shipped.version), "CONTAINS", KERNEL_ID))
    return {
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": DOCUMENT_ID,
        "name": f"{manifest.recipe}-{manifest.build_id}", "documentNamespace": namespace(manifest),
        "creationInfo": {"created": _created(manifest), "creators": [f"Tool: {TOOL}"],
                         "comment": f"installed packages of build {manifest.recipe}/{manifest.build_id}, read from "
                                    "its package database at build time"},
        "packages": [_image(manifest), *packages],
        "relationships": list(_relationships([p["SPDXID"] for p in packages], extra)),
    }


def _order(package: Package) -> tuple[str, str, str]:
    return package.name, package.arch, package.version


def render(manifest: Manifest) -> str:
    return json.dumps(spdx_document(manifest), indent=1, ensure_ascii=False) + "\n"


def _write(folder: Path, manifest: Manifest) -> SbomInfo:
    text = render(manifest.replace(sbom=None))
    write_text_atomic(folder / SBOM_FILE, text)
    return SbomInfo(SBOM_FILE, hashlib.sha256(text.encode()).hexdigest())


def attach_sbom(folder: Path, manifest: Manifest) -> Manifest:
    """Write sbom.spdx.json into the folder (temp name, then rename) and return the manifest that records it."""
    return manifest.replace(sbom=_write(folder, manifest))


def write_sbom(build: BuildFolder) -> SbomInfo:
    """Make the SBOM of an existing build from its manifest (builds made before SBOMs) and record it."""
    with build.locked():
        manifest = build.manifest()
        info = _write(build.path, manifest)
        build.write_manifest(manifest.replace(sbom=info))
    return info


def read_sbom(build: BuildFolder, manifest: Manifest | None = None) -> bytes:
    """The build's SBOM bytes, shown to be the ones the build recorded (IntegrityError otherwise)."""
    manifest = manifest or build.manifest()
    if manifest.sbom is None:
        raise NotFoundError(f"build {build.path} has no SBOM", "rebuild it; builds made before SBOMs have none")
    path = build.path / manifest.sbom.file
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IntegrityError(f"cannot read {path}: {exc.strerror or exc}", "rebuild, or restore the file") from exc
    if hashlib.sha256(data).hexdigest() != manifest.sbom.sha256:
        raise IntegrityError(f"{path} changed after the build (its sha256 is not the one manifest.json records)",
                             "rebuild, or restore the file")
    return data
