"""What travels with a published version besides the VHD: the build's SBOM and the VHD's provenance (a DSSE
envelope around an in-toto SLSA statement), plus the exact results.json the provenance names.

Made once per publish, the same for every definition and target: the local gallery writes the files into each
version folder, Azure uploads them as blobs next to the VHD blob and tags each version with their sha256.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from harness import dsse, provenance, sbom
from harness.buildfolder import VHD, BuildFolder

PROVENANCE_FILE = "provenance.intoto.jsonl"  # one DSSE envelope per line (one line), the in-toto convention
PROVENANCE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
RESULTS_FILE = "results.json"
SBOM_SUFFIX = ".spdx.json"  # Azure: <vhd blob>.spdx.json
PROVENANCE_SUFFIX = ".intoto.json"  # Azure: <vhd blob>.intoto.json
VHD_TAG = "harness-vhd-sha256"
SBOM_TAG = "harness-sbom-sha256"
PROVENANCE_TAG = "harness-provenance-sha256"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Attestations:
    """The bytes that travel with a version, and who signed the provenance ('' = unsigned)."""

    vhd_sha256: str
    provenance: bytes
    sbom: bytes | None = None
    results: bytes | None = None
    keyid: str = ""

    def files(self) -> dict[str, bytes]:
        """Local gallery: file name -> bytes, written into the version folder."""
        files = {PROVENANCE_FILE: self.provenance}
        if self.sbom is not None:
            files[sbom.SBOM_FILE] = self.sbom
        if self.results is not None:
            files[RESULTS_FILE] = self.results  # the very bytes the provenance names
        return files

    def blobs(self) -> list[tuple[str, bytes, str]]:
        """Azure: (blob name suffix, bytes, content type) of the blobs next to the VHD blob."""
        blobs = [(PROVENANCE_SUFFIX, self.provenance, PROVENANCE_MEDIA_TYPE)]
        if self.sbom is not None:
            blobs.insert(0, (SBOM_SUFFIX, self.sbom, sbom.MEDIA_TYPE))
        return blobs

    def tags(self, sbom_sha256: str | None = None, provenance_sha256: str | None = None) -> dict[str, str]:
        """Image-version tags (values of 64 characters: Azure takes up to 256); digests of kept blobs override."""
        tags = {VHD_TAG: self.vhd_sha256, PROVENANCE_TAG: provenance_sha256 or sha256(self.provenance)}
        if self.sbom is not None:
            tags[SBOM_TAG] = sbom_sha256 or sha256(self.sbom)
        return tags

    def to_json(self) -> dict[str, Any]:
        return {"vhd_sha256": self.vhd_sha256, "signed": bool(self.keyid), "keyid": self.keyid,
                "files": {name: sha256(data) for name, data in self.files().items()}}


def _results(build: BuildFolder) -> bytes | None:
    path = build.path / RESULTS_FILE
    return path.read_bytes() if path.is_file() else None


def prepare(build: BuildFolder, key: dsse.SigningKey | None, vhd_sha256: str) -> Attestations:
    """The SBOM (checked against the manifest), results.json and the provenance envelope of the build's VHD, whose
    sha256 the caller gives (convert recorded it in manifest.vhd.sha256)."""
    manifest = build.manifest()
    sbom_bytes = sbom.read_sbom(build, manifest) if manifest.sbom is not None else None
    results = _results(build)
    byproducts = []
    if sbom_bytes is not None:
        byproducts.append(provenance.byproduct(sbom.SBOM_FILE, sha256(sbom_bytes), sbom.MEDIA_TYPE))
    if results is not None:
        byproducts.append(provenance.byproduct(RESULTS_FILE, sha256(results), "application/json"))
    statement = provenance.statement(manifest, subject_name=VHD, vhd_sha256=vhd_sha256, byproducts=byproducts)
    envelope = dsse.envelope(provenance.payload(statement), key)
    text = json.dumps(envelope, separators=(",", ":")) + "\n"
    return Attestations(vhd_sha256, text.encode(), sbom_bytes, results, key.keyid if key else "")
