"""Declared settings: applied and read back the same way by the build and the audit."""

from __future__ import annotations

from harness.builder import settings
from harness.builder.families import APT
from harness.recipe import Setting, load


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
