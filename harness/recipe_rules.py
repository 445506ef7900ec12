"""Recipe value rules: types, names, guest paths, package names, kernel cmdline tokens and control characters.

Each rule takes one value and returns why it is wrong, or None; recipe_schema.py maps keys to these rules.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any

# A recipe name (its file name, and its builds/<name>/ folder): no '/', no leading '.', so never '..'.
RECIPE_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]*")
# Azure's publisher, offer and sku of an image definition: letters, digits, '.', '-', '_', alphanumeric at both ends.
GALLERY_IDENTITY_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?")
# Debian policy 5.6.7: lower case letters, digits, '+', '-', '.'; at least two characters, alphanumeric first.
DPKG_NAME_RE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
# rpm names are looser; these would split one name into two (',' for --include) or mean something to a shell.
RPM_NAME_FORBIDDEN = frozenset(",/;&|<>()$`\\\"'*?[]{}!#~")
# Each kernel.cmdline token goes into GRUB_CMDLINE_LINUX="..." in /etc/default/grub, which grub-mkconfig sources
# and writes into grub.cfg's `linux` line: these characters mean something at one of those steps.
CMDLINE_FORBIDDEN = "\"'\\$`;{}|&<>#"
SHELL_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Mounted over the image at boot: a file the build writes under them is hidden, so the setting never applies.
VIRTUAL_FILE_SYSTEMS = ("/proc", "/sys", "/dev", "/run")

Checker = Callable[[Any], str | None]


# -- types ---------------------------------------------------------------------------------------------

def string(value: Any) -> str | None:
    """Any string."""
    return None if isinstance(value, str) else f"must be a string, not {type(value).__name__}"


def nonempty_string(value: Any) -> str | None:
    """A string holding more than whitespace."""
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    return None if value.strip() else "must not be empty"


def boolean(value: Any) -> str | None:
    """true or false."""
    return None if isinstance(value, bool) else "must be true or false"


def string_list(value: Any) -> str | None:
    """A list of strings, possibly empty."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return "must be a list of strings"
    return None


