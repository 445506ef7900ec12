"""WireServer and HostGAPlugin over real HTTP: cloud-init's and waagent's sequences, wait_ready outcomes."""

from __future__ import annotations

import base64
import json
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from harness.platform.config import PlatformConfig
from harness.platform.servers import LOOPBACK_BINDS, FakeAzure
from tests.fakes import http_call

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake fake@host"
AGENT_HEADERS = {"x-ms-agent-name": "WALinuxAgent", "x-ms-version": "2012-11-30"}
# cloud-init's report (reference §4), with the ids filled in.
CLOUD_INIT_HEALTH = """<?xml version="1.0" encoding="utf-8"?>
<Health xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <GoalStateIncarnation>{incarnation}</GoalStateIncarnation>
  <Container>
    <ContainerId>{container}</ContainerId>
    <RoleInstanceList>
      <Role>
        <InstanceId>{instance}</InstanceId>
        <Health>
          <State>{state}</State>{details}
        </Health>
      </Role>
    </RoleInstanceList>
  </Container>
</Health>
"""
# waagent's report: the same document without whitespace.
WAAGENT_HEALTH = (
    '<?xml version="1.0" encoding="utf-8"?><Health xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema"><GoalStateIncarnation>{incarnation}</GoalStateIncarnation>'
    "<Container><ContainerId>{container}</ContainerId><RoleInstanceList><Role><InstanceId>{instance}</InstanceId>"
    "<Health><State>{state}</State>{details}</Health></Role></RoleInstanceList></Container></Health>"
)


def _details(sub_status: str, description: str) -> str:
    return f"<Details><SubStatus>{sub_status}</SubStatus><Description>{description}</Description></Details>"


@pytest.fixture
def platform() -> Iterator[FakeAzure]:
    with FakeAzure(PlatformConfig.new(ssh_public_key=KEY), binds=LOOPBACK_BINDS) as fake:
        yield fake


def call(platform: FakeAzure, server: str, method: str, path: str, headers: dict[str, str] | None = None,
         *, body: bytes | None = None) -> tuple[int, bytes]:
    return http_call(platform.addresses[server], method, path, headers, body, timeout_s=5)


def health_body(platform: FakeAzure, state: str, details: str = "", template: str = CLOUD_INIT_HEALTH) -> bytes:
    config = platform.config
    return template.format(incarnation=config.incarnation, container=config.container_id,
                           instance=config.role_instance_id, state=state, details=details).encode()


def post_health(platform: FakeAzure, body: bytes, path: str = "/machine?comp=health") -> int:
    headers = {**AGENT_HEADERS, "Content-Type": "text/xml; charset=utf-8"}
    return call(platform, "wireserver", "POST", path, headers, body=body)[0]


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_goal_state_parses_and_echoes_the_ids(platform: FakeAzure) -> None:
    status, body = call(platform, "wireserver", "GET", "/machine/?comp=goalstate", AGENT_HEADERS)
    assert status == 200
    root = ET.fromstring(body)
    config = platform.config
    assert root.findtext("Incarnation") == "1"
    assert root.findtext("Container/ContainerId") == config.container_id
    instance = root.find("Container/RoleInstanceList/RoleInstance")
    assert instance is not None and instance.findtext("InstanceId") == config.role_instance_id
    assert instance.find("Configuration/Certificates") is None
    url = instance.findtext("Configuration/HostingEnvironmentConfig") or ""
    assert url.startswith(platform.url("wireserver") + f"/machine/{config.container_id}/{config.role_name}?")
    assert "&type=hostingEnvironmentConfig&incarnation=1" in url
    assert [e.kind for e in platform.events()].count("goal-state") == 1


def test_cloud_init_ready_report_makes_wait_ready_return(platform: FakeAzure) -> None:
    call(platform, "wireserver", "GET", "/machine/?comp=goalstate", AGENT_HEADERS)
    threading.Timer(0.2, post_health, (platform, health_body(platform, "Ready"))).start()
    started = time.monotonic()
    result = platform.wait_ready(timeout_s=10)
    assert result.ready and not result.timed_out
    assert time.monotonic() - started < 5
    assert result.report is not None and result.report.state == "Ready" and result.report.echoes_goal_state
    summary = platform.summary()
    assert summary["ready_reports"] == 1 and summary["ready"] is not None and summary["goal_state_fetches"] == 1
    health = [r for r in platform.requests() if r["endpoint"] == "health"]
    assert health[0]["headers"]["x-ms-agent-name"] == "WALinuxAgent" and health[0]["status"] == 200
    assert health[0]["missing_headers"] == []


