"""Azure publish settings (flags > environment > [azure] table > defaults), region resolution, error hints."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

from harness.commands.publish import add_azure_arguments
from harness.commands.publish import azure_target as target_from_args
from harness.errors import PublishError
from harness.publish.arm import Region
from harness.publish.azerrors import publish_error
from harness.publish.azure import resolve_regions
from harness.publish.azure_settings import SETTINGS, AzureTarget, resolve
from harness.publish.model import TargetRegion

BASE = {"subscription_id": "sub", "resource_group": "rg", "location": "westeurope", "gallery": "gal",
        "storage_account": "acct"}
CONN = "DefaultEndpointsProtocol=https;AccountName=myacct;AccountKey=c2VjcmV0a2V5;EndpointSuffix=core.windows.net"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_azure_arguments(p)
    return p


def test_every_setting_is_a_field_of_the_target() -> None:
    fields = set(AzureTarget.__dataclass_fields__)
    assert {s.name for s in SETTINGS} == fields


def test_flags_beat_environment_beat_toml_beat_defaults() -> None:
    table = {**BASE, "location": "toml-region", "container": "from-toml", "replica_count": 2}
    env = {"HARNESS_AZURE_LOCATION": "env-region", "HARNESS_AZURE_CONTAINER": "from-env"}
    target = resolve({"container": "from-flag"}, env, table)
    assert (target.location, target.container, target.replica_count, target.kind) == (
        "env-region", "from-flag", 2, "gallery")
    assert target.upload_concurrency == 8 and target.storage_account_type == "Standard_LRS"


def test_standard_azure_variables_are_read() -> None:
    env = {"AZURE_SUBSCRIPTION_ID": "from-azure-env", "AZURE_STORAGE_CONNECTION_STRING": CONN}
    target = resolve({}, env, {k: v for k, v in BASE.items() if k not in ("subscription_id", "storage_account")})
    assert target.subscription_id == "from-azure-env"
    assert target.account_name() == "myacct"
    assert target.account_id() == "/subscriptions/from-azure-env/resourceGroups/rg/providers/Microsoft.Storage/" \
                                  "storageAccounts/myacct"


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(PublishError) as err:
        resolve({"kind": "gallery", "replica_count": 0}, {},
                {"bogus": 1, "upload_concurrency": "many", "blob_name": "disk.img"})
    message = err.value.message
    for part in ("unknown key 'bogus'", "subscription_id is missing", "resource_group is missing",
                 "location is missing", "gallery is missing", "no storage account", "'many' is not a int",
                 "must end in .vhd", "replica count 0"):
        assert part in message, part
    assert "--azure-config" in err.value.hint


def test_arm_endpoint_must_be_https_or_loopback_http() -> None:
    with pytest.raises(PublishError, match="only https, or plain http on loopback"):
        resolve({"arm_endpoint": "http://arm.example.net"}, {}, BASE)
    assert resolve({"arm_endpoint": "http://127.0.0.1:8080"}, {}, BASE).is_test_endpoint
    assert resolve({"arm_endpoint": "http://[::1]:8080"}, {}, BASE).is_test_endpoint
    assert not resolve({"arm_endpoint": "https://management.usgovcloudapi.net"}, {}, BASE).is_test_endpoint
    assert not resolve({}, {}, BASE).is_test_endpoint


def test_disk_target_needs_no_storage_but_a_disk_sku() -> None:
    plain = {k: v for k, v in BASE.items() if k not in ("gallery", "storage_account")}
    target = resolve({"kind": "disk"}, {}, plain)
    assert target.disk_source == "upload" and not target.needs_blob
    with pytest.raises(PublishError, match="Standard_ZRS is not a storage type for a managed disk"):
        resolve({"kind": "disk", "storage_account_type": "Standard_ZRS"}, {}, plain)
    with pytest.raises(PublishError, match="no storage account"):
        resolve({"kind": "disk", "disk_source": "blob"}, {}, plain)


def test_secrets_stay_out_of_repr_and_json() -> None:
    target = resolve({"storage_connection_string": CONN}, {}, BASE)
    assert "c2VjcmV0a2V5" not in repr(target)
    assert target.to_json()["storage_connection_string"] == "***"


def test_target_from_args_reads_flags_environment_and_toml(tmp_path: Path) -> None:
    config = tmp_path / "azure.toml"
    config.write_text('[azure]\nsubscription_id = "s"\nresource_group = "rg"\nlocation = "westeurope"\n'
                      'gallery = "g"\nstorage_account = "acct"\ncontent_md5 = true\n', encoding="utf-8")
    args = parser().parse_args(["--azure-config", str(config), "--azure-target", "image", "--upload-concurrency",
                                "16"])
    target = target_from_args(args, env={"HARNESS_AZURE_RESOURCE_GROUP": "rg-env"})
    assert (target.kind, target.upload_concurrency, target.resource_group, target.content_md5) == (
        "image", 16, "rg-env", True)
    with pytest.raises(PublishError, match="has no \\[azure\\] table"):
        config.write_text("[other]\n", encoding="utf-8")
        target_from_args(parser().parse_args(["--azure-config", str(config)]), env={})


def test_target_regions_default_to_the_location_and_include_the_source_region() -> None:
    target = resolve({"storage_account_type": "Standard_ZRS", "replica_count": 2}, {}, BASE)
    assert resolve_regions(target, [TargetRegion("local")]) == [Region("westeurope", 1, "Standard_ZRS")]
    assert resolve_regions(target, [("northeurope", 3)]) == [Region("westeurope", 2, "Standard_ZRS"),
                                                             Region("northeurope", 3, "Standard_ZRS")]
    assert resolve_regions(target, [TargetRegion("WestEurope", 4, "Premium_LRS")]) == [
        Region("WestEurope", 4, "Premium_LRS")]


def test_errors_by_type_get_hints_and_never_show_secrets() -> None:
    unreachable = publish_error("reading gallery g", ServiceRequestError("Connection refused"))
    assert "could not be reached" in unreachable.hint
    auth = publish_error("reading gallery g", ClientAuthenticationError("DefaultAzureCredential failed"))
    assert "az login" in auth.hint
    leaky = HttpResponseError(message="bad request to https://a.blob.core.windows.net/c/d.vhd?sv=1&sig=TOPSECRET\n"
                                      "RequestId: 1")
    mapped = publish_error("Put Page", leaky)
    assert "TOPSECRET" not in str(mapped) and "sig=***" in mapped.message and "\n" not in mapped.message
