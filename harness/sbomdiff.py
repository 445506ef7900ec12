"""Compare two SPDX SBOMs by package URL: packages added, removed and changed (version, licence, supplier).

A package is the same package in both when its purl agrees but for the version and the `distro` and `epoch`
qualifiers (pkg:deb/debian/bash?arch=amd64), so a release upgrade shows upgrades, not a removal and an addition.
Packages without a purl (the kernel) match by name; the package the document describes (the image) is left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.buildfolder import read_json
from harness.errors import NotFoundError

_VARYING_QUALIFIERS = ("distro", "epoch")


@dataclass(frozen=True)
class SbomPackage:
    """What the diff compares of one SPDX package."""

    key: str
    name: str
    version: str
    purl: str
    license: str
    supplier: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "purl": self.purl}


@dataclass
class SbomDiff:
    a: str
    b: str
    added: list[SbomPackage] = field(default_factory=list)
    removed: list[SbomPackage] = field(default_factory=list)
    changed: list[tuple[SbomPackage, SbomPackage, list[str]]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "added": [p.to_json() for p in self.added],
                "removed": [p.to_json() for p in self.removed],
                "changed": [{"name": new.name, "fields": fields, "old": old.to_json(), "new": new.to_json(),
                             **({"license": [old.license, new.license]} if "license" in fields else {}),
                             **({"supplier": [old.supplier, new.supplier]} if "supplier" in fields else {})}
                            for old, new, fields in self.changed]}


def purl_key(purl: str) -> str:
    """pkg:deb/debian/bash@5.2-1?arch=amd64&distro=debian-12 -> pkg:deb/debian/bash?arch=amd64."""
    rest, _, _subpath = purl.partition("#")
    rest, _, query = rest.partition("?")
    base = rest.rsplit("@", 1)[0] if "@" in rest.rpartition("/")[2] else rest
    kept = sorted(q for q in query.split("&") if q and q.split("=", 1)[0] not in _VARYING_QUALIFIERS)
    return base + (f"?{'&'.join(kept)}" if kept else "")


def _purl(element: dict[str, Any]) -> str:
    refs = element.get("externalRefs") or []
    return next((str(r.get("referenceLocator", "")) for r in refs
                 if isinstance(r, dict) and r.get("referenceType") == "purl"), "")


def packages_of(document: Any, where: str) -> dict[str, SbomPackage]:
    """Every package of an SPDX JSON document but the ones it DESCRIBES, by purl key (or 'name:' + name)."""
    if not isinstance(document, dict) or not isinstance(document.get("packages"), list):
        raise NotFoundError(f"{where} is not an SPDX JSON document (no packages list)",
                            "give a build folder, RECIPE@BUILD_ID, or an .spdx.json file")
    described = {r.get("relatedSpdxElement") for r in document.get("relationships") or []
                 if isinstance(r, dict) and r.get("relationshipType") == "DESCRIBES"}
    found: dict[str, SbomPackage] = {}
    for element in document["packages"]:
        if not isinstance(element, dict) or element.get("SPDXID") in described:
            continue
        purl = _purl(element)
        name = str(element.get("name", ""))
        key = purl_key(purl) if purl else f"name:{name}"
        found[key] = SbomPackage(key, name, str(element.get("versionInfo", "")), purl,
                                 str(element.get("licenseDeclared", "")), str(element.get("supplier", "")))
    return found


def diff_documents(a: Any, b: Any, a_label: str, b_label: str) -> SbomDiff:
    """What changed from SBOM A (older) to SBOM B (newer)."""
    old, new = packages_of(a, a_label), packages_of(b, b_label)
    out = SbomDiff(a_label, b_label)
    out.added = [new[k] for k in sorted(set(new) - set(old))]
    out.removed = [old[k] for k in sorted(set(old) - set(new))]
    for key in sorted(set(old) & set(new)):
        # versionInfo carries an rpm epoch too; a purl that differs only in `distro` is the same package
        fields = [f for f in ("version", "license", "supplier") if getattr(old[key], f) != getattr(new[key], f)]
        if fields:
            out.changed.append((old[key], new[key], fields))
    return out


def diff_files(a: Path, b: Path, a_label: str = "", b_label: str = "") -> SbomDiff:
    return diff_documents(read_json(a), read_json(b), a_label or str(a), b_label or str(b))
