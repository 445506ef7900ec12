"""WireServer documents built from a PlatformConfig (reference §6, azure-payloads/), and health-report parsing."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

from harness.platform.config import PlatformConfig
from harness.platform.requestlog import HealthReport

STATUS_BLOB_PREFIX = "/fake-status-blob/"

VERSIONS_XML = """<?xml version="1.0" encoding="utf-8"?>
<Versions>
  <Preferred>
    <Version>2015-04-05</Version>
  </Preferred>
  <Supported>
    <Version>2015-04-05</Version>
    <Version>2012-11-30</Version>
    <Version>2010-12-15</Version>
  </Supported>
</Versions>
"""


def _guid(config: PlatformConfig, what: str) -> str:
    """A stable per-VM GUID for the documents' decorative guid attributes."""
    return str(uuid.uuid5(uuid.UUID(config.container_id), what))


def config_url(config: PlatformConfig, base_url: str, doc_type: str) -> str:
    """URL of one goal-state configuration document (base_url like http://168.63.129.16:80)."""
    return (
        f"{base_url}/machine/{config.container_id}/{config.role_name}"
        f"?comp=config&type={doc_type}&incarnation={config.incarnation}"
    )


def status_blob_url(config: PlatformConfig, base_url: str) -> str:
    """The StatusUploadBlob URL: on the WireServer itself, which answers a direct PUT with 201."""
    return f"{base_url}{STATUS_BLOB_PREFIX}{config.vm_name}.status?sv=2014-02-14&sr=b&sig=fake"


def config_name(config: PlatformConfig) -> str:
    dep = config.deployment_id
    return f"{dep}.0.{dep}.0.{config.role_name}.{config.incarnation}.xml"


