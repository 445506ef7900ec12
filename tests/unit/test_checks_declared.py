"""Declared settings and deviation logic: a setting must hold, a changed conffile must be explained."""

from __future__ import annotations

import hashlib

from harness.builder.settings import apply_to_text
from harness.checks.declared import (
    evaluate_setting,
    explained,
    label,
    lines_declared,
    manifest_settings,
    parse_ucf,
)
from harness.recipe import Setting
from harness.results import FAILED, PASSED
from tests.factories import make_manifest

WAAGENT = """# Microsoft Azure Linux Agent Configuration
Provisioning.Agent=cloud-init
# Format if unformatted. If 'n', resource disk will not be mounted.
ResourceDisk.Format=y
ResourceDisk.EnableSwap=n
OS.EnableFirewall=n
"""
FORMAT_N = Setting(file="/etc/waagent.conf", key="ResourceDisk.Format", value="n", reason="r", style="kv")
DHCLIENT = "send host-name = gethostname();\n#timeout 60;\n"
TIMEOUT = Setting(file="/etc/dhcp/dhclient.conf", value="timeout 300;", reason="r", style="line")
MODULES = [Setting(file="/etc/initramfs-tools/modules", value=m, reason="r", style="line")
           for m in ("hv_vmbus", "hv_storvsc", "hv_netvsc")]


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def test_packaged_md5_reproduced_by_undoing_declared_keys() -> None:
    built = apply_to_text(WAAGENT, FORMAT_N)
    assert built != WAAGENT
    assert explained(built.encode(), md5(WAAGENT), [FORMAT_N])


def test_undeclared_key_change_is_not_explained() -> None:
    built = apply_to_text(WAAGENT, FORMAT_N).replace("OS.EnableFirewall=n", "OS.EnableFirewall=y")
    assert not explained(built.encode(), md5(WAAGENT), [FORMAT_N])
    assert not explained(built.encode(), md5(WAAGENT), [])


def test_appended_line_is_undone() -> None:
    built = apply_to_text(DHCLIENT, TIMEOUT)
    assert built.endswith("timeout 300;\n")
    assert explained(built.encode(), md5(DHCLIENT), [TIMEOUT])
    assert not explained((built + "also 1;\n").encode(), md5(DHCLIENT), [TIMEOUT])


def test_appended_key_is_undone() -> None:
    setting = Setting(file="/etc/waagent.conf", key="OS.RootDeviceScsiTimeout", value="300", reason="r")
    built = apply_to_text(WAAGENT, setting)
    assert explained(built.encode(), md5(WAAGENT), [setting])


def test_whole_file_and_created_files() -> None:
    whole = Setting(file="/etc/ssh/sshd_config.d/50-azure.conf", value="ClientAliveInterval 180\n", reason="r",
                    style="file")
    assert explained(b"anything", None, [whole])
    created = "# List of modules to include in the initramfs (initramfs-tools(7)).\nhv_vmbus\nhv_storvsc\nhv_netvsc\n"
    assert lines_declared(created, MODULES)
    assert explained(created.encode(), None, MODULES)
    assert not explained((created + "nouveau\n").encode(), None, MODULES)
    grub = [Setting(file="/etc/default/grub", key=k, value="1", reason="r", style="shell")
            for k in ("GRUB_TIMEOUT", "GRUB_TERMINAL")]
    assert explained(b'GRUB_TIMEOUT=1\nGRUB_TERMINAL="console serial"\n', None, grub)
    assert not explained(b"GRUB_TIMEOUT=1\nGRUB_DISABLE_OS_PROBER=true\n", None, grub)


def test_evaluate_setting() -> None:
    text = apply_to_text(WAAGENT, FORMAT_N)
    assert evaluate_setting(FORMAT_N, text).result == PASSED
    changed = evaluate_setting(FORMAT_N, WAAGENT)
    assert changed.result == FAILED and changed.actual == "ResourceDisk.Format=y"
    assert evaluate_setting(FORMAT_N, None).result == FAILED
    assert evaluate_setting(TIMEOUT, DHCLIENT).actual == "not present"
    assert label(TIMEOUT) == "/etc/dhcp/dhclient.conf 'timeout 300;'"
    assert label(FORMAT_N) == "/etc/waagent.conf ResourceDisk.Format"


def test_manifest_settings_roundtrip() -> None:
    manifest = make_manifest(settings=[{"file": "/etc/waagent.conf", "key": "ResourceDisk.Format", "value": "n",
                                        "style": "kv", "reason": "r"}])
    assert manifest_settings(manifest) == [FORMAT_N]


def test_ucf_registry_and_hashes() -> None:
    registry = "chrony \t /etc/chrony/chrony.conf\nopenssh-server \t /etc/ssh/sshd_config\n"
    hashfile = ("aa0cfd0c49b3610f7bc5035f28a9f1d5  /etc/chrony/chrony.conf\n"
                "e6fd6e8e29210c5678181f33177d5433  /etc/ssh/sshd_config\n0123  /etc/orphan\n")
    assert parse_ucf(registry, hashfile) == {
        "/etc/chrony/chrony.conf": ("chrony", "aa0cfd0c49b3610f7bc5035f28a9f1d5"),
        "/etc/ssh/sshd_config": ("openssh-server", "e6fd6e8e29210c5678181f33177d5433"),
        "/etc/orphan": ("ucf", "0123")}
