"""Page-blob upload against real Azurite behind a recording proxy that enforces Azure's Put Page limits."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobServiceClient

from harness.digest import content_digest
from harness.errors import PublishError
from harness.publish.azerrors import error_code
from harness.publish.azure import blob_client, sas_blob_client
from harness.publish.azure_settings import AzureTarget
from harness.publish.upload import DIGEST_KEY, RESUME_KEY, UploadOptions, upload_vhd
from tests.fakes.blobproxy import BlobProxy
from tests.integration.azure_fixtures import (
    MIB,
    assert_blob_equals_file,
    azurite,
    blob_page_ranges,
    blob_proxy,
    container,
    direct_service,
    expected_ranges,
    file_md5,
    proxy_connection_string,
    sparse_vhd,
    write_sas_url,
)

__all__ = ["azurite", "blob_proxy", "container", "direct_service", "proxy_connection_string", "sparse_vhd"]

pytestmark = pytest.mark.azurite

FAST = UploadOptions(concurrency=4, retries=1, backoff_s=0.01)


def _blob(conn: str, container: str, name: str = "disk.vhd") -> Any:
    target = AzureTarget(subscription_id="s", resource_group="rg", location="westeurope", kind="gallery",
                         gallery="g", container=container, storage_connection_string=conn)
    return blob_client(target, name)


def _harness_stats(proxy: BlobProxy) -> tuple[int, int]:
    """(Put Page bytes, Put Page requests) the harness client sent through the proxy."""
    stats = proxy.stats.get("harness/0.1.0")
    return (stats.put_page_bytes, stats.put_pages) if stats else (0, 0)


def _span(ranges: list[tuple[int, int]]) -> int:
    return sum(end - start for start, end in ranges)


def test_upload_sends_only_data_pages_and_reads_back_identical(
        sparse_vhd: Path, blob_proxy: BlobProxy, proxy_connection_string: str, container: str,
        direct_service: BlobServiceClient) -> None:
    want = expected_ranges(sparse_vhd)
    seen: list[tuple[int, int]] = []
    result = upload_vhd(_blob(proxy_connection_string, container), sparse_vhd, FAST,
                        progress=lambda done, total: seen.append((done, total)))

    assert result.state == "uploaded"
    assert result.size_bytes == 64 * MIB + 512
    assert blob_page_ranges(direct_service, container, "disk.vhd") == want
    assert result.bytes_sent == _span(want)
    assert _harness_stats(blob_proxy)[0] == result.bytes_sent  # what the proxy counted is what we report
    total = blob_proxy.total()
    assert total.max_put_page_bytes <= 4 * MIB and total.rejected == 0
    assert result.url == blob_proxy_url(blob_proxy, container)
    assert_blob_equals_file(direct_service, container, "disk.vhd", sparse_vhd)
    props = direct_service.get_blob_client(container, "disk.vhd").get_blob_properties()
    assert props.metadata[DIGEST_KEY] == content_digest(sparse_vhd) == result.digest
    assert props.metadata[RESUME_KEY].startswith(f"v1 size={64 * MIB + 512} ")
    assert props.content_settings.content_md5 is None  # whole-file MD5 is opt-in
    assert seen[-1] == (result.data_bytes, result.data_bytes)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) > 1


def blob_proxy_url(proxy: BlobProxy, container: str) -> str:
    return f"http://127.0.0.1:{proxy.port}/devstoreaccount1/{container}/disk.vhd"


def test_interrupted_upload_resumes_with_only_missing_ranges_then_is_a_no_op(
        sparse_vhd: Path, blob_proxy: BlobProxy, proxy_connection_string: str, container: str,
        direct_service: BlobServiceClient) -> None:
    want = expected_ranges(sparse_vhd)
    blob = _blob(proxy_connection_string, container)
    blob_proxy.fail_put_pages_after = 3
    with pytest.raises(PublishError) as failed:
        upload_vhd(blob, sparse_vhd, UploadOptions(concurrency=2, retries=1, backoff_s=0.01))
    assert "HTTP 500" in failed.value.message and "InternalError" in failed.value.message
    assert "\n" not in failed.value.message
    first = blob_proxy.put_page_ranges()
    assert len(first) == 3
    props = direct_service.get_blob_client(container, "disk.vhd").get_blob_properties()
    assert RESUME_KEY in props.metadata and DIGEST_KEY not in props.metadata  # not complete

    blob_proxy.reset()
    resumed = upload_vhd(blob, sparse_vhd, FAST)
    assert resumed.state == "resumed"
    assert resumed.bytes_present == _span(first)
    assert resumed.bytes_sent == _span(want) - _span(first)
    assert _harness_stats(blob_proxy)[0] == resumed.bytes_sent
    assert not set(blob_proxy.put_page_ranges()) & set(first)  # nothing sent twice
    assert blob_proxy.stats["harness/0.1.0"].page_list_requests > 1  # followed the NextMarker pages
    assert blob_page_ranges(direct_service, container, "disk.vhd") == want
    assert_blob_equals_file(direct_service, container, "disk.vhd", sparse_vhd)

    blob_proxy.reset()
    again = upload_vhd(blob, sparse_vhd, FAST)
    assert again.state == "unchanged" and again.bytes_sent == 0
    assert _harness_stats(blob_proxy) == (0, 0)


def test_resume_clears_remote_data_where_the_file_is_zero(
        sparse_vhd: Path, blob_proxy: BlobProxy, proxy_connection_string: str, container: str,
        direct_service: BlobServiceClient) -> None:
    blob = _blob(proxy_connection_string, container)
    blob_proxy.fail_put_pages_after = 2
    with pytest.raises(PublishError):
        upload_vhd(blob, sparse_vhd, UploadOptions(concurrency=1, retries=0))
    # Stale data where the file has a hole (a reused blob): the rerun must clear it, not leave it.
    direct_service.get_blob_client(container, "disk.vhd").upload_page(b"\xee" * 8192, offset=40 * MIB, length=8192)
    blob_proxy.reset()
    result = upload_vhd(blob, sparse_vhd, FAST)
    assert result.state == "resumed" and result.ranges_cleared == 1
    assert blob_page_ranges(direct_service, container, "disk.vhd") == expected_ranges(sparse_vhd)
    assert_blob_equals_file(direct_service, container, "disk.vhd", sparse_vhd)


def test_mismatching_completion_marker_uploads_again(
        sparse_vhd: Path, blob_proxy: BlobProxy, proxy_connection_string: str, container: str,
        direct_service: BlobServiceClient) -> None:
    blob = _blob(proxy_connection_string, container)
    first = upload_vhd(blob, sparse_vhd, FAST)
    direct = direct_service.get_blob_client(container, "disk.vhd")
    metadata = direct.get_blob_properties().metadata
    direct.set_blob_metadata({**metadata, DIGEST_KEY: "sha256-sparse4m:" + "0" * 64})
    blob_proxy.reset()
    again = upload_vhd(blob, sparse_vhd, FAST)
    assert again.state == "uploaded" and again.bytes_sent == first.bytes_sent
    assert direct.get_blob_properties().metadata[DIGEST_KEY] == first.digest


def test_changed_file_is_not_resumed_into_the_old_blob(
        sparse_vhd: Path, blob_proxy: BlobProxy, proxy_connection_string: str, container: str,
        direct_service: BlobServiceClient) -> None:
    blob = _blob(proxy_connection_string, container)
    upload_vhd(blob, sparse_vhd, FAST)
    with sparse_vhd.open("r+b") as handle:  # new content, new mtime: the resume marker no longer matches
        handle.seek(0)
        handle.write(b"\x00" * 4 * MIB)
        handle.seek(20 * MIB)
        handle.write(b"\x42" * 4096)
    os.utime(sparse_vhd, ns=(1, 2))
    result = upload_vhd(blob, sparse_vhd, FAST)
    assert result.state == "uploaded"
    assert blob_page_ranges(direct_service, container, "disk.vhd") == expected_ranges(sparse_vhd)
    assert_blob_equals_file(direct_service, container, "disk.vhd", sparse_vhd)


def test_transient_server_busy_is_retried(
        sparse_vhd: Path, blob_proxy: BlobProxy, proxy_connection_string: str, container: str,
        direct_service: BlobServiceClient) -> None:
    blob_proxy.transient_put_page_failures = 2
    result = upload_vhd(_blob(proxy_connection_string, container), sparse_vhd,
                        UploadOptions(concurrency=1, retries=3, backoff_s=0.01))
    assert result.retries == 2
    assert [r.status for r in blob_proxy.log if r.query.get("comp") == "page"][:3] == [503, 503, 201]
    assert_blob_equals_file(direct_service, container, "disk.vhd", sparse_vhd)


def test_content_md5_is_the_whole_file_md5_when_asked(
        sparse_vhd: Path, blob_proxy: BlobProxy, proxy_connection_string: str, container: str,
        direct_service: BlobServiceClient) -> None:
    result = upload_vhd(_blob(proxy_connection_string, container), sparse_vhd,
                        UploadOptions(concurrency=4, content_md5=True))
    props = direct_service.get_blob_client(container, "disk.vhd").get_blob_properties()
    assert props.content_settings.content_md5 is not None
    assert bytes(props.content_settings.content_md5) == file_md5(sparse_vhd)
    assert result.content_md5 is not None


def test_existing_blob_mode_never_creates_and_clears_stale_pages(
        sparse_vhd: Path, blob_proxy: BlobProxy, proxy_connection_string: str, container: str,
        direct_service: BlobServiceClient) -> None:
    """The managed-disk upload path: the blob exists at its final size, with no metadata of ours."""
    direct_service.create_container(container)
    direct = direct_service.get_blob_client(container, "disk.vhd")
    direct.create_page_blob(sparse_vhd.stat().st_size)
    direct.upload_page(b"\xee" * 4096, offset=48 * MIB, length=4096)
    sas_url = write_sas_url(blob_proxy.port, container, "disk.vhd")
    result = upload_vhd(sas_blob_client(sas_url), sparse_vhd, UploadOptions(concurrency=4, existing_blob=True))
    assert result.ranges_cleared == 1
    assert "sig=" not in result.url and "?" not in result.url
    assert not [r for r in blob_proxy.log if r.method == "PUT" and r.query.get("comp") != "page"]  # no create
    assert DIGEST_KEY not in direct.get_blob_properties().metadata
    assert_blob_equals_file(direct_service, container, "disk.vhd", sparse_vhd)


def test_existing_blob_of_the_wrong_size_is_refused(
        sparse_vhd: Path, blob_proxy: BlobProxy, proxy_connection_string: str, container: str,
        direct_service: BlobServiceClient) -> None:
    direct_service.create_container(container)
    direct_service.get_blob_client(container, "disk.vhd").create_page_blob(32 * MIB)
    with pytest.raises(PublishError, match="holds 33554432 bytes but the VHD has 67109376"):
        upload_vhd(_blob(proxy_connection_string, container), sparse_vhd, UploadOptions(existing_blob=True))


def test_proxy_rejects_what_azure_rejects(blob_proxy: BlobProxy, proxy_connection_string: str,
                                          container: str) -> None:
    """The proxy is the guard for the 4 MiB rule Azurite does not enforce: prove it bites."""
    blob = _blob(proxy_connection_string, container)
    blob.create_page_blob(16 * MIB)
    with pytest.raises(HttpResponseError) as too_big:
        blob.upload_page(b"\x01" * 8 * MIB, offset=0, length=8 * MIB)
    assert too_big.value.status_code == 413 and error_code(too_big.value) == "RequestBodyTooLarge"
    assert blob_proxy.total().rejected == 1


def test_missing_azurite_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixture turns this into a test failure (never a skip) that says what to run."""
    from tests.fakes import azurite as launcher

    monkeypatch.setattr(launcher, "AZURITE_BLOB", tmp_path / "node_modules" / ".bin" / "azurite-blob")
    with pytest.raises(launcher.AzuriteError, match="is missing") as err, launcher.running_azurite(tmp_path):
        pass
    assert "make setup" in err.value.hint
