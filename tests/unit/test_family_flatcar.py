"""Flatcar on the fake platform: the UDF provisioning disc with an Ignition config as /CustomData.bin, and the
WireServer check-in afterburn makes (reference azure-platform.md §1.5, §2.3, §4)."""

from __future__ import annotations

import io
import json
import urllib.parse
from pathlib import Path

import pycdlib

from harness.platform.config import MARKER_PATH, PlatformConfig
from harness.platform.ovf import for_agent, ovf_env_xml, provisioning_udf
from harness.platform.servers import LOOPBACK_BINDS, FakeAzure
from tests.fakes import http_call

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake fake@host"
# afterburn's Azure provider (coreos/afterburn src/providers/microsoft/azure): agent name and protocol version
AFTERBURN_HEADERS = {"x-ms-agent-name": "com.coreos.metadata", "x-ms-version": "2012-11-30"}


def read_udf(path: Path, name: str) -> bytes:
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        assert iso.has_udf()
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, udf_path=f"/{name}")
        label = iso.pvd.volume_identifier.decode("ascii").rstrip()
        assert label.startswith("rd_rdfe_stable.")
        return out.getvalue()
    finally:
        iso.close()


def test_ignition_agent_gets_a_udf_disc_with_an_ignition_config(tmp_path: Path) -> None:
    config = for_agent(PlatformConfig.new(ssh_public_key=KEY), "ignition")
    disc = tmp_path / "provisioning.iso"
    provisioning_udf(config, disc)
    ignition = json.loads(read_udf(disc, "CustomData.bin"))
    assert ignition["ignition"]["version"] == "3.3.0"
    (user,) = ignition["passwd"]["users"]
    assert user["name"] == config.admin_username and user["sshAuthorizedKeys"] == [KEY]
    (marker,) = ignition["storage"]["files"]
    assert marker["path"] == MARKER_PATH and marker["mode"] == 0o644
    assert urllib.parse.unquote(marker["contents"]["source"].removeprefix("data:,")) == f"{config.marker}\n"
    assert read_udf(disc, "ovf-env.xml") == ovf_env_xml(config).encode()
    assert list(tmp_path.iterdir()) == [disc]


def test_cloud_init_gets_the_same_udf_disc_with_its_marker_cloud_config(tmp_path: Path) -> None:
    config = PlatformConfig.new(ssh_public_key=KEY)
    assert for_agent(config, "cloud-init") is config and config.custom_data.startswith(b"#cloud-config")
    disc = tmp_path / "provisioning.iso"
    provisioning_udf(for_agent(config, "cloud-init"), disc)
    assert read_udf(disc, "ovf-env.xml") == ovf_env_xml(config).encode()
    assert read_udf(disc, "CustomData.bin") == config.custom_data  # Azure's disc carries it for every agent


def _call(fake: FakeAzure, method: str, path: str, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    return http_call(fake.addresses["wireserver"], method, path, headers, body, timeout_s=5)


def test_afterburn_check_in_is_a_ready_report() -> None:
    config = for_agent(PlatformConfig.new(ssh_public_key=KEY), "ignition")
    with FakeAzure(config, binds=LOOPBACK_BINDS) as fake:
        status, versions = _call(fake, "GET", "/?comp=versions")
        assert status == 200 and b"2012-11-30" in versions
        status, goal = _call(fake, "GET", "/machine/?comp=goalstate", headers=AFTERBURN_HEADERS)
        assert status == 200 and config.container_id.encode() in goal
        health = (f'<?xml version="1.0" encoding="utf-8"?><Health><GoalStateIncarnation>{config.incarnation}'
                  f"</GoalStateIncarnation><Container><ContainerId>{config.container_id}</ContainerId>"
                  f"<RoleInstanceList><Role><InstanceId>{config.role_instance_id}</InstanceId><Health>"
                  "<State>Ready</State></Health></Role></RoleInstanceList></Container></Health>").encode()
        headers = {**AFTERBURN_HEADERS, "Content-Type": "text/xml; charset=utf-8"}
        assert _call(fake, "POST", "/machine/?comp=health", health, headers)[0] == 200
        result = fake.wait_ready(timeout_s=5)
        assert result.ready and result.report is not None and result.report.echoes_goal_state
