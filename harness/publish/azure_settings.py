"""Azure publish settings: one table drives the flags, the environment variables and the `[azure]` TOML table.

Precedence: command-line flag > environment variable > `--azure-config FILE` ([azure] table) > default.
Every setting `name` is read from `HARNESS_AZURE_<NAME>` (plus the usual Azure variable where one exists,
e.g. AZURE_SUBSCRIPTION_ID) and from the key `name` in the TOML table. Problems are reported all at once.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.errors import PublishError
from harness.publish.model import STORAGE_ACCOUNT_TYPES

KINDS = ("gallery", "image", "disk")
REPLICATION_MODES = ("full", "shallow")
DISK_SOURCES = ("upload", "blob")
# Managed-disk SKUs (also the storage types of a managed image's OS disk); Standard_ZRS is not one of them.
DISK_SKUS = ("Standard_LRS", "Premium_LRS", "StandardSSD_LRS", "StandardSSD_ZRS", "Premium_ZRS", "PremiumV2_LRS")
MAX_REPLICAS = 100
MAX_CONCURRENCY = 64


@dataclass(frozen=True)
class Setting:
    """One Azure setting: its flag, extra environment names, type, default and help."""

    name: str
    flag: str
    help: str
    kind: type = str
    default: Any = None
    choices: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    metavar: str = ""

    @property
    def env_names(self) -> tuple[str, ...]:
        return (f"HARNESS_AZURE_{self.name.upper()}", *self.env)


SETTINGS: tuple[Setting, ...] = (
    Setting("subscription_id", "--subscription", "Azure subscription id", env=("AZURE_SUBSCRIPTION_ID",),
            metavar="ID"),
    Setting("resource_group", "--resource-group", "resource group of the gallery, image or disk", metavar="NAME"),
    Setting("location", "--location", "region of the resources, e.g. westeurope (also the source region)",
            metavar="REGION"),
    Setting("kind", "--azure-target", "what to create: a gallery image version (default), a managed image or a "
            "managed disk", default="gallery", choices=KINDS),
    Setting("gallery", "--azure-gallery", "Azure Compute Gallery name (created when missing)", metavar="NAME"),
    Setting("storage_account", "--storage-account", "storage account for the VHD blob", metavar="NAME"),
    Setting("container", "--container", "blob container for VHDs (created when missing; default vhds)",
            default="vhds", metavar="NAME"),
    Setting("blob_name", "--blob-name", "blob name (default <recipe>-<build id>.vhd)", metavar="NAME"),
    Setting("storage_account_url", "--storage-account-url", "blob endpoint instead of "
            "https://<account>.blob.core.windows.net (sovereign clouds, emulators)", metavar="URL"),
    Setting("storage_connection_string", "--storage-connection-string", "storage connection string (holds a key: "
            "prefer the environment variable); replaces Azure AD sign-in for the blob, e.g. for Azurite",
            env=("AZURE_STORAGE_CONNECTION_STRING",), metavar="STRING"),
    Setting("storage_account_id", "--storage-account-id", "resource id of the storage account (default: derived "
            "from subscription, resource group and account)", metavar="ID"),
    Setting("storage_account_type", "--storage-account-type", "replica storage (default Standard_LRS; also the "
            "managed image's and disk's SKU)", default="Standard_LRS", choices=STORAGE_ACCOUNT_TYPES),
    Setting("replica_count", "--replica-count", "default replicas per region (default 1)", kind=int, default=1,
            metavar="N"),
    Setting("replication_mode", "--replication-mode", "gallery versions: 'full' copies the image into every target "
            "region (Azure's default), 'shallow' serves it from the source region only (one region, one replica: "
            "quick CI test versions, never production)", choices=REPLICATION_MODES),
    Setting("disk_source", "--disk-source", "--azure-target disk: 'upload' writes the VHD straight into the disk "
            "(no storage account), 'blob' imports the uploaded blob (default upload)", default="upload",
            choices=DISK_SOURCES),
    Setting("resource_name", "--resource-name", "name of the managed image or disk (default <definition>-<version>)",
            metavar="NAME"),
    Setting("arm_endpoint", "--arm-endpoint", "Azure Resource Manager URL (default https://management.azure.com). "
            "A plain-http loopback URL is a local test endpoint: no credential is sent and operations are polled "
            "without delay", metavar="URL"),
    Setting("arm_poll_interval_s", "--arm-poll-interval", "seconds between polls of a long-running operation "
            "(default: the SDK's 30, or 0 for a test endpoint)", kind=float, metavar="S"),
    Setting("storage_api_version", "--storage-api-version", "pin the blob service API version (e.g. 2025-11-05 for "
            "an Azurite that rejects newer ones)", metavar="YYYY-MM-DD"),
    Setting("upload_concurrency", "--upload-concurrency", "parallel Put Page requests (default 8)", kind=int,
            default=8, metavar="N"),
    Setting("content_md5", "--content-md5", "also compute the whole-file MD5 and set Content-MD5 (about 60 s of CPU "
            "per 30 GiB, run alongside the upload)", kind=bool, default=False),
)
BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class AzureTarget:
    """Where and how to publish on Azure; secrets are kept out of repr() and to_json()."""

    subscription_id: str
    resource_group: str
    location: str
    kind: str = "gallery"
    gallery: str | None = None
    storage_account: str | None = None
    container: str = "vhds"
    blob_name: str | None = None
    storage_account_url: str | None = None
    storage_connection_string: str | None = field(default=None, repr=False)
    storage_account_id: str | None = None
    storage_account_type: str = "Standard_LRS"
    replica_count: int = 1
    replication_mode: str | None = None  # None: Azure's default (Full)
    disk_source: str = "upload"
    resource_name: str | None = None
    arm_endpoint: str | None = None
    arm_poll_interval_s: float | None = None
    storage_api_version: str | None = None
    upload_concurrency: int = 8
    content_md5: bool = False

    @property
    def is_test_endpoint(self) -> bool:
        """A plain-http loopback ARM endpoint (a local fake): no bearer token over http, no poll delay."""
        return bool(self.arm_endpoint) and _is_loopback_http(str(self.arm_endpoint))

    @property
    def needs_blob(self) -> bool:
        return self.kind != "disk" or self.disk_source == "blob"

    def account_name(self) -> str | None:
        """Storage account name from --storage-account, the connection string or the account URL."""
        if self.storage_account:
            return self.storage_account
        if self.storage_connection_string:
            parts = dict(p.split("=", 1) for p in self.storage_connection_string.split(";") if "=" in p)
            if parts.get("AccountName"):
                return parts["AccountName"]
        if self.storage_account_url:
            url = urlsplit(self.storage_account_url)
            path = url.path.strip("/")
            return path.split("/")[0] if path else (url.hostname or "").split(".")[0] or None
        return None

    def account_id(self) -> str:
        """ARM resource id of the storage account holding the VHD blob."""
        if self.storage_account_id:
            return self.storage_account_id
        return (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.Storage/storageAccounts/{self.account_name()}")

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["storage_connection_string"] = "***" if self.storage_connection_string else None
        return data


def _is_loopback_http(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme != "http":
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_toml(path: Path) -> dict[str, Any]:
    """The [azure] table of a TOML file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PublishError(f"Azure config {path} does not exist", "fix --azure-config") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PublishError(f"Azure config {path} is not valid TOML: {exc}", "fix the file") from exc
    table = data.get("azure")
    if not isinstance(table, dict):
        raise PublishError(f"Azure config {path} has no [azure] table", "put the settings under [azure]")
    return table


