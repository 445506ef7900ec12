"""Debian copyright-format (DEP-5) licence short names as SPDX licence expressions, for the SBOM.

Only names with an exact SPDX equivalent are mapped (a table, not a guess); an expression holding any other name,
or syntax beyond `or`/`and`, is None, and the SBOM says NOASSERTION and keeps the original text as a comment.
"""

from __future__ import annotations

import re

# DEP-5 short name (lower case) -> SPDX licence identifier. `+` after a GNU licence means "or later".
_FIXED = {
    "apache-2.0": "Apache-2.0", "apache-1.1": "Apache-1.1", "artistic-2.0": "Artistic-2.0",
    "artistic": "Artistic-1.0", "artistic-1.0": "Artistic-1.0", "bsd-2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause", "bsd-4-clause": "BSD-4-Clause", "isc": "ISC", "expat": "MIT", "mit": "MIT",
    "zlib": "Zlib", "cc0-1.0": "CC0-1.0", "cc-by-3.0": "CC-BY-3.0", "cc-by-4.0": "CC-BY-4.0",
    "cc-by-sa-3.0": "CC-BY-SA-3.0", "cc-by-sa-4.0": "CC-BY-SA-4.0", "mpl-1.1": "MPL-1.1", "mpl-2.0": "MPL-2.0",
    "epl-1.0": "EPL-1.0", "epl-2.0": "EPL-2.0", "psf-2": "PSF-2.0", "python-2.0": "Python-2.0", "ftl": "FTL",
    "openssl": "OpenSSL", "openldap-2.8": "OLDAP-2.8", "unicode-dfs-2016": "Unicode-DFS-2016", "curl": "curl",
    "x11": "X11", "bsl-1.0": "BSL-1.0", "wtfpl": "WTFPL", "0bsd": "0BSD", "unlicense": "Unlicense",
    "perl": "Artistic-1.0-Perl OR GPL-1.0-or-later", "sil-ofl-1.1": "OFL-1.1", "ofl-1.1": "OFL-1.1",
    "mit-0": "MIT-0", "bzip2-1.0.6": "bzip2-1.0.6", "libpng": "Libpng", "ijg": "IJG", "tcl": "TCL",
}
# GNU licences: DEP-5 'GPL-2', 'GPL-2+', 'LGPL-2.1+', 'GFDL-1.3'; SPDX spells the version with '.0' and -only/-or-later.
_GNU = re.compile(r"(a?gpl|lgpl|gfdl)-([0-9])(?:\.([0-9]))?(\+?)")
_GNU_VERSIONS = {"gpl": {"1", "2", "3"}, "agpl": {"3"}, "lgpl": {"2", "2.1", "3"}, "gfdl": {"1.1", "1.2", "1.3"}}
_OPERATORS = {"or": "OR", "and": "AND"}


def _gnu(name: str) -> str | None:
    match = _GNU.fullmatch(name)
    if match is None:
        return None
    family, major, minor, later = match.groups()
    version = f"{major}.{minor}" if minor is not None else major
    if version not in _GNU_VERSIONS[family]:
        return None
    spelled = version if "." in version else f"{version}.0"
    return f"{family.upper()}-{spelled}-{'or-later' if later else 'only'}"


def _one(name: str) -> str | None:
    key = name.lower()
    return _FIXED.get(key) or _gnu(key)


def spdx_expression(dep5: str) -> str | None:
    """'GPL-2+ or Expat' -> 'GPL-2.0-or-later OR MIT'; None when any part has no exact SPDX equivalent."""
    words = dep5.replace(",", " ").split()
    if not words or len(words) % 2 == 0 or len({w.lower() for w in words[1::2]}) > 1:
        return None  # empty, dangling operator, or `or` mixed with `and` (DEP-5 groups those with commas)
    out: list[str] = []
    for index, word in enumerate(words):
        if index % 2:
            operator = _OPERATORS.get(word.lower())
            if operator is None:
                return None  # 'with ... exception' and the like: no exact expression here
            out.append(operator)
            continue
        licence = _one(word)
        if licence is None:
            return None
        out.append(f"({licence})" if " " in licence and len(words) > 1 else licence)
    return " ".join(out)
