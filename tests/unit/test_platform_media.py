"""ovf-env.xml content, the provisioning ISO/UDF discs and the NoCloud seed, read back with pycdlib."""

from __future__ import annotations

import base64
import io
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pycdlib
import pytest
import yaml

from harness.errors import PlatformError
from harness.platform.config import MARKER_PATH, PlatformConfig
from harness.platform.media import iso9660_name, write_iso
from harness.platform.nocloud import nocloud_user_data, seed_iso
from harness.platform.ovf import ovf_env_xml, provisioning_udf, volume_label

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake fake@host"
OVF = "{http://schemas.dmtf.org/ovf/environment/1}"
WA = "{http://schemas.microsoft.com/windowsazure}"


def _config(**changes: object) -> PlatformConfig:
    return replace(PlatformConfig.new(ssh_public_key=KEY), **changes)  # type: ignore[arg-type]


def _wa(root: ET.Element, path: str) -> list[ET.Element]:
    return root.findall("/".join(f"{WA}{part}" for part in path.split("/")))


def _text(root: ET.Element, path: str) -> str:
    found = _wa(root, path)
    assert len(found) == 1, f"{path}: {len(found)} elements"  # both parsers reject duplicates
    return found[0].text or ""


def test_ovf_has_every_element_both_agents_require() -> None:
    config = _config()
    root = ET.fromstring(ovf_env_xml(config))
    assert root.tag == f"{OVF}Environment"
    # cloud-init: ProvisioningSection a direct child of root, then the configuration set with HostName.
    assert _text(root, "ProvisioningSection/Version") == "1.0"
    base = "ProvisioningSection/LinuxProvisioningConfigurationSet"
    assert _text(root, f"{base}/ConfigurationSetType") == "LinuxProvisioningConfiguration"
    assert _text(root, f"{base}/HostName") == config.hostname
    # waagent additionally requires UserName, PlatformSettings and ProvisionGuestAgent.
    assert _text(root, f"{base}/UserName") == config.admin_username
    assert _text(root, "PlatformSettingsSection/Version") == "1.0"
    assert _text(root, "PlatformSettingsSection/PlatformSettings/ProvisionGuestAgent") == "true"
    assert _text(root, f"{base}/SSH/PublicKeys/PublicKey/Path") == f"/home/{config.admin_username}/.ssh/authorized_keys"
    assert _text(root, f"{base}/SSH/PublicKeys/PublicKey/Value") == KEY
    assert _text(root, f"{base}/DisableSshPasswordAuthentication") == "true"
    assert _wa(root, f"{base}/UserPassword") == []
    assert base64.b64decode(_text(root, f"{base}/CustomData")) == config.custom_data


def test_ovf_with_password_escapes_and_enables_password_auth() -> None:
    password = "P<&>'\"w0rd"
    config = _config(password=password, provision_guest_agent=False, custom_data=b"")
    text = ovf_env_xml(config)
    assert password not in text  # escaped, not raw
    root = ET.fromstring(text)
    base = "ProvisioningSection/LinuxProvisioningConfigurationSet"
    assert _text(root, f"{base}/UserPassword") == password
    assert _text(root, f"{base}/DisableSshPasswordAuthentication") == "false"
    assert _text(root, "PlatformSettingsSection/PlatformSettings/ProvisionGuestAgent") == "false"
    assert _wa(root, f"{base}/CustomData") == []


def test_ovf_escapes_key_comment() -> None:
    key = "ssh-rsa AAAAB3NzaC1yc2E= me&you <at> host"
    root = ET.fromstring(ovf_env_xml(_config(ssh_public_key=key)))
    assert _text(root, "ProvisioningSection/LinuxProvisioningConfigurationSet/SSH/PublicKeys/PublicKey/Value") == key


def _read(path: Path, **where: str) -> bytes:
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, **where)
        return out.getvalue()
    finally:
        iso.close()


def _labels(path: Path) -> tuple[str, bool, bool, bool]:
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        label = iso.pvd.volume_identifier.decode("ascii").rstrip()
        return label, iso.has_rock_ridge(), iso.has_joliet(), iso.has_udf()
    finally:
        iso.close()


