"""PlatformConfig: random values per run, validation, JSON round trip, VM id rule, QEMU SMBIOS arguments."""

from __future__ import annotations

import json
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from harness.errors import PlatformError
from harness.platform.config import (
    AZURE_ASSET_TAG,
    MARKER_PATH,
    PlatformConfig,
    generate_password,
    qemu_smbios_args,
    vm_id_for,
)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake fake@host"


def test_new_draws_fresh_values_per_run() -> None:
    first, second = PlatformConfig.new(ssh_public_key=KEY), PlatformConfig.new(ssh_public_key=KEY)
    for key in ("vm_name", "admin_username", "smbios_uuid", "container_id", "role_instance_id", "subscription_id",
                "resource_group", "marker"):
        assert getattr(first, key) != getattr(second, key), key
    assert first.hostname == first.vm_name
    assert first.role_instance_id.endswith("." + first.vm_name)
    assert len(first.deployment_id) == 32
    assert first.password is None
    assert first.custom_data.startswith(b"#cloud-config\n")
    assert MARKER_PATH.encode() in first.custom_data and first.marker.encode() in first.custom_data


def test_new_keeps_explicit_values() -> None:
    config = PlatformConfig.new(ssh_public_key=KEY, firmware="uefi", admin_username="alice", password="pw-1",
                                custom_data=b"", mac="52:54:00:AB:CD:EF", ipv4_address="10.0.2.20",
                                provision_guest_agent=False, vm_name="myvm")
    assert (config.firmware, config.admin_username) == ("uefi", "alice")
    assert (config.password, config.custom_data) == ("pw-1", b"")
    assert config.mac == "52:54:00:ab:cd:ef"
    assert config.imds_mac == "525400ABCDEF"
    assert config.vm_name == "myvm" and config.hostname == "myvm"
    assert config.provision_guest_agent is False
    assert config.ssh_key_path == "/home/alice/.ssh/authorized_keys"
    assert config.subnet_address == "10.0.2.0"


def test_vm_id_swaps_first_three_fields_under_bios_only() -> None:
    # The reference's worked example (fields 2 and 3 are palindromes there) and one where every field differs.
    assert vm_id_for("c0ffee00-1111-2222-3333-444455556666", "bios") == "00eeffc0-1111-2222-3333-444455556666"
    assert vm_id_for("12345678-9abc-def0-1234-56789abcdef0", "bios") == "78563412-bc9a-f0de-1234-56789abcdef0"
    assert vm_id_for("12345678-9abc-def0-1234-56789abcdef0", "uefi") == "12345678-9abc-def0-1234-56789abcdef0"
    with pytest.raises(PlatformError, match="unknown firmware"):
        vm_id_for("12345678-9abc-def0-1234-56789abcdef0", "efi")


def test_config_vm_id_follows_firmware() -> None:
    config = replace(PlatformConfig.new(ssh_public_key=KEY), smbios_uuid="12345678-9abc-def0-1234-56789abcdef0")
    assert config.vm_id == "78563412-bc9a-f0de-1234-56789abcdef0"
    assert replace(config, firmware="uefi").vm_id == "12345678-9abc-def0-1234-56789abcdef0"


def test_json_round_trip_keeps_every_field(tmp_path: Path) -> None:
    config = PlatformConfig.new(ssh_public_key=KEY, password="S3cret!", custom_data=b"\x00\xffbinary")
    assert PlatformConfig.from_json(config.to_json()) == config
    assert json.loads(config.to_json())["custom_data"] == "AP9iaW5hcnk="
    path = tmp_path / "config.json"
    config.write_json(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert PlatformConfig.read_json(path) == config


def test_from_json_rejects_unknown_and_missing_keys() -> None:
    data = json.loads(PlatformConfig.new(ssh_public_key=KEY).to_json())
    with pytest.raises(PlatformError, match="unknown platform config keys: colour"):
        PlatformConfig.from_json(json.dumps({**data, "colour": "blue"}))
    del data["container_id"]
    with pytest.raises(PlatformError, match="incomplete platform config"):
        PlatformConfig.from_json(json.dumps(data))
    with pytest.raises(PlatformError, match="not JSON"):
        PlatformConfig.from_json("{")


def test_validation_reports_every_problem_at_once() -> None:
    config = PlatformConfig.new(ssh_public_key=KEY)
    with pytest.raises(PlatformError) as caught:
        replace(config, firmware="efi", mac="52-54-00-12-34-56", admin_username="Root User",
                ssh_public_key="ecdsa-sha2-nistp256 AAAA x", smbios_uuid="nope", ipv4_prefix=33)
    message = caught.value.message
    for part in ("firmware 'efi'", "mac '52-54-00-12-34-56'", "admin_username 'Root User'", "ssh_public_key",
                 "smbios_uuid 'nope'", "ipv4_prefix 33"):
        assert part in message
    assert caught.value.hint


def test_generated_password_meets_azure_complexity() -> None:
    password = generate_password()
    assert len(password) >= 12
    assert any(c.isupper() for c in password) and any(c.islower() for c in password)
    assert any(c.isdigit() for c in password) and any(not c.isalnum() for c in password)
    assert generate_password() != password


def test_qemu_smbios_args_exact() -> None:
    config = replace(PlatformConfig.new(ssh_public_key=KEY), smbios_uuid="c0ffee00-1111-2222-3333-444455556666")
    assert qemu_smbios_args(config) == [
        "-uuid", "c0ffee00-1111-2222-3333-444455556666",
        "-smbios",
        "type=1,manufacturer=Microsoft Corporation,product=Virtual Machine,version=Hyper-V UEFI Release v4.1",
        "-smbios", "type=2,manufacturer=Microsoft Corporation,product=Virtual Machine",
        "-smbios", f"type=3,manufacturer=Microsoft Corporation,asset={AZURE_ASSET_TAG}",
    ]
    assert AZURE_ASSET_TAG == "7783-7084-3265-9085-8269-3286-77"
