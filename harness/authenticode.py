"""Who signed an EFI binary (shim, GRUB, a kernel): the Authenticode signatures of a PE/COFF file.

A PE's security directory (data directory 4, a file offset) holds WIN_CERTIFICATE entries; type 2 is a
DER PKCS#7 SignedData whose SignerInfos name their certificate by issuer and serial number. The DER is
walked by hand (cryptography's pkcs7 loader warns on Authenticode's SpcIndirectDataContent) and the
certificates are read with cryptography.x509.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

WIN_CERT_TYPE_PKCS_SIGNED_DATA = 0x0002
PE32_PLUS = 0x20B
MICROSOFT_UEFI_CA = ("Microsoft Corporation UEFI CA 2011", "Microsoft UEFI CA 2023")


class NotSigned(ValueError):
    """The file is not a PE image or its signature data cannot be read."""


@dataclass(frozen=True)
class Signer:
    subject: str  # RFC 4514
    issuer: str

    @property
    def by_microsoft_uefi_ca(self) -> bool:
        return any(f"CN={ca}" in self.issuer for ca in MICROSOFT_UEFI_CA)

    def to_json(self) -> dict[str, str]:
        return {"subject": self.subject, "issuer": self.issuer}


@dataclass(frozen=True)
class EfiBinary:
    """One boot binary as recorded in the manifest."""

    path: str  # where the firmware or the loader finds it, e.g. /EFI/BOOT/BOOTX64.EFI (ESP) or /boot/vmlinuz-X
    sha256: str
    signers: tuple[Signer, ...]
    sbat: str = ""

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "sha256": self.sha256, "signers": [s.to_json() for s in self.signers],
                "sbat": self.sbat}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> EfiBinary:
        raw = data.get("signers") or []
        assert isinstance(raw, list)
        return cls(str(data["path"]), str(data.get("sha256", "")),
                   tuple(Signer(str(s["subject"]), str(s["issuer"])) for s in raw), str(data.get("sbat", "")))


def _tlv(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at pos."""
    tag, length = der[pos], der[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length, pos = int.from_bytes(der[pos:pos + count], "big"), pos + count
    return tag, pos, pos + length


def _children(der: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(tag, element start, content start, content end) of each element in der[start:end]."""
    while start < end:
        tag, content, stop = _tlv(der, start)
        yield tag, start, content, stop
        start = stop


def pkcs7_blobs(data: bytes) -> Iterator[bytes]:
    """The DER SignedData of every type-2 WIN_CERTIFICATE in the PE's security directory."""
    if data[:2] != b"MZ":
        raise NotSigned("not a PE image (no MZ header)")
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    if data[pe:pe + 4] != b"PE\0\0":
        raise NotSigned("not a PE image (no PE signature)")
    optional = pe + 24
    directories = optional + (112 if struct.unpack_from("<H", data, optional)[0] == PE32_PLUS else 96)
    offset, size = struct.unpack_from("<II", data, directories + 4 * 8)  # a file offset, not an RVA
    end = offset + size
    while offset and offset + 8 <= end:
        length, _revision, kind = struct.unpack_from("<IHH", data, offset)
        if length < 8:
            raise NotSigned("a WIN_CERTIFICATE entry is shorter than its header")
        if kind == WIN_CERT_TYPE_PKCS_SIGNED_DATA:
            yield data[offset + 8:offset + length]
        offset += (length + 7) & ~7  # entries are 8-byte aligned


def signers_of(der: bytes) -> list[Signer]:
    """The certificates the SignerInfos of one SignedData name (issuer and serial number)."""
    _, start, end = _tlv(der, 0)  # ContentInfo
    explicit = list(_children(der, start, end))[1]  # [0] EXPLICIT content
    _, start, end = _tlv(der, explicit[2])  # SignedData
    certificates: list[x509.Certificate] = []
    sets: list[tuple[int, int]] = []
    for tag, _element, content, stop in _children(der, start, end):
        if tag == 0xA0:  # certificates [0] IMPLICIT
            certificates = [x509.load_der_x509_certificate(der[a:b]) for _, a, _, b in _children(der, content, stop)]
        elif tag == 0x31:  # SET: digestAlgorithms, then signerInfos
            sets.append((content, stop))
    found = []
    for _, _, info_start, info_end in _children(der, *sets[-1]):
        issuer_and_serial = list(_children(der, info_start, info_end))[1]
        name, serial = list(_children(der, issuer_and_serial[2], issuer_and_serial[3]))
        issuer = der[name[1]:name[3]]
        number = int.from_bytes(der[serial[2]:serial[3]], "big", signed=True)
        found += [Signer(c.subject.rfc4514_string(), c.issuer.rfc4514_string()) for c in certificates
                  if c.serial_number == number and c.issuer.public_bytes() == issuer]
    return found


def sbat_section(data: bytes) -> str:
    """The `.sbat` section's text (shim's and GRUB's revocation generations), '' when there is none."""
    try:
        pe = struct.unpack_from("<I", data, 0x3C)[0]
        sections, optional_size = struct.unpack_from("<H", data, pe + 6)[0], struct.unpack_from("<H", data, pe + 20)[0]
        table = pe + 24 + optional_size
        for index in range(sections):
            header = table + 40 * index
            if data[header:header + 8].rstrip(b"\0") == b".sbat":
                size, _, raw_size, raw_offset = struct.unpack_from("<IIII", data, header + 8)
                return data[raw_offset:raw_offset + min(size, raw_size)].split(b"\0", 1)[0].decode(errors="replace")
    except struct.error:
        return ""
    return ""


def describe(data: bytes, path: str) -> EfiBinary:
    """sha256, signers and SBAT of one binary; an unsigned one has no signers (NotSigned: not a PE at all)."""
    try:
        signers = tuple(s for blob in pkcs7_blobs(data) for s in signers_of(blob))
    except (struct.error, IndexError, ValueError) as exc:
        if isinstance(exc, NotSigned):
            raise
        raise NotSigned(f"{path}: its signature data cannot be read ({exc})") from exc
    return EfiBinary(path, hashlib.sha256(data).hexdigest(), signers, sbat_section(data))


def describe_file(host: Path, path: str) -> EfiBinary:
    return describe(host.read_bytes(), path)
