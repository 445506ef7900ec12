"""NoCloud seed for the non-Azure boot: a `cidata` ISO with user-data, meta-data and optional network-config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.platform.config import MARKER_PATH, PlatformConfig
from harness.platform.media import write_iso

SEED_LABEL = "cidata"


def seed_iso(path: Path, *, user_data: str, meta_data: str, network_config: str | None = None) -> None:
    """Write a NoCloud seed ISO (ISO9660 + Joliet + Rock Ridge, volume id 'cidata') to path, atomically."""
    files = {"user-data": user_data.encode("utf-8"), "meta-data": meta_data.encode("utf-8")}
    if network_config is not None:
        files["network-config"] = network_config.encode("utf-8")
    write_iso(path, files, label=SEED_LABEL)


def nocloud_user_data(config: PlatformConfig) -> tuple[str, str]:
    """(user-data, meta-data): the admin user with its key, host name, the custom-data marker, ssh_pwauth."""
    user: dict[str, Any] = {
        "name": config.admin_username,
        "shell": "/bin/bash",
        "sudo": "ALL=(ALL) NOPASSWD:ALL",
        "lock_passwd": not config.password,
        "ssh_authorized_keys": [config.ssh_public_key],
    }
    if config.password:
        user["plain_text_passwd"] = config.password
    cloud_config: dict[str, Any] = {
        "hostname": config.hostname,
        "users": [user],
        "ssh_pwauth": bool(config.password),
        "write_files": [{"path": MARKER_PATH, "content": f"{config.marker}\n", "permissions": "0644"}],
    }
    user_data = "#cloud-config\n" + yaml.safe_dump(cloud_config, sort_keys=False)
    meta_data = yaml.safe_dump({"instance-id": f"iid-{config.smbios_uuid}", "local-hostname": config.hostname},
                               sort_keys=False)
    return user_data, meta_data