def _convert(setting: Setting, value: Any, source: str, problems: list[str]) -> Any:
    if setting.kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "0", "false", "no"):
            return value.lower() in ("1", "true", "yes")
    elif setting.kind is int and not isinstance(value, bool):
        try:
            return int(value)
        except (TypeError, ValueError):
            pass
    elif setting.kind is float and not isinstance(value, bool):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    elif isinstance(value, str):
        return value
    problems.append(f"{source}: {value!r} is not a {setting.kind.__name__}")
    return setting.default


def resolve(flags: Mapping[str, Any], env: Mapping[str, str], table: Mapping[str, Any],
            source_name: str = "[azure]", *, needs_storage: bool = True) -> AzureTarget:
    """Merge flags > environment > TOML table > defaults into an AzureTarget, reporting every problem at once.

    `needs_storage=False` (promote: no upload) does not ask for a storage account."""
    problems = [f"{source_name}: unknown key {key!r} (known: {', '.join(BY_NAME)})" for key in table
                if key not in BY_NAME]
    values: dict[str, Any] = {}
    for s in SETTINGS:
        env_name = next((n for n in s.env_names if env.get(n)), None)
        if flags.get(s.name) is not None:
            value, source = flags[s.name], s.flag
        elif env_name is not None:
            value, source = env[env_name], env_name
        elif s.name in table:
            value, source = table[s.name], f"{source_name} {s.name}"
        else:
            values[s.name] = s.default
            continue
        values[s.name] = _convert(s, value, source, problems)
        if s.choices and values[s.name] not in s.choices:
            problems.append(f"{source}: {values[s.name]!r} is not one of {', '.join(s.choices)}")
    problems += _check(values, needs_storage)
    if problems:
        raise PublishError("Azure settings are incomplete or invalid: " + "; ".join(problems),
                           "set them with flags, HARNESS_AZURE_<NAME> variables or an [azure] table "
                           "(--azure-config FILE); see 'harness publish --help'")
    return AzureTarget(**values)


