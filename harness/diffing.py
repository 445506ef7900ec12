"""What changed between two builds (or a build and the latest published version): nightly users read this first."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


def _order(char: str) -> int:
    """dpkg's character order: '~' sorts before everything, letters before non-letters."""
    if char == "~":
        return -1
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_part(a: str, b: str) -> int:
    """Compare an upstream version or Debian revision as dpkg does (alternating non-digit/digit runs)."""
    while a or b:
        a_text = re.match(r"^[^0-9]*", a).group(0)  # type: ignore[union-attr]
        b_text = re.match(r"^[^0-9]*", b).group(0)  # type: ignore[union-attr]
        a, b = a[len(a_text):], b[len(b_text):]
        for i in range(max(len(a_text), len(b_text))):
            ca = _order(a_text[i]) if i < len(a_text) else 0
            cb = _order(b_text[i]) if i < len(b_text) else 0
            if ca != cb:
                return -1 if ca < cb else 1
        a_num = re.match(r"^[0-9]*", a).group(0)  # type: ignore[union-attr]
        b_num = re.match(r"^[0-9]*", b).group(0)  # type: ignore[union-attr]
        a, b = a[len(a_num):], b[len(b_num):]
        if int(a_num or 0) != int(b_num or 0):
            return -1 if int(a_num or 0) < int(b_num or 0) else 1
    return 0


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as `dpkg --compare-versions` orders Debian versions (epoch:upstream-revision)."""
    def split(version: str) -> tuple[int, str, str]:
        epoch, _, rest = version.rpartition(":") if ":" in version else ("0", "", version)
        upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "0")
        return int(epoch or 0), upstream, revision

    ea, ua, ra = split(a)
    eb, ub, rb = split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)


@dataclass
class Diff:
    a: str
    b: str
    added: dict[str, str] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)
    upgraded: dict[str, tuple[str, str]] = field(default_factory=dict)
    downgraded: dict[str, tuple[str, str]] = field(default_factory=dict)
    kernel: tuple[str, str] | None = None
    size: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    checks: dict[str, tuple[str, str]] = field(default_factory=dict)
    ready_s: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    same_content: bool = False

    def to_json(self) -> dict[str, Any]:
        """Plain JSON: pairs become [old, new] lists."""
        def plain(value: Any) -> Any:
            if isinstance(value, tuple):
                return list(value)
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value

        return {k: plain(v) for k, v in self.__dict__.items()}


def _packages(manifest: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["version"] for p in manifest.get("packages", [])}


def _check_results(results: dict[str, Any] | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for record in (results or {}).get("records", []):
        where = "/".join(x for x in (record.get("firmware"), record.get("platform")) if x)
        found[f"{record.get('stage')}:{where + ':' if where else ''}{record.get('check')}"] = record.get("result", "")
    return found


def _ready_times(verify: dict[str, Any] | None) -> dict[str, Any]:
    boots = (verify or {}).get("boots", {})
    return {name: boot.get("timings_s", {}).get("ready_s") for name, boot in boots.items()}


def diff(a: tuple[str, dict[str, Any], dict[str, Any] | None, dict[str, Any] | None],
         b: tuple[str, dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]) -> Diff:
    """Compare (label, manifest, results.json, verify.json) of A (old) with B (new)."""
    label_a, man_a, res_a, ver_a = a
    label_b, man_b, res_b, ver_b = b
    out = Diff(label_a, label_b, same_content=man_a.get("content_digest") == man_b.get("content_digest"))
    pa, pb = _packages(man_a), _packages(man_b)
    out.added = {n: pb[n] for n in sorted(set(pb) - set(pa))}
    out.removed = {n: pa[n] for n in sorted(set(pa) - set(pb))}
    for name in sorted(set(pa) & set(pb)):
        order = compare_versions(pa[name], pb[name])
        if order < 0:
            out.upgraded[name] = (pa[name], pb[name])
        elif order > 0:
            out.downgraded[name] = (pa[name], pb[name])
    if man_a.get("kernel_version") != man_b.get("kernel_version"):
        out.kernel = (str(man_a.get("kernel_version")), str(man_b.get("kernel_version")))
    for key in ("size_bytes", "allocated_bytes"):
        va, vb = man_a.get("disk", {}).get(key), man_b.get("disk", {}).get(key)
        if va != vb:
            out.size[key] = (va, vb)
    ca, cb = _check_results(res_a), _check_results(res_b)
    out.checks = {k: (ca.get(k, "absent"), cb.get(k, "absent")) for k in sorted(set(ca) | set(cb))
                  if ca.get(k) != cb.get(k)}
    ra, rb = _ready_times(ver_a), _ready_times(ver_b)
    out.ready_s = {k: (ra.get(k), rb.get(k)) for k in sorted(set(ra) | set(rb))}
    return out
