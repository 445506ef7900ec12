"""Declared guest settings: derive the effective list, apply it to a root tree, read it back.

The build applies exactly this list and the audit checks exactly this list, so what an image
carries and what its recipe declares cannot drift apart.
"""

from __future__ import annotations

import re
import shlex

from harness.builder.families import FamilyTraits
from harness.builder.guestroot import GuestRoot
from harness.recipe import Recipe, Setting
from harness.shellsyntax import shell_value


def effective_settings(recipe: Recipe, family: FamilyTraits, agent: str, specialized: bool) -> list[Setting]:
    """The recipe's settings for this agent plus those derived from [kernel] and the OS state."""
    derived: list[Setting] = []
    if recipe.kernel_cmdline:
        derived.append(family.cmdline_setting(" ".join(recipe.kernel_cmdline)))
    derived.extend(family.initramfs_settings(recipe.initramfs_modules))
    if specialized:
        derived.append(Setting(
            file="/etc/waagent.conf", key="Provisioning.Agent", value="disabled", style="kv",
            reason="specialized image: the agent stays for extensions but does not provision"))
        derived.append(Setting(
            file="/etc/cloud/cloud-init.disabled", value="", style="file",
            reason="specialized image: no first-boot provisioning by cloud-init"))
    own = recipe.settings_for(agent)
    if specialized:
        own = [s for s in own if not (s.file == "/etc/waagent.conf" and s.key == "Provisioning.Agent")]
    return derived + own


def _line_pattern(setting: Setting) -> re.Pattern[str]:
    key = re.escape(setting.key)
    if setting.style == "sshd":
        return re.compile(rf"^\s*#?\s*{key}\s+", re.IGNORECASE)
    return re.compile(rf"^\s*#?\s*{key}\s*=")


# SUSE's /etc/sudoers: 'ALL   ALL=(ALL) ALL   # WARNING! ...' has the words 'ALL ALL=(ALL) ALL'
_TRAILING_COMMENT = re.compile(r"[ \t]#.*$")


def _words(line: str) -> str:
    """A line's words, single-spaced, without a trailing comment (how a 'comment' setting matches lines)."""
    return " ".join(_TRAILING_COMMENT.sub("", line).split())


def commented_targets(lines: list[str], setting: Setting) -> list[int]:
    """Indexes of the active lines a 'comment' setting turns into comments."""
    wanted = _words(setting.value)
    return [i for i, line in enumerate(lines) if not line.lstrip().startswith("#") and _words(line) == wanted]


def render_line(setting: Setting) -> str:
    """The line for the setting in its file's own syntax (shell: one word `sh` reads back exactly)."""
    if setting.style == "sshd":
        return f"{setting.key} {setting.value}"
    if setting.style == "shell":
        return f"{setting.key}={shell_value(setting.value)}"
    return f"{setting.key}={setting.value}"


def apply_to_text(text: str, setting: Setting) -> str:
    """Return `text` with `setting` applied (pure; unit-tested per style)."""
    if setting.style == "file":
        value = setting.value.lstrip("\n")
        return value if not value or value.endswith("\n") else value + "\n"
    lines = text.splitlines()
    if setting.style == "comment":
        targets = commented_targets(lines, setting)
        if not targets:
            return text
        return "\n".join(f"# {line}" if i in targets else line for i, line in enumerate(lines)) + "\n"
    if setting.style == "line":
        if setting.value not in (line.strip() for line in lines):
            lines.append(setting.value)
        return "\n".join(lines) + "\n"
    pattern = _line_pattern(setting)
    new = render_line(setting)
    active = [i for i, line in enumerate(lines) if pattern.match(line) and not line.lstrip().startswith("#")]
    commented = [i for i, line in enumerate(lines) if pattern.match(line)]
    target = active[0] if active else (commented[0] if commented else None)
    if target is None:
        lines.append(new)
    else:
        lines[target] = new
        lines = [line for i, line in enumerate(lines) if i == target or i not in active]
    return "\n".join(lines) + "\n"


def read_from_text(text: str, setting: Setting) -> str | None:
    """The value the text holds for this setting's key (None when absent), for the audit."""
    if setting.style == "file":
        return text
    if setting.style == "comment":  # the line while it is still active
        return setting.value if commented_targets(text.splitlines(), setting) else None
    if setting.style == "line":
        return setting.value if setting.value in (line.strip() for line in text.splitlines()) else None
    pattern = _line_pattern(setting)
    value: str | None = None
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not pattern.match(line):
            continue
        raw = pattern.sub("", line, count=1).strip()
        if setting.style == "shell":
            try:
                parts = shlex.split(raw)
                raw = parts[0] if parts else ""
            except ValueError:
                raw = raw.strip("\"'")
        if setting.style == "sshd" and value is not None:
            continue  # sshd uses the first occurrence
        value = raw
    return value


def holds(text: str | None, setting: Setting) -> bool:
    """Whether the file text carries the declared value (a 'comment' setting holds while no such line is active)."""
    if setting.style == "comment":
        return text is None or read_from_text(text, setting) is None
    if text is None:
        return False
    if setting.style == "file":
        return text.strip() == setting.value.strip()
    return read_from_text(text, setting) == setting.value


def apply(root: GuestRoot, setting: Setting) -> None:
    """Write one setting into the image tree (resolved inside it, whatever symlinks the image holds)."""
    text = root.read_text(setting.file)
    if text is None and setting.style == "comment":
        return  # nothing to comment out, and no empty file to create
    root.write_text(setting.file, apply_to_text(text or "", setting))
