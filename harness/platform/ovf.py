"""Azure provisioning media: ovf-env.xml accepted by cloud-init's and waagent's parsers, on an ISO or UDF disc.

Element rules (reference §2.4): always UserName, ProvisionGuestAgent and PlatformSettings; SSH PublicKey with
Path and Value; DisableSshPasswordAuthentication true unless a password is set; CustomData in base64; every
value XML-escaped.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

from harness.platform.config import MARKER_PATH, PlatformConfig
from harness.platform.media import write_iso

OVF_NS = "http://schemas.dmtf.org/ovf/environment/1"
WA_NS = "http://schemas.microsoft.com/windowsazure"


def volume_label(now: datetime | None = None) -> str:
    """Azure's label for the provisioning disc: rd_rdfe_stable.<yymmdd-hhmm> (UTC)."""
    return f"rd_rdfe_stable.{(now or datetime.now(UTC)):%y%m%d-%H%M}"


def _user_section(config: PlatformConfig) -> str:
    lines = [
        f"      <wa:HostName>{escape(config.hostname)}</wa:HostName>",
        f"      <wa:UserName>{escape(config.admin_username)}</wa:UserName>",
    ]
    if config.password:
        lines.append(f"      <wa:UserPassword>{escape(config.password)}</wa:UserPassword>")
    disable = "false" if config.password else "true"
    lines.append(f"      <wa:DisableSshPasswordAuthentication>{disable}</wa:DisableSshPasswordAuthentication>")
    lines += [
        "      <wa:SSH>",
        "        <wa:PublicKeys>",
        "          <wa:PublicKey>",
        f"            <wa:Path>{escape(config.ssh_key_path)}</wa:Path>",
        f"            <wa:Value>{escape(config.ssh_public_key)}</wa:Value>",
        "          </wa:PublicKey>",
        "        </wa:PublicKeys>",
        "      </wa:SSH>",
    ]
    if config.custom_data:
        lines.append(f"      <wa:CustomData>{base64.b64encode(config.custom_data).decode('ascii')}</wa:CustomData>")
    return "\n".join(lines)


def ovf_env_xml(config: PlatformConfig) -> str:
    """The ovf-env.xml document for config (shape of azure-payloads/ovf-env.xml)."""
    agent = "true" if config.provision_guest_agent else "false"
    return f"""<?xml version="1.0" encoding="utf-8"?>
<Environment xmlns="{OVF_NS}"
             xmlns:oe="{OVF_NS}"
             xmlns:wa="{WA_NS}"
             xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <wa:ProvisioningSection>
    <wa:Version>1.0</wa:Version>
    <wa:LinuxProvisioningConfigurationSet>
      <wa:ConfigurationSetType>LinuxProvisioningConfiguration</wa:ConfigurationSetType>
{_user_section(config)}
    </wa:LinuxProvisioningConfigurationSet>
  </wa:ProvisioningSection>
  <wa:PlatformSettingsSection>
    <wa:Version>1.0</wa:Version>
    <wa:PlatformSettings>
      <wa:KmsServerHostname>kms.core.windows.net</wa:KmsServerHostname>
      <wa:ProvisionGuestAgent>{agent}</wa:ProvisionGuestAgent>
      <wa:GuestAgentPackageName xsi:nil="true"/>
      <wa:RetainWindowsPEPassInUnattend>true</wa:RetainWindowsPEPassInUnattend>
      <wa:RetainOfflineServicingPassInUnattend>true</wa:RetainOfflineServicingPassInUnattend>
      <wa:PreprovisionedVm>false</wa:PreprovisionedVm>
      <wa:PreprovisionedVMType xsi:nil="true"/>
    </wa:PlatformSettings>
  </wa:PlatformSettingsSection>
</Environment>
"""


def provisioning_udf(config: PlatformConfig, path: Path, custom_data_name: str = "CustomData.bin") -> None:
    """Write the provisioning disc as Azure attaches it, whatever the image's agent: UDF (label rd_rdfe_stable.*)
    holding /ovf-env.xml and, with custom data, the raw /CustomData.bin.

    cloud-init and waagent mount it as UDF and read /ovf-env.xml; Ignition (Flatcar) reads /CustomData.bin. The
    disc is an ISO9660/UDF bridge (pycdlib), but its ISO9660 side has no Rock Ridge or Joliet names: an agent that
    mounted it as plain ISO9660 would see `ovf_env.xml` and find nothing, as it would on Azure.
    """
    files = {"ovf-env.xml": ovf_env_xml(config).encode("utf-8")}
    if config.custom_data:
        files[custom_data_name] = config.custom_data
    write_iso(path, files, label=volume_label(), udf=True)


def ignition_custom_data(config: PlatformConfig) -> bytes:
    """An Ignition (spec 3.3.0) config doing what the cloud-init custom data does: the admin user with the
    run's SSH key, and the marker file proving custom data reached the guest (Flatcar reads it from the UDF disc).
    """
    document = {
        "ignition": {"version": "3.3.0"},
        "passwd": {"users": [{"name": config.admin_username, "sshAuthorizedKeys": [config.ssh_public_key],
                              "groups": ["sudo"]}]},
        "storage": {"files": [{"path": MARKER_PATH, "mode": 0o644,
                               "contents": {"source": "data:," + urllib.parse.quote(f"{config.marker}\n")}}]},
    }
    return json.dumps(document, sort_keys=True).encode()


# agent -> the custom data it understands (the marker cloud-config unless listed)
CUSTOM_DATA_BY_AGENT: dict[str, Callable[[PlatformConfig], bytes]] = {"ignition": ignition_custom_data}


def for_agent(config: PlatformConfig, agent: str) -> PlatformConfig:
    """The config with the custom data the agent understands (the marker cloud-config unless overridden)."""
    make = CUSTOM_DATA_BY_AGENT.get(agent)
    return replace(config, custom_data=make(config)) if make else config