def goal_state_xml(config: PlatformConfig, base_url: str) -> str:
    """The goal state: incarnation, container, one role instance, config URLs; deliberately no <Certificates>."""
    urls = "\n".join(
        f"          <{name}>{escape(config_url(config, base_url, doc))}</{name}>"
        for name, doc in (
            ("HostingEnvironmentConfig", "hostingEnvironmentConfig"),
            ("SharedConfig", "sharedConfig"),
            ("ExtensionsConfig", "extensionsConfig"),
            ("FullConfig", "fullConfig"),
        )
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<GoalState xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="goalstate10.xsd">
  <Version>2012-11-30</Version>
  <Incarnation>{config.incarnation}</Incarnation>
  <Machine>
    <ExpectedState>Started</ExpectedState>
    <StopRolesDeadlineHint>300000</StopRolesDeadlineHint>
    <LBProbePorts>
      <Port>16001</Port>
    </LBProbePorts>
    <ExpectHealthReport>FALSE</ExpectHealthReport>
  </Machine>
  <Container>
    <ContainerId>{escape(config.container_id)}</ContainerId>
    <RoleInstanceList>
      <RoleInstance>
        <InstanceId>{escape(config.role_instance_id)}</InstanceId>
        <State>Started</State>
        <Configuration>
{urls}
          <ConfigName>{escape(config_name(config))}</ConfigName>
        </Configuration>
      </RoleInstance>
    </RoleInstanceList>
  </Container>
</GoalState>
"""


def _deployment_block(config: PlatformConfig) -> str:
    dep = config.deployment_id
    inc = config.incarnation
    return f"""  <Deployment name={quoteattr(dep)} guid="{{{_guid(config, 'deployment')}}}" incarnation="{inc}">
    <Service name={quoteattr(config.vm_name + '-service')} guid="{{00000000-0000-0000-0000-000000000000}}" />
    <ServiceInstance name={quoteattr(dep + '.0')} guid="{{{_guid(config, 'service-instance')}}}" />
  </Deployment>
  <Incarnation number="{inc}" instance={quoteattr(config.role_name)} guid="{{{_guid(config, 'incarnation')}}}" />"""


def hosting_environment_xml(config: PlatformConfig) -> str:
    """waagent reads Incarnation@instance, Role@name and Deployment@name from it."""
    return f"""<HostingEnvironmentConfig version="1.0.0.0" goalStateIncarnation="{config.incarnation}">
  <StoredCertificates />
{_deployment_block(config)}
  <Role guid="{{{_guid(config, 'role')}}}" name={quoteattr(config.role_name)} hostingEnvironmentVersion="1"
        software="" softwareType="ApplicationPackage" entryPoint="" parameters="" settleTimeSeconds="10" />
</HostingEnvironmentConfig>
"""


def shared_config_xml(config: PlatformConfig) -> str:
    """Stored unparsed by waagent; carries the instance's address."""
    return f"""<SharedConfig version="1.0.0.0" goalStateIncarnation="{config.incarnation}">
{_deployment_block(config)}
  <Role guid="{{{_guid(config, 'role')}}}" name={quoteattr(config.role_name)} settleTimeSeconds="10" />
  <Instances>
    <Instance id={quoteattr(config.role_name)} address={quoteattr(config.ipv4_address)}>
      <FaultDomains randomId="0" updateId="0" updateCount="0" />
      <InputEndpoints />
    </Instance>
  </Instances>
</SharedConfig>
"""


def extensions_config_xml(config: PlatformConfig, base_url: str) -> str:
    """No GA families (so no agent download) and no plugins; a StatusUploadBlob on the WireServer.

    The same document is served whatever ProvisionGuestAgent says: with it false waagent reports Ready and idles
    without running the extension handler, so nothing here is read; with it true there is nothing to install.
    """
    return f"""<Extensions version="1.0.0.0" goalStateIncarnation="{config.incarnation}">
  <GuestAgentExtension xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
    <GAFamilies>
    </GAFamilies>
  </GuestAgentExtension>
  <Plugins>
  </Plugins>
  <PluginSettings>
  </PluginSettings>
  <StatusUploadBlob statusBlobType="BlockBlob">{escape(status_blob_url(config, base_url))}</StatusUploadBlob>
  <InVMGoalStateMetaData inSvdSeqNo="{config.incarnation}" createdOnTicks="638000000000000000"
                         activityId="{_guid(config, 'activity')}" correlationId="{_guid(config, 'correlation')}" />
</Extensions>
"""


def full_config_xml(config: PlatformConfig) -> str:
    """Not read by current agents; a small well-formed document with the same identity."""
    return f"""<FullConfig version="1.0.0.0" goalStateIncarnation="{config.incarnation}">
{_deployment_block(config)}
  <Role guid="{{{_guid(config, 'role')}}}" name={quoteattr(config.role_name)} />
</FullConfig>
"""


_TAGS = ("GoalStateIncarnation", "ContainerId", "InstanceId", "State", "SubStatus", "Description")


class HealthDocumentError(ValueError):
    """A health report the WireServer would not take (not well-formed XML, or no State)."""


def parse_health(body: bytes, config: PlatformConfig) -> HealthReport:
    """Parse a Health report (cloud-init's or waagent's); HealthDocumentError when Azure would refuse it."""
    text = body.decode("utf-8", errors="replace")
    values = _health_values_xml(text)
    if values is None:
        raise HealthDocumentError("health report is not well-formed XML")
    if not values.get("State"):
        raise HealthDocumentError("health report has no State")
    echoes = (
        values.get("GoalStateIncarnation") == str(config.incarnation)
        and values.get("ContainerId") == config.container_id
        and values.get("InstanceId") == config.role_instance_id
    )
    return HealthReport(
        state=values["State"], sub_status=values.get("SubStatus", ""), description=values.get("Description", ""),
        incarnation=values.get("GoalStateIncarnation", ""), container_id=values.get("ContainerId", ""),
        instance_id=values.get("InstanceId", ""), echoes_goal_state=echoes,
    )


def _health_values_xml(text: str) -> dict[str, str] | None:
    try:
        root = ET.fromstring(text)  # noqa: S314 - the guest is ours; the body is size-limited
    except ET.ParseError:
        return None
    values: dict[str, str] = {}
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag in _TAGS and tag not in values:
            values[tag] = (element.text or "").strip()
    return values

