"""The customization boot's package proxy: request parsing, and refusal of every address a guest must never reach
(checked over its real unix socket, before any connection is made)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.helpers.egress import EgressProxy, forbidden, target_of


def test_targets_of_connect_and_absolute_requests() -> None:
    assert target_of("CONNECT mirror.example:443 HTTP/1.1") == ("mirror.example", 443, "")
    assert target_of("CONNECT [2001:db8::1]:8443 HTTP/1.1") == ("2001:db8::1", 8443, "")
    assert target_of("GET http://mirror.example/debian/dists/x?a=1 HTTP/1.1") == (
        "mirror.example", 80, "GET /debian/dists/x?a=1 HTTP/1.1")
    assert target_of("HEAD http://m:8080 HTTP/1.0") == ("m", 8080, "HEAD / HTTP/1.0")
    with pytest.raises(ValueError, match="not an absolute http URI"):
        target_of("GET /relative HTTP/1.1")


@pytest.mark.parametrize("address", ["169.254.169.254", "168.63.129.16", "127.0.0.1", "127.1.2.3", "0.0.0.0", "::1",
                                     "fe80::1", "169.254.1.1"])
def test_guest_must_never_reach(address: str) -> None:
    assert forbidden(address)


@pytest.mark.parametrize("address", ["151.101.2.132", "10.0.0.4", "2a04:4e42::644", "168.63.129.17"])
def test_mirrors_are_allowed(address: str) -> None:
    assert not forbidden(address)


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[EgressProxy]:
    with EgressProxy(tmp_path / "egress.sock") as running:
        yield running


def ask(proxy: EgressProxy, request: str) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(proxy.path))
        sock.sendall(request.encode())
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
        return data


@pytest.mark.parametrize("request_text", [
    "GET http://169.254.169.254/metadata/instance?api-version=2021-08-01 HTTP/1.1\r\nMetadata: true\r\n\r\n",
    "CONNECT 168.63.129.16:80 HTTP/1.1\r\nHost: 168.63.129.16:80\r\n\r\n",
    "GET http://127.0.0.1:22/ HTTP/1.1\r\n\r\n",
])
def test_imds_wireserver_and_the_host_itself_are_refused(proxy: EgressProxy, request_text: str) -> None:
    assert ask(proxy, request_text).startswith(b"HTTP/1.1 403 Forbidden\r\n")
    (entry,) = proxy.log
    assert entry.startswith("refused ") and entry.endswith("which a guest must never reach")


def test_a_request_that_is_not_for_a_proxy_is_refused(proxy: EgressProxy) -> None:
    assert ask(proxy, "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 403")
    assert proxy.log == ["refused not an absolute http URI: /index.html"]
