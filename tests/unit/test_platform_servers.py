"""FakeAzure as a whole: faults over HTTP, the request log file, start/stop, binds, and the daemon entry."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.errors import PlatformError
from harness.helpers import platformd as daemon
from harness.platform.config import PlatformConfig
from harness.platform.faults import FaultSet
from harness.platform.requestlog import BODY_LOG_LIMIT
from harness.platform.servers import LOOPBACK_BINDS, FakeAzure, parse_bind
from tests.fakes import http_call

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake fake@host"
PASSWORD = "Sup3r-S3cret!"
INSTANCE = "/metadata/instance?api-version=2021-08-01"


def _config() -> PlatformConfig:
    return PlatformConfig.new(ssh_public_key=KEY, password=PASSWORD)


def call(address: tuple[str, int], method: str, path: str, headers: dict[str, str] | None = None,
         body: bytes | None = None) -> tuple[int, bytes]:
    return http_call(address, method, path, headers, body)


def ready_body(config: PlatformConfig, state: str = "Ready", details: str = "") -> bytes:
    return (
        f"<Health><GoalStateIncarnation>{config.incarnation}</GoalStateIncarnation><Container><ContainerId>"
        f"{config.container_id}</ContainerId><RoleInstanceList><Role><InstanceId>{config.role_instance_id}"
        f"</InstanceId><Health><State>{state}</State>{details}</Health></Role></RoleInstanceList></Container></Health>"
    ).encode()


@pytest.fixture
def faulty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FakeAzure]:
    rules: list[str] = request.param
    with FakeAzure(_config(), FaultSet.parse(rules), tmp_path / "log.jsonl", LOOPBACK_BINDS) as fake:
        yield fake


@pytest.mark.parametrize("faulty", [["wireserver:health=500x3"]], indirect=True)
def test_500_three_times_then_success_and_retries_counted(faulty: FakeAzure) -> None:
    body = ready_body(faulty.config)
    statuses = [call(faulty.addresses["wireserver"], "POST", "/machine?comp=health", {}, body)[0] for _ in range(4)]
    assert statuses == [500, 500, 500, 200]
    assert faulty.faulted_requests() == {"wireserver:health": 3}
    assert faulty.summary()["fault_hits"] == {"wireserver:health=500x3": 3}
    assert faulty.wait_ready(1).ready
    assert len(faulty.health_reports()) == 1  # faulted requests are answered before the app sees them


@pytest.mark.parametrize("faulty", [["imds:instance=503"]], indirect=True)
def test_always_failing_endpoint(faulty: FakeAzure) -> None:
    for _ in range(5):
        status, body = call(faulty.addresses["imds"], "GET", INSTANCE, {"Metadata": "true"})
        assert status == 503
        assert "fault injected" in json.loads(body)["error"]
    assert call(faulty.addresses["imds"], "GET", "/metadata/versions", {"Metadata": "true"})[0] == 200
    assert faulty.faulted_requests() == {"imds:instance": 5}


@pytest.mark.parametrize("faulty", [["wireserver:goalstate=drop x1"]], indirect=True)
def test_dropped_connection_gives_the_client_an_empty_reply(faulty: FakeAzure) -> None:
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        call(faulty.addresses["wireserver"], "GET", "/machine/?comp=goalstate")
    assert call(faulty.addresses["wireserver"], "GET", "/machine/?comp=goalstate")[0] == 200
    dropped = faulty.requests()[0]
    assert (dropped["status"], dropped["fault"]) == (None, "drop")
    assert faulty.faulted_requests() == {"wireserver:goalstate": 1}


@pytest.mark.parametrize("faulty", [["hostgaplugin:vmSettings=delay0.4"]], indirect=True)
def test_delay_then_normal_answer(faulty: FakeAzure) -> None:
    started = time.monotonic()
    status, body = call(faulty.addresses["hostgaplugin"], "GET", "/vmSettings")
    assert time.monotonic() - started >= 0.4
    assert (status, body) == (404, b"FastTrack not supported\n")
    assert faulty.requests()[0]["duration_ms"] >= 400


@pytest.mark.parametrize("faulty", [["imds:instance=require-header:X-Custom"]], indirect=True)
def test_require_header_turns_the_guest_away(faulty: FakeAzure) -> None:
    status, body = call(faulty.addresses["imds"], "GET", INSTANCE, {"Metadata": "true"})
    assert status == 400 and json.loads(body) == {"error": "Required header X-Custom not specified"}
    assert call(faulty.addresses["imds"], "GET", INSTANCE, {"Metadata": "true", "X-Custom": "1"})[0] == 200
    assert faulty.summary()["fault_hits"] == {"imds:instance=require-header:X-Custom": 1}


@pytest.mark.parametrize("faulty", [["hostgaplugin:health=delay30"]], indirect=True)
def test_stop_interrupts_a_delay_and_joins_threads(faulty: FakeAzure) -> None:
    errors: list[BaseException] = []

    def client() -> None:
        try:
            call(faulty.addresses["hostgaplugin"], "GET", "/health")
        except (OSError, http.client.HTTPException) as exc:
            errors.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    assert faulty.wait_for(lambda: bool(faulty.events()) and faulty.events()[-1].kind == "fault", 5)
    started = time.monotonic()
    faulty.stop()
    assert time.monotonic() - started < 3
    thread.join(5)
    assert len(errors) == 1
    assert not [t for t in threading.enumerate() if t.name.startswith("fake-")]
    with pytest.raises(ConnectionRefusedError):
        call(faulty.addresses["hostgaplugin"], "GET", "/health")


def test_request_log_is_json_lines_with_secrets_masked(tmp_path: Path) -> None:
    config = _config()
    log_path, events_path = tmp_path / "log.jsonl", tmp_path / "events.jsonl"
    for stale in (log_path, events_path):
        stale.write_text('{"kind": "ready", "server": "stale run"}\n')  # one run per file: truncated on start
    description = f"provisioning failed for password={PASSWORD} (plain: {PASSWORD})"
    details = f"<Details><SubStatus>ProvisioningFailed</SubStatus><Description>{description}</Description></Details>"
    with FakeAzure(config, log_path=log_path, binds=LOOPBACK_BINDS, events_path=events_path) as fake:
        wire = fake.addresses["wireserver"]
        call(wire, "POST", "/machine?comp=health", {"Authorization": "Bearer abc.def"},
             ready_body(config, "NotReady", details))
        call(wire, "POST", "/machine?comp=telemetrydata", {},
             f"<wa:UserPassword>{PASSWORD}</wa:UserPassword>".encode() + b"x" * (BODY_LOG_LIMIT + 100))
        call(wire, "PUT", "/fake-status-blob/vm.status?sv=1&sig=SIGNATURE123", {"x-ms-blob-type": "BlockBlob"}, b"{}")
        result = fake.wait_ready(1)
    assert not result.ready and PASSWORD not in result.reason and "***" in result.reason
    text = log_path.read_text()
    assert PASSWORD not in text and "SIGNATURE123" not in text and "abc.def" not in text
    entries = [json.loads(line) for line in text.splitlines()]
    assert [e["endpoint"] for e in entries] == ["health", "telemetrydata", "statusblob"]
    assert entries[0]["headers"]["Authorization"] == "***"
    assert entries[1]["body_truncated"] is True and entries[1]["body_bytes"] > BODY_LOG_LIMIT
    assert len(entries[1]["body"]) <= BODY_LOG_LIMIT and "<wa:UserPassword>***</wa:UserPassword>" in entries[1]["body"]
    assert entries[2]["path"] == "/fake-status-blob/vm.status?sv=1&sig=***" and entries[2]["status"] == 201
    for entry in entries:
        assert {"time", "t_s", "server", "client", "local", "method", "path", "headers", "body", "status"} <= set(entry)
    events_text = events_path.read_text()
    assert PASSWORD not in events_text
    events = [json.loads(line) for line in events_text.splitlines()]
    assert [e["kind"] for e in events if e["kind"] != "deviation"] == [
        "started", "first-contact", "not-ready", "status", "stopped"]
    # the health POST came without the agent headers the WireServer expects: two deviations, named
    assert sorted(e["detail"].rsplit(" ", 2)[-2] for e in events if e["kind"] == "deviation") == [
        "x-ms-agent-name", "x-ms-version"]


def test_bind_failure_is_a_platform_error_and_leaks_nothing() -> None:
    with FakeAzure(_config(), binds=LOOPBACK_BINDS) as first:
        taken = first.addresses["hostgaplugin"]
        second = FakeAzure(_config(), binds={**LOOPBACK_BINDS, "hostgaplugin": taken})
        with pytest.raises(PlatformError, match=f"fake hostgaplugin cannot listen on 127.0.0.1:{taken[1]}"):
            second.start()
        assert [t.name for t in threading.enumerate()].count("fake-imds") == 1
    with pytest.raises(PlatformError, match="unknown server names in binds: dns"):
        FakeAzure(_config(), binds={"dns": ("127.0.0.1", 0)})


def test_parse_bind() -> None:
    assert parse_bind("imds=169.254.169.254:80") == ("imds", ("169.254.169.254", 80))
    assert parse_bind("hostgaplugin=[::1]:32526") == ("hostgaplugin", ("::1", 32526))
    for bad in ("imds", "imds=127.0.0.1", "dns=127.0.0.1:53", "imds=127.0.0.1:http"):
        with pytest.raises(PlatformError, match="bad bind"):
            parse_bind(bad)


def test_url_requires_a_running_server() -> None:
    fake = FakeAzure(_config(), binds=LOOPBACK_BINDS)
    with pytest.raises(PlatformError, match="not running"):
        fake.url("imds")


def _events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait_event(path: Path, kind: str, timeout_s: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [e for e in _events(path) if e["kind"] == kind]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no {kind} event in {path}: {_events(path)}")


def test_daemon_writes_events_and_stops_cleanly(tmp_path: Path) -> None:
    config = _config()
    config.write_json(tmp_path / "config.json")
    events = tmp_path / "events.jsonl"
    argv = ["--config", str(tmp_path / "config.json"), "--log", str(tmp_path / "log.jsonl"), "--events", str(events),
            *[arg for name in ("imds", "wireserver", "hostgaplugin") for arg in ("--bind", f"{name}=127.0.0.1:0")],
            "--fault", "wireserver:health=503x1"]
    stop = threading.Event()
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(daemon.main(argv, stop)))
    thread.start()
    try:
        started = _wait_event(events, "started")
        assert started["faults"] == ["wireserver:health=503x1"]
        host, port = parse_bind(f"wireserver={started['servers']['wireserver']}")[1]
        assert call((host, port), "POST", "/machine?comp=health", {}, ready_body(config))[0] == 503
        assert call((host, port), "POST", "/machine?comp=health", {}, ready_body(config))[0] == 200
        ready = _wait_event(events, "ready")
        assert (ready["state"], ready["container_id"]) == ("Ready", config.container_id)
        assert ready["echoes_goal_state"] is True
    finally:
        stop.set()
        thread.join(10)
    assert codes == [0]
    final = _events(events)[-1]
    assert final["kind"] == "stopped" and final["summary"]["ready_reports"] == 1
    assert final["summary"]["faulted_requests"] == {"wireserver:health": 1}
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 2


def test_daemon_bad_arguments_return_2_with_an_error_event(tmp_path: Path) -> None:
    config = _config()
    config.write_json(tmp_path / "config.json")
    events = tmp_path / "events.jsonl"
    events.write_text('{"kind": "ready", "time": "stale, from an earlier run"}\n')
    argv = ["--config", str(tmp_path / "config.json"), "--log", str(tmp_path / "log.jsonl"), "--events", str(events),
            "--fault", "wireserver:health=teapot"]
    assert daemon.main(argv, threading.Event()) == 2
    (error,) = _events(events)
    assert error["kind"] == "error" and "unknown action 'teapot'" in error["message"] and error["hint"]
    assert daemon.main(["--config", str(tmp_path / "config.json")], threading.Event()) == 2