def test_provisioning_failed_makes_wait_ready_fail_fast_with_the_description(platform: FakeAzure) -> None:
    description = "guest-agent: provisioning failed: IMDS returned 400 &amp; gave up"
    body = health_body(platform, "NotReady", _details("ProvisioningFailed", description))
    threading.Timer(0.2, post_health, (platform, body, "/machine/?comp=health")).start()
    started = time.monotonic()
    result = platform.wait_ready(timeout_s=30)
    assert time.monotonic() - started < 5
    assert not result.ready and not result.timed_out
    assert result.reason == 'guest reported NotReady/ProvisioningFailed: "guest-agent: provisioning failed: IMDS ' \
                            'returned 400 & gave up"'
    assert platform.summary()["not_ready"][0]["sub_status"] == "ProvisioningFailed"


def test_not_ready_provisioning_is_not_a_failure(platform: FakeAzure) -> None:
    assert post_health(platform, health_body(platform, "NotReady", _details("Provisioning", "Starting"))) == 200
    result = platform.wait_ready(timeout_s=0.3)
    assert not result.ready and result.timed_out
    assert 'last report NotReady/Provisioning: "Starting"' in result.reason
    assert post_health(platform, health_body(platform, "Ready")) == 200
    assert platform.wait_ready(timeout_s=1).ready


def test_wait_ready_timeout_says_nothing_arrived(platform: FakeAzure) -> None:
    result = platform.wait_ready(timeout_s=0.2)
    assert (result.ready, result.timed_out, result.report) == (False, True, None)
    assert "no request reached the fake platform" in result.reason


@pytest.mark.parametrize(("field", "wrong"), [("container", b"other-container"), ("incarnation", b"2"),
                                              ("instance", b"other-instance")])
def test_a_ready_for_another_goal_state_is_a_deviation_never_ready(platform: FakeAzure, field: str,
                                                                    wrong: bytes) -> None:
    config = platform.config
    right = {"container": config.container_id, "instance": config.role_instance_id,
             "incarnation": str(config.incarnation)}[field].encode()
    tag = {"container": b"ContainerId", "instance": b"InstanceId", "incarnation": b"GoalStateIncarnation"}[field]
    good = health_body(platform, "Ready")
    body = good.replace(b"<%s>%s</%s>" % (tag, right, tag), b"<%s>%s</%s>" % (tag, wrong, tag))
    assert body != good
    assert post_health(platform, body) == 200  # Azure's exact answer is not known: recorded, and never Ready
    assert platform.health_reports()[0].echoes_goal_state is False
    result = platform.wait_ready(0.5)
    assert not result.ready and result.timed_out
    summary = platform.summary()
    assert summary["ready"] is None and summary["ready_reports"] == 0
    (deviation,) = [d for d in summary["deviations"] if d["rule"] == "health-identity"]
    assert wrong.decode() in deviation["detail"] and "not the goal state served" in deviation["detail"]
    assert "ready" not in [e.kind for e in platform.events()]


@pytest.mark.parametrize(("body", "why"), [
    (b"<Health><Container/></Health>", "has no State"),
    (b"<Health><State>Ready</State>", "not well-formed XML"),  # the regex fallback that took this is gone
    (b"<GoalStateIncarnation>1</GoalStateIncarnation><State>Ready</State>", "not well-formed XML"),
])
def test_a_health_report_azure_would_refuse_is_400_and_a_deviation(platform: FakeAzure, body: bytes,
                                                                      why: str) -> None:
    assert post_health(platform, body) == 400
    assert platform.health_reports() == []
    deviation = [e for e in platform.events() if e.kind == "deviation"][-1]
    assert deviation.data["rule"] == "health-document" and why in deviation.data["detail"]


def test_missing_agent_headers_and_a_stale_config_incarnation_are_deviations(platform: FakeAzure) -> None:
    config = platform.config
    path = f"/machine/{config.container_id}/{config.role_name}?comp=config&type=sharedConfig&incarnation=7"
    assert call(platform, "wireserver", "GET", path, {"x-ms-agent-name": "WALinuxAgent"})[0] == 200
    rules = sorted((d["rule"], d["detail"]) for d in platform.summary()["deviations"])
    assert [r for r, _ in rules] == ["config-incarnation", "missing-header"]
    assert "incarnation '7'" in rules[0][1] and "x-ms-version" in rules[1][1]


