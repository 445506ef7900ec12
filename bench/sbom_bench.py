"""SBOM generation for a 500-package build: target at most 2 s.

Two parts, each the median of 5 runs: reading what the SBOM needs from a synthetic target root (a dpkg status
file of 500 packages read with dpkg-query, and 500 /usr/share/doc/PKG/copyright files, half machine-readable: what
`collect_facts` does at build time), and writing sbom.spdx.json from the manifest (harness.sbom.attach_sbom, what
`finalize` does). The SPDX project's validator (spdx-tools, a dev dependency) is timed once for information.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness import __version__, proc, sbom
from harness.builder import apt
from harness.manifest import Manifest

PACKAGES = 500
RUNS = 5
DEP5 = ("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: {name}\n"
        "License: GPL-2+ or Expat\n\nFiles: *\nCopyright: someone\nLicense: GPL-2+\n" + " text\n" * 300)


def make_root(root: Path) -> None:
    """A target root with a dpkg database of PACKAGES packages and their copyright files."""
    status = root / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True)
    stanzas = []
    for i in range(PACKAGES):
        name = f"pkg{i:03d}"
        stanzas.append(f"Package: {name}\nStatus: install ok installed\nArchitecture: amd64\n"
                       f"Maintainer: Debian Team {i % 40} <team{i % 40}@lists.debian.org>\nVersion: 1.{i}-1\n"
                       f"Source: src{i // 3} (1.{i})\nDescription: package {i}\n")
        doc = root / "usr/share/doc" / name
        doc.mkdir(parents=True)
        (doc / "copyright").write_text(DEP5.format(name=name) if i % 2 else "Free text copyright\n")
    status.write_text("\n".join(stanzas))


def median_s(action: Callable[[], object]) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def validate_s(path: Path) -> float | str:
    try:
        from spdx_tools.spdx.parser.parse_anything import parse_file
        from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
    except ImportError:
        return "spdx-tools not installed"
    start = time.perf_counter()
    messages = validate_full_spdx_document(parse_file(str(path)))
    if messages:
        return f"{len(messages)} validation messages"
    return round(time.perf_counter() - start, 2)


def run() -> dict[str, object]:
    """Time the reader and the writer; always remove the scratch folder."""
    proc.require("dpkg-query")
    folder = Path(tempfile.mkdtemp(prefix=".sbom-bench-"))
    try:
        make_root(folder / "root")
        packages = apt.installed_packages(folder / "root")
        manifest = Manifest.from_json({
            "schema": 2, "recipe": "debian-12", "build_id": "20261201-000000-abcdef", "family": "apt",
            "release": "bookworm", "content_digest": "sha256-sparse4m:" + "ab" * 32, "created": "2026-12-01T10:00:00Z",
            "disk": {"file": "disk.raw", "size_bytes": 4 * 1024**3}, "kernel_version": "6.1.0-28-cloud-amd64",
            "harness_version": __version__, "packages": packages})
        read_s = median_s(lambda: apt.installed_packages(folder / "root"))
        write_s = median_s(lambda: sbom.attach_sbom(folder, manifest))
        return {
            "packages": len(packages),
            "read_packages_s": round(read_s, 3),
            "write_sbom_s": round(write_s, 3),
            "total_s": round(read_s + write_s, 3),
            "target_s": 2.0,
            "meets_target": read_s + write_s <= 2.0,
            "sbom_bytes": (folder / sbom.SBOM_FILE).stat().st_size,
            "spdx_tools_validate_s": validate_s(folder / sbom.SBOM_FILE),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)