def test_provisioning_disc_is_udf_only_for_the_agents(tmp_path: Path) -> None:
    """Azure attaches UDF: the agents find /ovf-env.xml on the UDF side only. The ISO9660 side of pycdlib's bridge
    has no Rock Ridge or Joliet names, so a guest mounting it as plain ISO9660 would not find ovf-env.xml."""
    config = _config(password="S3cret")
    path = tmp_path / "ovf.iso"
    provisioning_udf(config, path)
    assert _read(path, udf_path="/ovf-env.xml") == ovf_env_xml(config).encode()
    label, rock_ridge, joliet, udf = _labels(path)
    assert label.startswith("rd_rdfe_stable.") and len(label) == len("rd_rdfe_stable.250101-0000")
    assert (rock_ridge, joliet, udf) == (False, False, True)
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_provisioning_udf_carries_ovf_and_custom_data(tmp_path: Path) -> None:
    config = _config(custom_data=b'{"ignition": {"version": "3.3.0"}}')
    path = tmp_path / "ovf-udf.iso"
    provisioning_udf(config, path)
    assert _read(path, udf_path="/CustomData.bin") == config.custom_data
    assert _read(path, udf_path="/ovf-env.xml") == ovf_env_xml(config).encode()
    label, _, _, udf = _labels(path)
    assert udf and label.startswith("rd_rdfe_stable.")


def test_volume_label_format() -> None:
    from datetime import UTC, datetime

    assert volume_label(datetime(2025, 1, 2, 3, 4, tzinfo=UTC)) == "rd_rdfe_stable.250102-0304"


def test_iso9660_names() -> None:
    assert iso9660_name("ovf-env.xml") == "OVF_ENV.XML;1"
    assert iso9660_name("user-data") == "USER_DATA.;1"
    assert iso9660_name("CustomData.bin") == "CUSTOMDATA.BIN;1"


def test_write_iso_refuses_colliding_names_and_long_labels(tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match="collide"):
        write_iso(tmp_path / "x.iso", {"a-b": b"1", "a_b": b"2"}, label="x")
    with pytest.raises(PlatformError, match="volume label"):
        write_iso(tmp_path / "x.iso", {"a": b"1"}, label="x" * 33)
    assert not list(tmp_path.iterdir())


def test_nocloud_seed_has_cidata_label_and_three_files(tmp_path: Path) -> None:
    path = tmp_path / "seed.iso"
    seed_iso(path, user_data="#cloud-config\n{}\n", meta_data="instance-id: i-1\n", network_config="version: 2\n")
    label, rock_ridge, joliet, _ = _labels(path)
    assert (label, rock_ridge, joliet) == ("cidata", True, True)
    assert _read(path, rr_path="/user-data") == b"#cloud-config\n{}\n"
    assert _read(path, joliet_path="/meta-data") == b"instance-id: i-1\n"
    assert _read(path, rr_path="/network-config") == b"version: 2\n"


def test_nocloud_seed_without_network_config(tmp_path: Path) -> None:
    path = tmp_path / "seed.iso"
    seed_iso(path, user_data="#cloud-config\n", meta_data="instance-id: i-1\n")
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        names = sorted(c.rock_ridge.name() for c in iso.list_children(rr_path="/") if c.rock_ridge and c.is_file())
    finally:
        iso.close()
    assert names == [b"meta-data", b"user-data"]


def test_nocloud_user_data_builds_the_admin_user() -> None:
    config = _config()
    user_data, meta_data = nocloud_user_data(config)
    assert user_data.startswith("#cloud-config\n")
    cloud = yaml.safe_load(user_data)
    assert cloud["hostname"] == config.hostname
    assert cloud["ssh_pwauth"] is False
    (user,) = cloud["users"]
    assert user["name"] == config.admin_username
    assert user["ssh_authorized_keys"] == [KEY]
    assert user["lock_passwd"] is True and "plain_text_passwd" not in user
    assert cloud["write_files"] == [{"path": MARKER_PATH, "content": f"{config.marker}\n", "permissions": "0644"}]
    assert yaml.safe_load(meta_data) == {"instance-id": f"iid-{config.smbios_uuid}", "local-hostname": config.hostname}


def test_nocloud_user_data_with_password() -> None:
    cloud = yaml.safe_load(nocloud_user_data(_config(password="S3cret: #1"))[0])
    assert cloud["ssh_pwauth"] is True
    assert cloud["users"][0]["plain_text_passwd"] == "S3cret: #1"
    assert cloud["users"][0]["lock_passwd"] is False