def _where(name: str) -> str:
    s = BY_NAME[name]
    return f"{s.flag}, {s.env_names[-1]} or {name} in [azure]"


def _check(v: dict[str, Any], needs_storage: bool = True) -> list[str]:
    problems = [f"{name} is missing (set {_where(name)})"
                for name in ("subscription_id", "resource_group", "location") if not v.get(name)]
    if v["kind"] == "gallery" and not v.get("gallery"):
        problems.append(f"gallery is missing for --azure-target gallery (set {_where('gallery')})")
    needs_blob = needs_storage and (v["kind"] != "disk" or v["disk_source"] == "blob")
    if needs_blob and not (v.get("storage_account") or v.get("storage_connection_string")
                           or v.get("storage_account_url")):
        problems.append("no storage account for the VHD blob (set --storage-account, --storage-account-url or "
                        "--storage-connection-string)")
    if v.get("blob_name") and not str(v["blob_name"]).endswith(".vhd"):
        problems.append(f"blob name {v['blob_name']!r} must end in .vhd (tools pick the page-blob type from it)")
    endpoint = v.get("arm_endpoint")
    if endpoint and urlsplit(endpoint).scheme != "https" and not _is_loopback_http(endpoint):
        problems.append(f"--arm-endpoint {endpoint!r}: only https, or plain http on loopback for a test endpoint")
    if v["kind"] in ("disk", "image") and v["storage_account_type"] not in DISK_SKUS:
        problems.append(f"{v['storage_account_type']} is not a storage type for a managed {v['kind']} "
                        f"(use one of {', '.join(DISK_SKUS)})")
    if v.get("replication_mode") and v["kind"] != "gallery":
        problems.append(f"--replication-mode applies to gallery image versions, not to a managed {v['kind']}")
    if not 1 <= int(v["replica_count"]) <= MAX_REPLICAS:
        problems.append(f"replica count {v['replica_count']} is not within 1..{MAX_REPLICAS}")
    if not 1 <= int(v["upload_concurrency"]) <= MAX_CONCURRENCY:
        problems.append(f"upload concurrency {v['upload_concurrency']} is not within 1..{MAX_CONCURRENCY}")
    return problems