def test_status_blob_put_without_blob_type_is_400_like_azure_storage(platform: FakeAzure) -> None:
    path = f"/fake-status-blob/{platform.config.vm_name}.status?sv=2014-02-14&sr=b&sig=fake"
    status, _ = call(platform, "wireserver", "PUT", path, {}, body=json.dumps(_status_json("Ready")).encode())
    assert status == 400 and platform.status_uploads() == []
    assert [d["rule"] for d in platform.summary()["deviations"]] == ["missing-header"]


def test_hostgaplugin_container_id_must_be_the_goal_states(platform: FakeAzure) -> None:
    assert call(platform, "hostgaplugin", "GET", "/versions", {"x-ms-containerid": "someone-else"})[0] == 200
    (deviation,) = platform.summary()["deviations"]
    assert deviation["rule"] == "container-id" and "someone-else" in deviation["detail"]


def _status_json(agent_status: str) -> dict[str, object]:
    return {
        "version": "1.1", "timestampUTC": "2025-01-01T00:00:00Z",
        "aggregateStatus": {
            "guestAgentStatus": {"version": "2.7.3.0", "status": agent_status,
                                 "formattedMessage": {"lang": "en-US", "message": "Guest Agent is running"}},
            "handlerAggregateStatus": [],
        },
        "guestOSInfo": None, "supportedFeatures": [],
    }


def test_waagent_sequence_is_answered_and_recorded(platform: FakeAzure) -> None:
    config = platform.config
    status, body = call(platform, "wireserver", "GET", "/?comp=versions")
    supported = [v.text for v in ET.fromstring(body).iterfind("Supported/Version")]
    assert status == 200 and "2012-11-30" in supported
    goal = ET.fromstring(call(platform, "wireserver", "GET", "/machine/?comp=goalstate", AGENT_HEADERS)[1])
    configuration = goal.find("Container/RoleInstanceList/RoleInstance/Configuration")
    assert configuration is not None
    hgap_headers = {"x-ms-version": "2015-09-01", "x-ms-containerid": config.container_id,
                    "x-ms-host-config-name": configuration.findtext("ConfigName") or ""}
    assert call(platform, "hostgaplugin", "GET", "/vmSettings", hgap_headers) == (404, b"FastTrack not supported\n")
    documents = {}
    for name in ("ExtensionsConfig", "HostingEnvironmentConfig", "SharedConfig"):
        status, body = call(platform, "wireserver", "GET", _path_of(configuration.findtext(name) or ""), AGENT_HEADERS)
        assert status == 200, name
        documents[name] = ET.fromstring(body)
    hosting = documents["HostingEnvironmentConfig"]
    assert hosting.find("Incarnation").get("instance") == config.role_name  # type: ignore[union-attr]
    assert hosting.find("Role").get("name") == config.role_name  # type: ignore[union-attr]
    assert hosting.find("Deployment").get("name") == config.deployment_id  # type: ignore[union-attr]
    instance = documents["SharedConfig"].find("Instances/Instance")
    assert instance is not None and instance.get("address") == config.ipv4_address
    blob_url = documents["ExtensionsConfig"].findtext("StatusUploadBlob") or ""
    assert blob_url.startswith(platform.url("wireserver") + "/fake-status-blob/") and "&sig=" in blob_url
    assert documents["ExtensionsConfig"].find("GuestAgentExtension/GAFamilies/GAFamily") is None

    starting = health_body(platform, "NotReady", _details("Provisioning", "Starting"), WAAGENT_HEALTH)
    headers = {**AGENT_HEADERS, "Content-Type": "text/xml;charset=utf-8"}
    assert call(platform, "wireserver", "POST", "/machine?comp=health", headers, body=starting)[0] == 200
    ready = health_body(platform, "Ready", "", WAAGENT_HEALTH)
    assert call(platform, "wireserver", "POST", "/machine?comp=health", headers, body=ready)[0] == 200
    assert call(platform, "hostgaplugin", "GET", "/versions", {"x-ms-containerid": config.container_id}) == \
        (200, b'["2015-09-01"]')
    assert call(platform, "wireserver", "POST", "/HealthService", {}, body=b'{"Observations": []}')[0] == 200
    envelope = {
        "content": base64.b64encode(json.dumps(_status_json("Ready")).encode()).decode(),
        "headers": [{"headerName": "x-ms-blob-type", "headerValue": "BlockBlob"}],
        "requestUri": blob_url,
    }
    put_headers = {**hgap_headers, "Content-type": "application/json"}
    assert call(platform, "hostgaplugin", "PUT", "/status", put_headers, body=json.dumps(envelope).encode())[0] == 200

    assert platform.wait_ready(1).ready
    assert [(r.state, r.sub_status) for r in platform.health_reports()] == [("NotReady", "Provisioning"), ("Ready", "")]
    assert platform.agent_status() == "Ready"
    (upload,) = platform.status_uploads()
    assert upload.via == "hostgaplugin" and upload.status == _status_json("Ready")
    assert upload.request_uri.startswith(platform.url("wireserver") + "/fake-status-blob/")
    kinds = [e.kind for e in platform.events() if e.kind in ("goal-state", "ready", "not-ready", "status")]
    assert kinds == ["goal-state", "not-ready", "ready", "status"]
    summary = platform.summary()
    assert summary["agent_status"] == "Ready" and summary["status_uploads"][0]["agent_version"] == "2.7.3.0"
    assert summary["missing_headers"] == []
    assert summary["requests"] == {"wireserver": 8, "hostgaplugin": 3}