def relative_paths(value: Any) -> str | None:
    """A list of paths relative to the recipe's folder that stay inside it (no leading '/', no '..')."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        return "must be a list of paths relative to the recipe's folder"
    bad = [v for v in value if v.startswith("/") or ".." in v.split("/") or "\0" in v]
    return f"{bad} must stay inside the recipe's folder (relative, no '..')" if bad else None


def nonempty_string_list(value: Any) -> str | None:
    """A list of strings with at least one entry."""
    return string_list(value) or (None if value else "must not be empty (leave the key out for none)")


def int_range(low: int, high: int) -> Checker:
    """An integer (not a bool) from low to high, both included."""
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be an integer"
        if not low <= value <= high:
            return f"must be between {low} and {high}"
        return None

    return check


def one_of(*choices: str) -> Checker:
    """One of choices."""
    def check(value: Any) -> str | None:
        if value not in choices:
            return f"must be one of {', '.join(choices)} (got {value!r})"
        return None

    return check


def list_of(*choices: str) -> Checker:
    """A non-empty list drawn from choices."""
    def check(value: Any) -> str | None:
        if not isinstance(value, list) or not value:
            return f"must be a non-empty list drawn from {', '.join(choices)}"
        bad = [v for v in value if v not in choices]
        return f"unknown entries {bad}; allowed: {', '.join(choices)}" if bad else None

    return check


def matching(pattern: re.Pattern[str], rule: str) -> Checker:
    """A string the whole of which matches pattern; `rule` says it in words."""
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"must be a string, not {type(value).__name__}"
        return None if pattern.fullmatch(value) else f"{value!r} is not valid: {rule}"

    return check


def sha256(value: Any) -> str | None:
    """64 lower-case hex digits."""
    if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        return "must be 64 lower-case hex digits"
    return None


# -- names ---------------------------------------------------------------------------------------------

recipe_name = matching(RECIPE_NAME_RE, "a recipe name is letters, digits, '.', '_', '+' and '-', not starting with "
                                       "'.' (it names a file next to this one and a builds/ folder)")
gallery_identity = matching(GALLERY_IDENTITY_RE, "Azure takes letters, digits, '.', '-' and '_', starting and "
                                                 "ending with a letter or digit, at most 64 characters")


# -- guest paths and setting keys ----------------------------------------------------------------------

def guest_path_problem(path: str) -> str | None:
    """Why `path` cannot be a file the build writes into the image (None when it can)."""
    problem = _path_shape_problem(path)
    top = "/" + path.split("/")[1] if not problem else ""
    if top in VIRTUAL_FILE_SYSTEMS:
        return (f"{path!r} is under {top}: the build writes this file into the image, and {top} is a virtual file "
                "system mounted over it at boot, so the setting would never apply; use a file the OS reads at boot "
                "(e.g. /etc/sysctl.d/, /etc/tmpfiles.d/, /etc/udev/rules.d/)")
    return problem


def _path_shape_problem(path: str) -> str | None:
    """An absolute, normalized path naming a file: no '..', '.', '//' or trailing '/', and not / itself."""
    if not path.startswith("/"):
        return "must be an absolute path in the guest"
    if path == "/":
        return "must name a file, not / itself"
    if "//" in path:
        return f"{path!r} holds '//': write the path normalized"
    if ".." in path.split("/"):
        return f"{path!r} holds a '..' component: name the file itself, inside the image"
    normal = posixpath.normpath(path)
    return f"{path!r} is not normalized: write {normal!r}" if normal != path else None


def setting_key_problem(key: str, style: Any) -> str | None:
    """Why `key` cannot be the key of a setting of this style (None when it can)."""
    if style == "shell" and not SHELL_NAME_RE.fullmatch(key):
        return f"{key!r} is not a shell variable name (letters, digits and '_', not starting with a digit)"
    if style in ("kv", "sshd") and (any(c.isspace() for c in key) or "=" in key or key.startswith("#")):
        return f"{key!r} holds whitespace, '=' or a leading '#', so the line it writes would not read back as this key"
    return None


# -- names and tokens that reach a package manager, a shell or grub.cfg ------------------------------------

def package_problem(name: str, family: Any) -> str | None:
    """Why `name` cannot be a package name of this family's package manager (None when it can)."""
    if family == "apt":
        if DPKG_NAME_RE.fullmatch(name):
            return None
        return (f"{name!r} is not a Debian package name (lower-case letters, digits, '+', '-' and '.', at least two "
                "characters, starting with a letter or digit)")
    bad = sorted({c for c in name if c.isspace() or c in RPM_NAME_FORBIDDEN})
    if not name or name.startswith("-") or bad:
        shown = f"holds {' '.join(repr(c) for c in bad)}" if bad else "is empty or starts with '-'"
        return f"{name!r} {shown}: a package name has no whitespace, ',', '/' or shell characters"
    return None


def cmdline_problem(token: str) -> str | None:
    """Why `token` cannot be one kernel command line argument in /etc/default/grub (None when it can)."""
    bad = sorted({c for c in token if c.isspace() or unicodedata.category(c) == "Cc" or c in CMDLINE_FORBIDDEN})
    if token and not bad:
        return None
    what = f"holds {' '.join(repr(c) for c in bad)}" if bad else "is empty"
    return (f"{token!r} {what}: a token cannot survive /etc/default/grub -> grub.cfg quoting with whitespace, "
            f"control characters or any of {' '.join(CMDLINE_FORBIDDEN)} (give each argument as its own token)")


# -- control characters in any string ------------------------------------------------------------------

def control_problem(text: str, multiline: bool) -> str | None:
    """A control or line-separator character (allowed: newline and tab in multi-line text) in `text`."""
    for index, char in enumerate(text):
        if multiline and char in "\n\t":
            continue
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            allowed = " (only newline and tab are allowed here)" if multiline else ""
            return f"contains a control character (U+{ord(char):04X} at position {index}){allowed}"
    return None


def key_path(path: str, key: Any) -> str:
    """path.key as a problem names it; a key holding control characters is shown escaped, never raw."""
    text = str(key)
    shown = text if text.isprintable() else repr(text)
    return f"{path}.{shown}" if path else shown


def strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """(key path, string) for every string in a nested value; iterative, so any depth tomllib read is fine."""
    stack = [(where, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            yield path, item
        elif isinstance(item, dict):
            stack.extend((key_path(path, k), v) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(item))))
