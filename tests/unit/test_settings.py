"""Declared settings: applied and read back the same way by the build and the audit."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from harness import proc
from harness.builder import customize, settings
from harness.builder.families import APT
from harness.builder.guestroot import GuestRoot
from harness.checks.declared import evaluate_setting, explained
from harness.checks.offline_config import evaluate_sudoers
from harness.recipe import Setting, load
from harness.results import FAILED, PASSED, WARNING


def kv(key: str, value: str, style: str = "kv") -> Setting:
    return Setting(file="/f", key=key, value=value, reason="r", style=style)


def test_kv_replaces_active_line_and_drops_duplicates() -> None:
    text = "A=1\n# Provisioning.Agent=auto\nProvisioning.Agent=auto\nProvisioning.Agent=cloud-init\nB=2\n"
    out = settings.apply_to_text(text, kv("Provisioning.Agent", "waagent"))
    assert out == "A=1\n# Provisioning.Agent=auto\nProvisioning.Agent=waagent\nB=2\n"
    assert settings.read_from_text(out, kv("Provisioning.Agent", "")) == "waagent"


def test_kv_uncomments_when_only_a_comment_exists() -> None:
    out = settings.apply_to_text("#ResourceDisk.Format=y\n", kv("ResourceDisk.Format", "n"))
    assert out == "ResourceDisk.Format=n\n"


def test_sshd_first_match_wins_when_reading() -> None:
    text = "ClientAliveInterval 120\nClientAliveInterval 180\n"
    assert settings.read_from_text(text, kv("ClientAliveInterval", "", "sshd")) == "120"


def test_shell_quotes_values_with_spaces() -> None:
    setting = kv("GRUB_CMDLINE_LINUX", "console=ttyS0 net.ifnames=0", "shell")
    out = settings.apply_to_text("", setting)
    assert out == 'GRUB_CMDLINE_LINUX="console=ttyS0 net.ifnames=0"\n'
    assert settings.holds(out, setting)


def test_line_style_is_idempotent() -> None:
    setting = Setting(file="/f", value="hv_vmbus", reason="r", style="line")
    once = settings.apply_to_text("# modules\n", setting)
    assert settings.apply_to_text(once, setting) == once == "# modules\nhv_vmbus\n"


def test_file_style_holds_only_exact_content() -> None:
    setting = Setting(file="/f", value="a: 1\n", reason="r", style="file")
    assert settings.holds("a: 1\n", setting)
    assert not settings.holds("a: 2\n", setting)
    assert not settings.holds(None, setting)


def test_effective_settings_derive_cmdline_and_initramfs() -> None:
    recipe = load("debian-12")
    effective = settings.effective_settings(recipe, APT, "cloud-init", specialized=False)
    grub = [s for s in effective if s.key == "GRUB_CMDLINE_LINUX"]
    assert grub and "console=ttyS0,115200n8" in grub[0].value
    modules = [s.value for s in effective if s.file == "/etc/initramfs-tools/modules"]
    assert modules == ["hv_vmbus", "hv_storvsc", "hv_netvsc"]


def test_specialized_disables_provisioning() -> None:
    recipe = load("debian-12")
    effective = settings.effective_settings(recipe, APT, "cloud-init", specialized=True)
    agent = [s.value for s in effective if s.key == "Provisioning.Agent"]
    assert agent == ["disabled"]
    assert any(s.file == "/etc/cloud/cloud-init.disabled" for s in effective)


# SUSE's /etc/sudoers as the package ships it (the lines Azure's SUSE guide asks to comment out)
SUSE_SUDOERS = """## sudoers file.
Defaults always_set_home
Defaults targetpw   # ask for the password of the target user i.e. root
ALL   ALL=(ALL) ALL   # WARNING! Only use this together with 'Defaults targetpw'!
root ALL=(ALL:ALL) ALL
## Defaults targetpw
@includedir /etc/sudoers.d
"""
TARGETPW = Setting(file="/etc/sudoers", value="Defaults targetpw", reason="r", style="comment")
EVERYONE = Setting(file="/etc/sudoers", value="ALL ALL=(ALL) ALL", reason="r", style="comment")


def test_comment_style_comments_out_the_active_lines_with_those_words() -> None:
    out = settings.apply_to_text(settings.apply_to_text(SUSE_SUDOERS, TARGETPW), EVERYONE)
    assert out == SUSE_SUDOERS.replace("Defaults targetpw   #", "# Defaults targetpw   #").replace(
        "ALL   ALL=(ALL) ALL", "# ALL   ALL=(ALL) ALL")
    assert settings.apply_to_text(out, TARGETPW) == out  # idempotent
    assert "root ALL=(ALL:ALL) ALL" in out.splitlines()  # other rules stay
    assert not settings.holds(SUSE_SUDOERS, TARGETPW)
    assert settings.holds(out, TARGETPW) and settings.holds(out, EVERYONE)
    assert settings.read_from_text(SUSE_SUDOERS, EVERYONE) == "ALL ALL=(ALL) ALL"
    assert settings.holds(None, TARGETPW)  # no file, no active line


def test_comment_style_creates_no_file_and_the_declared_audit_accepts_its_absence(tmp_path: Path) -> None:
    image = GuestRoot(tmp_path)
    settings.apply(image, TARGETPW)
    assert not (tmp_path / "etc/sudoers").exists()
    assert evaluate_setting(TARGETPW, None).result == PASSED
    assert evaluate_setting(TARGETPW, SUSE_SUDOERS).result == FAILED
    commented = settings.apply_to_text(SUSE_SUDOERS, TARGETPW)
    assert evaluate_setting(TARGETPW, commented).result == PASSED
    md5 = hashlib.md5(SUSE_SUDOERS.encode(), usedforsecurity=False).hexdigest()
    assert explained(settings.apply_to_text(commented, EVERYONE).encode(), md5, [TARGETPW, EVERYONE])


@pytest.mark.parametrize("setting", [TARGETPW, EVERYONE])
def test_comment_style_in_the_guest_gives_the_same_file(tmp_path: Path, setting: Setting) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/sudoers").write_text(SUSE_SUDOERS)
    script = Path(customize.__file__).parent.parent / "distros/common/settings.sh"
    call = customize.setting_call(setting)
    assert call.startswith("harness_comment_line /etc/sudoers ")
    proc.run(["bash", "-c", f'. "$1" && {call}', "bash", str(script)],
             env={**os.environ, "HARNESS_ROOT": str(tmp_path)})
    assert (tmp_path / "etc/sudoers").read_text() == settings.apply_to_text(SUSE_SUDOERS, setting)


@pytest.mark.parametrize("name", ["sles-15", "opensuse-leap-15"])
def test_suse_recipes_comment_out_targetpw_and_everyone_may_run_anything(name: str) -> None:
    assert evaluate_sudoers({"/etc/sudoers": SUSE_SUDOERS}).result == FAILED
    text = SUSE_SUDOERS
    for setting in load(name).settings_for("cloud-init"):
        if setting.file == "/etc/sudoers":
            text = settings.apply_to_text(text, setting)
    assert evaluate_sudoers({"/etc/sudoers": text}).result == PASSED
    assert evaluate_sudoers({"/etc/sudoers": "Defaults targetpw\n"}).result == WARNING
