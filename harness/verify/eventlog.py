"""The TPM's measured-boot event log (TCG PC Client crypto-agile format, `binary_bios_measurements`): parsed on
the host from the guest's bytes, so a check can show that the firmware measured the Secure Boot state into
PCR 7 and that replaying the log gives the PCR value the TPM holds.

Layout (little-endian): a first event in the SHA-1 layout whose data is the "Spec ID Event03" header listing
the digest algorithms and sizes; then TCG_PCR_EVENT2 records: pcr u32, type u32, digest count u32,
{alg u16, digest}*, size u32, data. Variable events carry UEFI_VARIABLE_DATA: vendor GUID, name length (chars),
data length, the UTF-16LE name, the data.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass

EV_NO_ACTION = 0x3
EV_SEPARATOR = 0x4
EV_EFI_VARIABLE_DRIVER_CONFIG = 0x80000001
EV_EFI_VARIABLE_AUTHORITY = 0x800000E0
ALGORITHMS = {0x0004: "sha1", 0x000B: "sha256", 0x000C: "sha384", 0x000D: "sha512"}
SPEC_ID = b"Spec ID Event03\0"
SECURE_BOOT_VARIABLES = ("SecureBoot", "PK", "KEK", "db", "dbx")


class EventLogError(ValueError):
    """The bytes are not a crypto-agile TCG event log."""


@dataclass(frozen=True)
class Event:
    pcr: int
    type: int
    digests: dict[str, bytes]
    data: bytes

    def variable(self) -> tuple[str, bytes] | None:
        """(name, value) of a UEFI variable event, else None."""
        if self.type not in (EV_EFI_VARIABLE_DRIVER_CONFIG, EV_EFI_VARIABLE_AUTHORITY) or len(self.data) < 32:
            return None
        chars, length = struct.unpack_from("<QQ", self.data, 16)
        name_end = 32 + 2 * chars
        return self.data[32:name_end].decode("utf-16-le", errors="replace"), self.data[name_end:name_end + length]


def _digest_sizes(log: bytes) -> tuple[dict[int, int], int]:
    """{algorithm id: digest size} from the Spec ID event, and the offset of the first crypto-agile event."""
    _pcr, kind = struct.unpack_from("<II", log, 0)
    size = struct.unpack_from("<I", log, 28)[0]
    spec = log[32:32 + size]
    if kind != EV_NO_ACTION or spec[:16] != SPEC_ID:
        raise EventLogError("the first event is not the crypto-agile Spec ID event")
    count = struct.unpack_from("<I", spec, 24)[0]
    sizes = dict(struct.unpack_from("<HH", spec, 28 + 4 * i) for i in range(count))
    return sizes, 32 + size


def parse(log: bytes) -> Iterator[Event]:
    """Every event after the Spec ID event; EventLogError on a truncated or foreign log."""
    try:
        sizes, offset = _digest_sizes(log)
        while offset + 12 <= len(log):
            pcr, kind, count = struct.unpack_from("<III", log, offset)
            offset += 12
            digests = {}
            for _ in range(count):
                algorithm = struct.unpack_from("<H", log, offset)[0]
                size = sizes[algorithm]
                digests[ALGORITHMS.get(algorithm, hex(algorithm))] = log[offset + 2:offset + 2 + size]
                offset += 2 + size
            length = struct.unpack_from("<I", log, offset)[0]
            yield Event(pcr, kind, digests, log[offset + 4:offset + 4 + length])
            offset += 4 + length
    except (struct.error, KeyError) as exc:
        raise EventLogError(f"the event log is truncated or malformed ({exc})") from exc


def replay(events: list[Event], pcr: int, bank: str = "sha256") -> bytes:
    """The PCR value the events extend to: start all zeros, value = H(value || digest) per event."""
    value = bytes(hashlib.new(bank).digest_size)
    for event in events:
        if event.pcr == pcr and event.type != EV_NO_ACTION and bank in event.digests:
            value = hashlib.new(bank, value + event.digests[bank]).digest()
    return value


@dataclass(frozen=True)
class Pcr7Evidence:
    """What PCR 7's events say about Secure Boot, and whether replaying them gives the TPM's value."""

    secure_boot: bytes | None  # the measured SecureBoot variable's value (b"\x01" = enabled)
    variables: tuple[str, ...]  # DRIVER_CONFIG variables measured into PCR 7
    authorities: int  # EV_EFI_VARIABLE_AUTHORITY events (who verified the loaders)
    replayed: str  # hex, upper case like sysfs
    matches: bool


def pcr7(log: bytes, pcr7_sysfs: str) -> Pcr7Evidence:
    events = [e for e in parse(log) if e.pcr == 7]
    variables = [v for e in events if e.type == EV_EFI_VARIABLE_DRIVER_CONFIG and (v := e.variable())]
    secure_boot = next((value for name, value in variables if name == "SecureBoot"), None)
    replayed = replay(events, 7).hex().upper()
    return Pcr7Evidence(secure_boot, tuple(name for name, _ in variables),
                        sum(e.type == EV_EFI_VARIABLE_AUTHORITY for e in events), replayed,
                        replayed == pcr7_sysfs.strip().upper())
