"""Network access of a build: a bounded reachability probe, small fetches, resumable downloads, digests.

Every remote step starts with `probe()`, a DNS lookup and TCP connect bounded by a few seconds, so a recipe
whose mirror this machine cannot reach fails at once with the host's name instead of hanging in a slow step.
Downloads go to `<name>.part` next to their destination, resume with an HTTP Range request after an
interruption, and are renamed into place only once their digest matched: a cached file is a verified file.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from harness import proc
from harness.errors import BuildError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0
DOWNLOAD_ATTEMPTS = 4
CHUNK_BYTES = 1024 * 1024
SMALL_FILE_MAX_BYTES = 16 * 1024 * 1024
DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}
# hex length -> algorithm, strongest first when a checksum file lists several
ALGORITHMS = {128: "sha512", 64: "sha256"}
TRANSIENT = (http.client.HTTPException, urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout)


class UnreachableError(BuildError):
    """A host a recipe needs cannot be reached from this machine."""


@dataclass(frozen=True)
class Digest:
    algorithm: str  # sha256 | sha512
    value: str

    def of_file(self, path: Path) -> str:
        hasher = hashlib.new(self.algorithm)
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
                hasher.update(block)
        return hasher.hexdigest()

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.value}"


def is_local(url: str) -> bool:
    return url.startswith("file://") or url.startswith("/")


def local_path(url: str) -> Path:
    return Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)) if url.startswith("file://") else Path(url)


def file_name(url: str) -> str:
    """The last path component of a URL or path ('.../x.qcow2?sig=..' -> 'x.qcow2')."""
    return Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name or "download"


def endpoint(url: str) -> tuple[str, int]:
    """(host, port) a request for url connects to: the proxy's when one applies, as urllib would use it."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        proxy_parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        return proxy_parts.hostname or "", proxy_parts.port or DEFAULT_PORTS.get(proxy_parts.scheme, 80)
    return host, parts.port or DEFAULT_PORTS.get(parts.scheme, 80)


def _resolve(host: str, port: int, timeout_s: float) -> list[tuple[int, tuple[str, int]]]:
    """getaddrinfo in a daemon thread: the resolver has no timeout of its own."""
    result: list[tuple[int, tuple[str, int]]] = []
    error: list[OSError] = []

    def lookup() -> None:
        try:
            for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
                result.append((info[0], (str(info[4][0]), int(info[4][1]))))
        except OSError as exc:
            error.append(exc)

    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise OSError(f"name lookup did not answer in {timeout_s:.0f} s")
    if error:
        raise error[0]
    return result


