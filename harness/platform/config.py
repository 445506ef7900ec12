"""What one fake Azure VM looks like: identity, user, network, goal-state ids; QEMU SMBIOS arguments.

A `PlatformConfig` is immutable and fully serialisable (`to_json`/`from_json`), so the fake platform can run
in a helper process inside the network namespace. `PlatformConfig.new()` draws fresh random values per run.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import secrets
import uuid
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from harness.errors import PlatformError

# Azure's chassis asset tag: the one signal cloud-init's ds-identify uses to detect Azure (reference §1.1).
AZURE_ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"
SMBIOS_MANUFACTURER = "Microsoft Corporation"
SMBIOS_PRODUCT = "Virtual Machine"
# systemd-detect-virt matches DMI strings by prefix and needs "Hyper-V" to say 'microsoft' (reference,
# "Observed on Debian 12"); Azure's own version strings start with it.
SMBIOS_VERSION = "Hyper-V UEFI Release v4.1"
FIRMWARES = ("bios", "uefi")
# Where the default custom data (and the NoCloud user data) writes the per-run marker in the guest.
MARKER_PATH = "/var/lib/harness/custom-data-marker"

_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_KEY_RE = re.compile(r"^ssh-[a-z0-9-]+ [A-Za-z0-9+/=]+( .*)?$")


@dataclass(frozen=True)
class PlatformConfig:
    """Everything the fake platform serves for one VM; `new()` fills it with fresh random values."""

    vm_name: str
    hostname: str
    admin_username: str
    ssh_public_key: str
    smbios_uuid: str
    firmware: str
    container_id: str
    role_instance_id: str
    subscription_id: str
    resource_group: str
    marker: str = ""
    password: str | None = None
    custom_data: bytes = b""
    mac: str = "52:54:00:12:34:56"
    ipv4_address: str = "10.0.2.15"
    ipv4_prefix: int = 24
    ipv4_gateway: str = "10.0.2.2"
    incarnation: int = 1
    provision_guest_agent: bool = True
    location: str = "eastus"
    vm_size: str = "Standard_D2s_v5"

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise PlatformError(f"invalid platform config: {'; '.join(problems)}", "fix the values named above")

    @classmethod
    def new(
        cls,
        *,
        ssh_public_key: str,
        firmware: str = "bios",
        admin_username: str | None = None,
        password: str | None = None,
        custom_data: bytes | None = None,
        mac: str = "52:54:00:12:34:56",
        ipv4_address: str = "10.0.2.15",
        ipv4_prefix: int = 24,
        ipv4_gateway: str = "10.0.2.2",
        provision_guest_agent: bool = True,
        vm_name: str | None = None,
    ) -> PlatformConfig:
        """A config with fresh random ids, names and marker; custom data defaults to a marker cloud-config."""
        suffix = secrets.token_hex(3)
        name = vm_name or f"fakevm-{suffix}"
        marker = secrets.token_hex(16)
        deployment = uuid.uuid4().hex
        return cls(
            vm_name=name,
            hostname=name,
            admin_username=admin_username or f"azureuser{secrets.token_hex(2)}",
            ssh_public_key=ssh_public_key.strip(),
            smbios_uuid=str(uuid.uuid4()),
            firmware=firmware,
            container_id=str(uuid.uuid4()),
            role_instance_id=f"{deployment}.{name}",
            subscription_id=str(uuid.uuid4()),
            resource_group=f"fake-rg-{suffix}",
            marker=marker,
            password=password,
            custom_data=marker_custom_data(marker) if custom_data is None else custom_data,
            mac=mac.lower(),
            ipv4_address=ipv4_address,
            ipv4_prefix=ipv4_prefix,
            ipv4_gateway=ipv4_gateway,
            provision_guest_agent=provision_guest_agent,
        )

    # Derived values, one place each.
    @property
    def vm_id(self) -> str:
        """compute.vmId as the guest agents derive it from the SMBIOS UUID for this firmware."""
        return vm_id_for(self.smbios_uuid, self.firmware)

    @property
    def imds_mac(self) -> str:
        """The MAC in IMDS notation: 12 upper-case hex digits, no separators."""
        return self.mac.replace(":", "").upper()

    @property
    def deployment_id(self) -> str:
        return self.role_instance_id.split(".", 1)[0]

    @property
    def role_name(self) -> str:
        return self.role_instance_id.split(".", 1)[-1]

    @property
    def ssh_key_path(self) -> str:
        return f"/home/{self.admin_username}/.ssh/authorized_keys"

    @property
    def subnet_address(self) -> str:
        return str(ipaddress.ip_network(f"{self.ipv4_address}/{self.ipv4_prefix}", strict=False).network_address)

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Compute/virtualMachines/{self.vm_name}"
        )

    def to_json(self) -> str:
        """JSON text (custom data as base64). Contains the password if one is set: store it 0600."""
        data: dict[str, Any] = asdict(self)
        data["custom_data"] = base64.b64encode(self.custom_data).decode("ascii")
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PlatformConfig:
        """Parse `to_json()` output; unknown or missing keys are a PlatformError."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PlatformError(f"platform config is not JSON: {exc}", "pass the file written by to_json()") from exc
        if not isinstance(data, dict):
            raise PlatformError("platform config must be a JSON object", "pass the file written by to_json()")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PlatformError(f"unknown platform config keys: {', '.join(unknown)}", "remove them")
        data["custom_data"] = base64.b64decode(data.get("custom_data", ""))
        try:
            return cls(**data)
        except TypeError as exc:
            raise PlatformError(f"incomplete platform config: {exc}", "pass the file written by to_json()") from exc

    def write_json(self, path: Path) -> None:
        """Write `to_json()` to path with mode 0600 (it may hold a password)."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(self.to_json())

    @classmethod
    def read_json(cls, path: Path) -> PlatformConfig:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PlatformError(f"cannot read platform config {path}: {exc.strerror}", "check the path") from exc
        return cls.from_json(text)


def _problems(config: PlatformConfig) -> list[str]:
    """Every problem with a config at once (empty when valid)."""
    problems: list[str] = []
    if config.firmware not in FIRMWARES:
        problems.append(f"firmware {config.firmware!r} is not one of {', '.join(FIRMWARES)}")
    if not _MAC_RE.match(config.mac):
        problems.append(f"mac {config.mac!r} is not like 52:54:00:12:34:56 (lower-case)")
    if not _USER_RE.match(config.admin_username):
        problems.append(f"admin_username {config.admin_username!r} is not a valid Linux user name")
    for key in ("vm_name", "hostname"):
        if not _HOST_RE.match(getattr(config, key)):
            problems.append(f"{key} {getattr(config, key)!r} is not a valid host name")
    if not _KEY_RE.match(config.ssh_public_key):
        problems.append("ssh_public_key must be one OpenSSH line starting with 'ssh-' (waagent refuses other types)")
    problems.extend(_uuid_problems(config))
    problems.extend(_network_problems(config))
    if config.incarnation < 1:
        problems.append("incarnation must be >= 1")
    return problems


def _uuid_problems(config: PlatformConfig) -> list[str]:
    problems = []
    for key in ("smbios_uuid", "container_id", "subscription_id"):
        try:
            uuid.UUID(getattr(config, key))
        except ValueError:
            problems.append(f"{key} {getattr(config, key)!r} is not a UUID")
    if "." not in config.role_instance_id:
        problems.append(f"role_instance_id {config.role_instance_id!r} is not like <deployment>.<role>")
    return problems


def _network_problems(config: PlatformConfig) -> list[str]:
    problems = []
    for key in ("ipv4_address", "ipv4_gateway"):
        try:
            ipaddress.IPv4Address(getattr(config, key))
        except ValueError:
            problems.append(f"{key} {getattr(config, key)!r} is not an IPv4 address")
    if not 0 < config.ipv4_prefix <= 32:
        problems.append(f"ipv4_prefix {config.ipv4_prefix} is not between 1 and 32")
    return problems


def vm_id_for(smbios_uuid: str, firmware: str) -> str:
    """The VM id the agents derive: first three UUID fields byte-swapped under BIOS (Gen1), unchanged under UEFI."""
    if firmware not in FIRMWARES:
        raise PlatformError(f"unknown firmware {firmware!r}", f"use one of {', '.join(FIRMWARES)}")
    value = uuid.UUID(smbios_uuid)
    if firmware == "bios":
        value = uuid.UUID(bytes=value.bytes_le)
    return str(value)


def marker_custom_data(marker: str) -> bytes:
    """A #cloud-config that writes the marker to MARKER_PATH (proves custom data reached the guest)."""
    return (
        "#cloud-config\n"
        "write_files:\n"
        f"  - path: {MARKER_PATH}\n"
        f"    content: {marker}\n"
        "    permissions: '0644'\n"
    ).encode()


def generate_password() -> str:
    """A random password that meets Azure's complexity rules (upper, lower, digit, symbol; 20 chars)."""
    return f"Aa1!{secrets.token_urlsafe(12)}"


def qemu_smbios_args(config: PlatformConfig) -> list[str]:
    """QEMU arguments that give the guest Azure's DMI identity (UUID, Hyper-V strings, chassis asset tag)."""
    system = f"type=1,manufacturer={SMBIOS_MANUFACTURER},product={SMBIOS_PRODUCT},version={SMBIOS_VERSION}"
    # Type 2 (board) too: QEMU would otherwise report board_vendor "QEMU", which systemd may test first.
    board = f"type=2,manufacturer={SMBIOS_MANUFACTURER},product={SMBIOS_PRODUCT}"
    chassis = f"type=3,manufacturer={SMBIOS_MANUFACTURER},asset={AZURE_ASSET_TAG}"
    return ["-uuid", config.smbios_uuid, "-smbios", system, "-smbios", board, "-smbios", chassis]