def test_direct_status_blob_put_is_201_and_decoded(platform: FakeAzure) -> None:
    body = json.dumps(_status_json("Ready")).encode()
    path = f"/fake-status-blob/{platform.config.vm_name}.status?sv=2014-02-14&sr=b&sig=fake"
    assert call(platform, "wireserver", "PUT", path, {"x-ms-blob-type": "BlockBlob"}, body=body)[0] == 201
    assert platform.status_uploads()[0].via == "statusblob"
    assert platform.agent_status() == "Ready"


@pytest.mark.parametrize("body", [b"not json", b'{"content": "!!!"}', json.dumps({"content": "WzFd"}).encode()])
def test_bad_status_bodies_are_400(platform: FakeAzure, body: bytes) -> None:
    assert call(platform, "hostgaplugin", "PUT", "/status", {}, body=body)[0] == 400
    assert platform.status_uploads() == []


@pytest.mark.parametrize(
    ("server", "method", "path", "status"),
    [
        ("wireserver", "POST", "/machine?comp=telemetrydata", 200),
        ("wireserver", "POST", "/machine/?comp=roleProperties", 200),
        ("wireserver", "GET", "/machine/{container}/{role}?comp=certificates&incarnation=1", 404),
        ("wireserver", "GET", "/machine/{container}/{role}?comp=config&type=fullConfig&incarnation=1", 200),
        ("wireserver", "GET", "/machine/other-container/{role}?comp=config&type=sharedConfig&incarnation=1", 404),
        ("wireserver", "GET", "/machine/{container}/{role}?comp=config&type=bogus", 404),
        ("wireserver", "GET", "/machine?comp=health", 405),
        ("wireserver", "POST", "/?comp=versions", 405),
        ("wireserver", "GET", "/", 404),
        ("wireserver", "GET", "/metadata/instance", 404),
        ("hostgaplugin", "GET", "/health", 200),
        ("hostgaplugin", "PUT", "/vmAgentLog", 200),
        ("hostgaplugin", "GET", "/status", 405),
        ("hostgaplugin", "GET", "/nothing", 404),
    ],
)
def test_other_routes(platform: FakeAzure, server: str, method: str, path: str, status: int) -> None:
    config = platform.config
    target = path.format(container=config.container_id, role=config.role_name)
    assert call(platform, server, method, target, AGENT_HEADERS, body=b"" if method != "GET" else None)[0] == status


def test_missing_agent_headers_are_recorded_not_rejected(platform: FakeAzure) -> None:
    assert call(platform, "wireserver", "GET", "/machine/?comp=goalstate")[0] == 200
    assert platform.requests()[-1]["missing_headers"] == ["x-ms-version", "x-ms-agent-name"]
    assert platform.summary()["missing_headers"] == ["wireserver:goalstate:x-ms-agent-name",
                                                     "wireserver:goalstate:x-ms-version"]
