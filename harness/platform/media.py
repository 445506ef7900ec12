"""Small ISO writer on pycdlib: ISO9660 with Rock Ridge + Joliet names, or an ISO9660/UDF bridge; atomic."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping
from pathlib import Path

import pycdlib
from pycdlib.pycdlibexception import PyCdlibException

from harness.errors import PlatformError

JOLIET_LABEL_MAX = 16  # the Joliet volume id holds 16 UCS-2 characters; the ISO9660 one 32 d-characters
ISO_LABEL_MAX = 32


def iso9660_name(name: str) -> str:
    """The ISO9660 level-3 record for a file name: 'ovf-env.xml' -> 'OVF_ENV.XML;1', 'user-data' -> 'USER_DATA.;1'."""
    stem, dot, ext = name.upper().rpartition(".")
    if not dot:
        stem, ext = ext, ""
    return f"{re.sub(r'[^A-Z0-9_]', '_', stem)}.{re.sub(r'[^A-Z0-9_]', '_', ext)};1"


def write_iso(path: Path, files: Mapping[str, bytes], *, label: str, udf: bool = False) -> None:
    """Write files (root-level names -> content) to an ISO at path, via a temp file and a rename.

    Without udf: ISO9660 + Rock Ridge 1.09 + Joliet, so Linux shows the exact names. With udf: an ISO9660/UDF 2.60
    bridge whose UDF side carries the exact names (what Azure attaches and Ignition mounts as UDF).
    """
    if not 0 < len(label) <= ISO_LABEL_MAX:
        raise PlatformError(f"volume label {label!r} must be 1 to {ISO_LABEL_MAX} characters", "shorten it")
    records = {name: iso9660_name(name) for name in files}
    if len(set(records.values())) != len(records):
        raise PlatformError(f"file names collide on ISO9660: {sorted(files)}", "use names that differ in letters")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    iso = pycdlib.PyCdlib()
    try:
        _fill(iso, files, records, label, udf)
        iso.write(str(tmp))
        os.replace(tmp, path)
    except (PyCdlibException, OSError) as exc:
        raise PlatformError(f"cannot write ISO {path}: {exc}", "check the directory and free space") from exc
    finally:
        iso.close()
        tmp.unlink(missing_ok=True)


def _fill(iso: pycdlib.PyCdlib, files: Mapping[str, bytes], records: Mapping[str, str], label: str, udf: bool) -> None:
    if udf:
        iso.new(interchange_level=3, vol_ident=label, udf="2.60")
    else:
        iso.new(interchange_level=3, vol_ident=label[:JOLIET_LABEL_MAX], rock_ridge="1.09", joliet=3)
        # pycdlib gives both volume descriptors the same id; the ISO9660 one (what blkid shows) gets the full label.
        iso.pvd.volume_identifier = label.encode("ascii").ljust(ISO_LABEL_MAX, b" ")
    for name, data in files.items():
        if udf:
            iso.add_fp(io.BytesIO(data), len(data), iso_path=f"/{records[name]}", udf_path=f"/{name}")
        else:
            iso.add_fp(io.BytesIO(data), len(data), iso_path=f"/{records[name]}", rr_name=name,
                       joliet_path=f"/{name}")
