"""SLSA Provenance v1 for a published VHD, as an in-toto Statement v1 (the payload of a DSSE envelope, dsse.py).

- subject: the VHD, named as published, with the sha256 of the whole file (`sha256sum disk.vhd`), taken once when
  convert made it (manifest.vhd.sha256).
- buildDefinition: the recipe and flags the user chose (externalParameters), what the harness derived
  (internalParameters), and the inputs with their digests (resolvedDependencies): the recipe after `extends`, each
  archive's Release/InRelease file, repository index or the vendor's base image, and the harness release itself.
- runDetails: the builder `urn:azure-image-harness:<version>` (no public builder URL exists), the build id, and
  as byproducts the SBOM and results.json (check and verify outcomes) with their sha256: artifacts the run made
  that are not the subject but that a consumer checks against it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from harness import __version__
from harness.manifest import Manifest

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:azure-image-harness:buildtype:image:v1"
HARNESS_PACKAGE = "azure-image-harness"
_HEX = re.compile(r"[0-9a-f]{64}|[0-9a-f]{128}")


def builder_id(version: str = __version__) -> str:
    return f"urn:azure-image-harness:{version}"


def digest_set(value: str) -> dict[str, str]:
    """'sha256:ab..' | 'sha512:..' | bare hex -> an in-toto DigestSet ({} when it is none of these)."""
    algorithm, _, hexdigest = value.rpartition(":")
    hexdigest = hexdigest.lower()
    if not _HEX.fullmatch(hexdigest):
        return {}
    if not algorithm:
        algorithm = "sha256" if len(hexdigest) == 64 else "sha512"
    return {algorithm: hexdigest}


def _archive(name: str, value: str, manifest: Manifest) -> dict[str, Any]:
    item: dict[str, Any] = {"name": name, "digest": digest_set(value)}
    if name == "base_image":
        source = manifest.recipe_data.get("source")
        image = source.get("base_image") if isinstance(source, dict) else None
        if isinstance(image, dict) and image.get("url"):
            item["uri"] = str(image["url"])
    return item


def resolved_dependencies(manifest: Manifest) -> list[dict[str, Any]]:
    """The build's inputs: the recipe, each archive/repository index or base image, and the harness."""
    deps: list[dict[str, Any]] = [{
        "name": f"recipe {manifest.recipe}", "uri": f"urn:azure-image-harness:recipe:{manifest.recipe}",
        "digest": {"sha256": manifest.recipe_digest} if manifest.recipe_digest else {},
        "annotations": {"source": manifest.recipe_source or "unknown"},
    }]
    deps += [_archive(name, value, manifest) for name, value in sorted(manifest.archives.items())]
    version = manifest.harness_version or "unknown"
    deps.append({"name": HARNESS_PACKAGE, "uri": f"pkg:pypi/{HARNESS_PACKAGE}@{version}"})
    # A descriptor needs a uri or a digest: an input whose digest is unknown keeps its name in a uri.
    for dep in deps:
        if not dep.get("digest"):
            dep.pop("digest", None)
            dep.setdefault("uri", f"urn:azure-image-harness:input:{dep['name'].replace(' ', ':')}")
    return deps


def _parameters(manifest: Manifest) -> tuple[dict[str, Any], dict[str, Any]]:
    external = {"recipe": manifest.recipe, "agent": manifest.agent.value, "osState": manifest.os_state.value,
                "generations": [g.value for g in manifest.generations], "diskSizeMiB": manifest.disk.size_mib,
                "mirror": manifest.mirror}
    internal = {"family": manifest.family.value, "release": manifest.release, "source": manifest.source,
                "architecture": manifest.architecture, "cacheKey": manifest.cache_key,
                "kernelVersion": manifest.kernel_version, "bootChain": manifest.boot_chain or "unknown"}
    return external, internal


def byproduct(name: str, sha256: str, media_type: str) -> dict[str, Any]:
    return {"name": name, "digest": {"sha256": sha256}, "mediaType": media_type}


def statement(manifest: Manifest, *, subject_name: str, vhd_sha256: str,
              byproducts: list[dict[str, Any]]) -> dict[str, Any]:
    """The in-toto Statement v1 with a SLSA Provenance v1 predicate for the build's VHD."""
    external, internal = _parameters(manifest)
    version = manifest.harness_version or __version__
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject_name, "digest": {"sha256": vhd_sha256},
                     "annotations": {"harnessContentDigest": manifest.content_digest,
                                     "harnessBuild": f"{manifest.recipe}/{manifest.build_id}"}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {"buildType": BUILD_TYPE, "externalParameters": external,
                                "internalParameters": internal,
                                "resolvedDependencies": resolved_dependencies(manifest)},
            "runDetails": {"builder": {"id": builder_id(version), "version": {HARNESS_PACKAGE: version}},
                           "metadata": {"invocationId": f"{manifest.recipe}/{manifest.build_id}",
                                        **({"finishedOn": manifest.created} if manifest.created else {})},
                           "byproducts": byproducts},
        },
    }


def payload(document: dict[str, Any]) -> bytes:
    """The statement as the DSSE payload: compact, keys sorted (the same statement, the same bytes)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
