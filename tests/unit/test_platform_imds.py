"""The fake IMDS over real HTTP on 127.0.0.1: every request rule and the instance document's values."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from harness.platform.config import PlatformConfig
from harness.platform.servers import LOOPBACK_BINDS, FakeAzure

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake fake@host"
UUID = "12345678-9abc-def0-1234-56789abcdef0"
INSTANCE = "/metadata/instance?api-version=2021-08-01"


def _config(firmware: str = "bios") -> PlatformConfig:
    config = PlatformConfig.new(ssh_public_key=KEY, firmware=firmware, mac="52:54:00:ab:cd:0e",
                                ipv4_address="10.0.2.15", ipv4_prefix=24)
    return replace(config, smbios_uuid=UUID)


@pytest.fixture
def platform() -> Iterator[FakeAzure]:
    with FakeAzure(_config(), binds=LOOPBACK_BINDS) as fake:
        yield fake


def _get(platform: FakeAzure, path: str, headers: dict[str, str] | None = None,
         method: str = "GET") -> tuple[int, str, bytes]:
    host, port = platform.addresses["imds"]
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request(method, path, headers=headers if headers is not None else {"Metadata": "true"})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        connection.close()


def _json(platform: FakeAzure, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    status, _, body = _get(platform, path, headers)
    return status, json.loads(body)


@pytest.mark.parametrize("value", ["true", "True", "TRUE"])
def test_metadata_header_is_compared_case_insensitively(platform: FakeAzure, value: str) -> None:
    status, document = _json(platform, INSTANCE, {"Metadata": value})
    assert status == 200
    assert document["compute"]["name"] == platform.config.vm_name


@pytest.mark.parametrize("headers", [{}, {"Metadata": "false"}, {"Metadata": ""}])
def test_missing_or_false_metadata_header_is_400(platform: FakeAzure, headers: dict[str, str]) -> None:
    status, body = _json(platform, INSTANCE, headers)
    assert status == 400
    assert body == {"error": "Bad request. Required metadata header not specified"}


def test_forwarded_request_is_400(platform: FakeAzure) -> None:
    status, body = _json(platform, INSTANCE, {"Metadata": "true", "X-Forwarded-For": "10.0.0.1"})
    assert status == 400
    assert "X-Forwarded-For" in body["error"]


@pytest.mark.parametrize("query", ["", "?api-version=", "?api-version=2099-01-01", "?api-version=latest"])
def test_missing_or_unknown_api_version_is_400_with_newest_versions(platform: FakeAzure, query: str) -> None:
    status, body = _json(platform, f"/metadata/instance{query}")
    assert status == 400
    assert "api-version" in body["error"]
    assert body["newest-versions"] == ["2023-07-01", "2023-03-01", "2022-12-01"]


@pytest.mark.parametrize("version", ["2018-02-01", "2019-06-01", "2021-02-01", "2021-08-01", "2017-08-01"])
def test_versions_the_agents_use_are_accepted(platform: FakeAzure, version: str) -> None:
    status, document = _json(platform, f"/metadata/instance?api-version={version}")
    assert status == 200
    assert set(document) == {"compute", "network"}


def test_versions_endpoint_needs_no_api_version(platform: FakeAzure) -> None:
    status, body = _json(platform, "/metadata/versions")
    assert status == 200
    assert {"2018-02-01", "2019-06-01", "2021-02-01", "2021-08-01"} <= set(body["apiVersions"])


@pytest.mark.parametrize("path", ["/metadata/foo?api-version=2021-08-01", "/", "/metadata",
                                  "/metadata/instance/compute/nope?api-version=2021-08-01",
                                  "/metadata/instance/network/interface/5?api-version=2021-08-01",
                                  "/metadata/versions/x"])
def test_unknown_paths_are_404(platform: FakeAzure, path: str) -> None:
    status, body = _json(platform, path)
    assert status == 404
    assert "API not found" in body["error"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_other_methods_are_405(platform: FakeAzure, method: str) -> None:
    status, _, body = _get(platform, INSTANCE, {"Metadata": "true"}, method=method)
    assert status == 405
    assert method in json.loads(body)["error"]


def test_sub_path_selects_a_sub_tree(platform: FakeAzure) -> None:
    status, compute = _json(platform, "/metadata/instance/compute?api-version=2018-02-01")
    assert status == 200
    assert compute["vmId"] == "78563412-bc9a-f0de-1234-56789abcdef0"
    assert "network" not in compute and "compute" not in compute
    status, interface = _json(platform, "/metadata/instance/network/interface/0?api-version=2021-08-01")
    assert status == 200 and interface["macAddress"] == "525400ABCD0E"


def test_text_format_for_leaves_and_inner_nodes(platform: FakeAzure) -> None:
    status, content_type, body = _get(platform, "/metadata/instance/compute/vmId?api-version=2021-08-01&format=text")
    assert (status, body) == (200, b"78563412-bc9a-f0de-1234-56789abcdef0")
    assert content_type.startswith("text/plain")
    path = "/metadata/instance/network/interface/0/ipv4/ipAddress/0/privateIpAddress?api-version=2021-08-01&format=text"
    assert _get(platform, path)[2] == b"10.0.2.15"
    status, _, body = _get(platform, "/metadata/instance/compute/osProfile?api-version=2021-08-01&format=text")
    assert body.decode().splitlines() == ["adminUsername", "computerName", "disablePasswordAuthentication"]
    assert _get(platform, "/metadata/instance?api-version=2021-08-01&format=text")[2] == b"compute/\nnetwork/"


def test_leaf_without_text_format_is_400(platform: FakeAzure) -> None:
    status, body = _json(platform, "/metadata/instance/compute/vmId?api-version=2021-08-01")
    assert status == 400 and "format=text" in body["error"]


def test_extended_only_with_extended_true(platform: FakeAzure) -> None:
    assert "extended" not in _json(platform, INSTANCE)[1]
    assert "extended" not in _json(platform, INSTANCE + "&extended=false")[1]
    document = _json(platform, INSTANCE + "&extended=true")[1]
    assert document["extended"] == {"compute": {"ppsType": "None", "hasCustomData": True}}


def _leaves(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, f"{path}[{index}]")
    else:
        yield path, node


def test_every_leaf_is_a_string_except_has_custom_data(platform: FakeAzure) -> None:
    document = _json(platform, INSTANCE + "&extended=true")[1]
    leaves = dict(_leaves(document))
    assert leaves.pop(".extended.compute.hasCustomData") is True
    assert leaves and all(isinstance(value, str) for value in leaves.values())


def test_instance_document_values_come_from_the_config(platform: FakeAzure) -> None:
    config = platform.config
    document = _json(platform, INSTANCE)[1]
    compute, interface = document["compute"], document["network"]["interface"][0]
    assert compute["osProfile"] == {"adminUsername": config.admin_username, "computerName": config.hostname,
                                    "disablePasswordAuthentication": "true"}
    assert compute["publicKeys"] == [{"keyData": KEY, "path": f"/home/{config.admin_username}/.ssh/authorized_keys"}]
    assert compute["subscriptionId"] == config.subscription_id
    assert compute["resourceId"].endswith(f"/resourceGroups/{config.resource_group}/providers/Microsoft.Compute/"
                                          f"virtualMachines/{config.vm_name}")
    assert interface["macAddress"] == "525400ABCD0E"
    assert interface["ipv4"] == {"ipAddress": [{"privateIpAddress": "10.0.2.15", "publicIpAddress": ""}],
                                 "subnet": [{"address": "10.0.2.0", "prefix": "24"}]}


@pytest.mark.parametrize(("firmware", "vm_id"), [("bios", "78563412-bc9a-f0de-1234-56789abcdef0"),
                                                 ("uefi", UUID)])
def test_vm_id_follows_the_firmware_rule(firmware: str, vm_id: str) -> None:
    with FakeAzure(_config(firmware), binds=LOOPBACK_BINDS) as fake:
        assert _json(fake, INSTANCE)[1]["compute"]["vmId"] == vm_id


def test_keep_alive_serves_several_requests_on_one_connection(platform: FakeAzure) -> None:
    host, port = platform.addresses["imds"]
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        clients = set()
        for _ in range(3):
            connection.request("GET", INSTANCE, headers={"Metadata": "True"})
            response = connection.getresponse()
            assert response.status == 200 and response.version == 11
            response.read()
            clients.add(platform.requests()[-1]["client"])
    finally:
        connection.close()
    assert len(clients) == 1  # same source port: one TCP connection
