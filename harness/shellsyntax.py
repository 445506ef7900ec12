"""Shell-style KEY=value files (/etc/default/grub, os-release, sysconfig) and GRUB script words: one reader,
and quoting for each syntax we write, so a value means the same thing after the file is sourced or parsed."""

from __future__ import annotations

import re
import shlex

# GRUB_CMDLINE_LINUX="console=tty1 console=ttyS0,115200n8"   /   export NAME=value
_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_]\w*)=(.*)$")
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_.,:/=+@%-]*")


def parse_assignments(text: str) -> dict[str, str]:
    """KEY=value pairs in shell syntax: quotes removed, comments skipped, the last assignment wins."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = _ASSIGNMENT.match(line)
        if not match:
            continue
        try:
            words = shlex.split(match.group(2), comments=True)
        except ValueError:
            words = [match.group(2).strip("\"'")]
        values[match.group(1)] = " ".join(words)
    return values


def shell_value(value: str) -> str:
    """The value as one shell word that `sh` reads back exactly: bare when plain, in double quotes (the
    distros' own style) when nothing in it is special inside them, else in single quotes."""
    if value and _PLAIN_WORD.fullmatch(value):
        return value
    if not any(c in value for c in '$`"\\!\n'):
        return f'"{value}"'
    return shlex.quote(value)


def grub_word(word: str, *, quote: bool = False) -> str:
    """One word of a grub.cfg command (GRUB's script syntax: single quotes are literal, `\\'` outside them)."""
    if word and not quote and _PLAIN_WORD.fullmatch(word):
        return word
    return "'" + word.replace("'", "'\\''") + "'"