def probe(url: str, needed_by: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Fail in seconds, naming the host, when url cannot be reached (DNS + TCP connect, bounded)."""
    if is_local(url):
        path = local_path(url)
        if not path.exists():
            raise BuildError(f"{path} does not exist: {needed_by} needs it",
                             "download it there (see the recipe's comments) or fix the URL in the recipe")
        return
    host, port = endpoint(url)
    if not host:
        raise BuildError(f"{url!r} names no host", f"fix the URL in {needed_by}")
    try:
        addresses = _resolve(host, port, timeout_s)
        _connect_any(addresses, timeout_s)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UnreachableError(
            f"cannot reach {host}:{port} ({reason}): {needed_by} needs network access to it",
            "run the build on a machine that reaches it, or point the recipe at a mirror this machine reaches",
        ) from exc


def _connect_any(addresses: list[tuple[int, tuple[str, int]]], timeout_s: float) -> None:
    last: OSError = OSError("no address")
    for family, address in addresses:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            try:
                sock.connect(address)
                return
            except OSError as exc:
                last = exc
    raise last


def fetch_bytes(url: str, limit: int = SMALL_FILE_MAX_BYTES) -> bytes:
    """A small file (checksum list, signature, repository index) from http(s), file:// or a path."""
    if is_local(url):
        try:
            return local_path(url).read_bytes()[: limit + 1]
        except OSError as exc:
            raise BuildError(f"cannot read {url}: {exc.strerror}", "check the path in the recipe") from exc
    try:
        with urllib.request.urlopen(url, timeout=READ_TIMEOUT_S) as response:  # noqa: S310 (http(s) by schema)
            data: bytes = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise BuildError(f"{url} answered HTTP {exc.code}", "the file moved or the URL in the recipe is wrong") from exc
    except TRANSIENT as exc:
        raise UnreachableError(f"cannot fetch {url}: {exc}", "check the network and the URL in the recipe") from exc
    if len(data) > limit:
        raise BuildError(f"{url} is larger than {limit} bytes", "it is not the small index file the recipe expects")
    return data


# "SHA256 (CentOS-Stream-GenericCloud-9-latest.x86_64.qcow2) = 1f3c..."
BSD_LINE = re.compile(r"^(SHA256|SHA512) \((?P<name>.+)\) = (?P<hex>[0-9a-fA-F]+)\s*$")
# "1f3c...  flatcar_production_azure_image.vhd.bz2" (coreutils; '*' marks binary mode)
GNU_LINE = re.compile(r"^(?P<hex>[0-9a-fA-F]{64}|[0-9a-fA-F]{128})\s+\*?(?P<name>\S.*?)\s*$")


# "# SHA512 HASH" (Gentoo/Flatcar DIGESTS: the lines below it are of that algorithm, e.g. WHIRLPOOL is 128 hex too)
HEADER_LINE = re.compile(r"^#\s*(?P<algorithm>\w+)\s+HASH\s*$", re.IGNORECASE)


def parse_checksums(text: str, name: str) -> Digest | None:
    """The strongest sha256/sha512 the checksum file lists for `name` (coreutils, BSD or DIGESTS style)."""
    found: dict[str, str] = {}
    header = ""
    for raw in text.splitlines():
        line = raw.strip()
        heading = HEADER_LINE.match(line)
        if heading:
            header = heading.group("algorithm").lower()
            continue
        bsd = BSD_LINE.match(line)
        match = bsd or GNU_LINE.match(line)
        if match is None or Path(match.group("name")).name != name:
            continue
        hexdigest = match.group("hex").lower()
        algorithm = bsd.group(1).lower() if bsd else header or ALGORITHMS.get(len(hexdigest), "")
        if algorithm in ALGORITHMS.values() and len(hexdigest) == {"sha256": 64, "sha512": 128}[algorithm]:
            found[algorithm] = hexdigest
    for algorithm in ALGORITHMS.values():
        if algorithm in found:
            return Digest(algorithm, found[algorithm])
    return None


def verify_signature(data: Path, signature: Path, keyring: Path) -> None:
    """gpgv over a detached signature with only the recipe's keyring trusted."""
    proc.run(["gpgv", "--keyring", str(keyring.resolve()), str(signature), str(data)],
            hint=f"the signature of {data.name} does not verify with {keyring}: the file was altered or the "
                 "keyring is not the vendor's signing key")


def download(url: str, dest: Path, digest: Digest, attempts: int = DOWNLOAD_ATTEMPTS) -> Path:
    """Download url to dest (resuming a partial `.part`), check the digest, rename into place.

    A digest mismatch deletes the partial file: nothing unverified is ever left in the cache.
    """
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last: Exception | None = None
    for attempt in range(1, attempts + 1):
        offset = part.stat().st_size if part.exists() else 0
        try:
            _fetch_into(url, part, offset)
            break
        except TRANSIENT as exc:
            last = exc
            log.warning("download of %s interrupted at %d bytes (attempt %d/%d): %s", file_name(url),
                        part.stat().st_size if part.exists() else 0, attempt, attempts, exc)
    else:
        raise BuildError(f"download of {url} failed {attempts} times: {last}",
                         f"rerun the build: it resumes from the {part.stat().st_size if part.exists() else 0} "
                         "bytes already in the cache")
    actual = digest.of_file(part)
    if actual != digest.value:
        part.unlink()
        raise BuildError(f"{file_name(url)} has {digest.algorithm} {actual}, expected {digest.value}; the partial "
                         "download was deleted",
                         "the vendor replaced the file or the download was corrupted: check the recipe's digest")
    os.replace(part, dest)
    return dest


def _fetch_into(url: str, part: Path, offset: int) -> None:
    """One request: append from offset (206), restart when the server ignores the range (200)."""
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (http(s) by schema)
    try:
        response = urllib.request.urlopen(request, timeout=READ_TIMEOUT_S)  # noqa: S310
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            _check_complete(exc, part, offset)
            return
        raise BuildError(f"{url} answered HTTP {exc.code}", "the file moved or the URL in the recipe is wrong") \
            from exc
    with response:
        resumed = response.status == 206
        expected = response.headers.get("Content-Length")
        received = 0
        with part.open("ab" if resumed else "wb") as handle:
            for block in iter(lambda: response.read(CHUNK_BYTES), b""):
                handle.write(block)
                received += len(block)
        if expected is not None and received != int(expected):
            raise http.client.IncompleteRead(b"", int(expected) - received)


def _check_complete(error: urllib.error.HTTPError, part: Path, offset: int) -> None:
    """416 on a resume: fine when the partial file already holds every byte ('Content-Range: bytes */SIZE')."""
    total = re.search(r"/(\d+)$", error.headers.get("Content-Range", ""))
    if total is None or int(total.group(1)) != offset:
        part.unlink()
        raise http.client.HTTPException(f"the server refused to resume at byte {offset}; starting over")
