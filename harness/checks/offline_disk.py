"""Disk-level rules (image-checks A1-A5, A10): container, size, first MiB, partition layout, swap, fstab."""

from __future__ import annotations

from harness import vhd
from harness.checks.diskread import MIB, SECTOR, PartitionTable
from harness.checks.image import BIOS_BOOT_GUID, ESP_GUID, LINUX_ROOT_GUIDS, Image
from harness.checks.rulebase import (
    FAILED,
    WARNING,
    Problem,
    Record,
    listing,
    record,
    rule,
    skipped,
    verdict,
)
from harness.checks.textparse import FstabEntry, is_device_spec, is_stable_spec, parse_fstab, spec_uuid

SECTORS_PER_MIB = MIB // SECTOR
MAX_OS_DISK_BYTES = 1023 * 1024 * MIB
SWAP_GUID = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"
LVM_GUID = "E6D6D379-F507-44C2-A23C-238F2A3DF928"
SWAP_SIGNATURES = (b"SWAPSPACE2", b"SWAP-SPACE")
SWAP_FILES = ("/swapfile", "/swap.img", "/swap", "/var/swap", "/swapfile.img", "/swap/swapfile")
# harness.vhd rule names -> checklist item (A2 is the size rule, everything else the container).
VHD_SIZE_RULES = ("current-size-whole-mib", "azure-size-limits")


@rule("A1 VHD container")
def vhd_container(img: Image) -> list[Record]:
    """The footer rules of harness.vhd for a converted disk; a raw disk has no container yet."""
    if not img.disk.is_vhd:
        return [skipped("A1 VHD container", "disk.raw: the fixed VHD footer is checked after 'harness convert'")]
    return [record(f"{'A2' if r.rule in VHD_SIZE_RULES else 'A1'} VHD {r.rule}", r.result, r.actual, r.required,
                   "; ".join(x for x in (r.message, r.hint) if x))
            for r in vhd.check(img.disk.path)]


@rule("A2 virtual size whole MiB")
def whole_mib(img: Image) -> list[Record]:
    return [evaluate_size(img.disk.data_size)]


def evaluate_size(size: int) -> Record:
    problems = []
    if size % MIB:
        problems.append((FAILED, f"{size % MIB} bytes over a whole MiB: Azure rejects the upload; grow the raw "
                                 "disk to a whole MiB (harness convert does) before conversion"))
    if size > MAX_OS_DISK_BYTES:
        problems.append((FAILED, "larger than Azure's 1023 GiB OS disk limit: build a smaller disk"))
    return verdict("A2 virtual size whole MiB", problems, f"{size} bytes ({size / MIB:.2f} MiB)",
                   "a multiple of 1048576, at most 1023 GiB")


@rule("A3 first MiB free")
def first_mib_free(img: Image) -> list[Record]:
    return [evaluate_first_mib(img.first_mib(), img.table)]


def evaluate_first_mib(head: bytes, table: PartitionTable) -> Record:
    """Partitions start at or after 1 MiB and sectors after the GPT entries up to 1 MiB hold only zeros."""
    problems = []
    early = [p for p in table.partitions if p.start < SECTORS_PER_MIB]
    if early:
        problems.append((FAILED, f"partition {listing(str(p.number) for p in early)} starts inside the first MiB, "
                                 "where Azure keeps its metadata: start every partition at sector 2048 or later"))
    first_free = max(table.first_lba, 34)
    dirty = [i for i in range(first_free, SECTORS_PER_MIB) if any(head[i * SECTOR:(i + 1) * SECTOR])]
    if dirty:
        problems.append((FAILED, f"sectors {dirty[0]}..{dirty[-1]} ({len(dirty)} sectors) hold data: zero sectors "
                                 f"{first_free}..2047 (only the MBR boot code and the GPT belong there)"))
    actual = f"first partition at sector {min((p.start for p in table.partitions), default=0)}, " + (
        f"{len(dirty)} non-zero sectors in {first_free}..2047" if dirty else f"sectors {first_free}..2047 zero")
    return verdict("A3 first MiB free", problems, actual, "partitions from sector 2048; sectors 34..2047 zero")


@rule("A4 partition layout")
def partition_layout(img: Image) -> list[Record]:
    return evaluate_layout(img.table, img.firmwares, esp_is_fat=img.esp_serial is not None)


def evaluate_layout(table: PartitionTable, firmwares: list[str], esp_is_fat: bool) -> list[Record]:
    """GPT with a BIOS boot partition (Gen1), an ESP (Gen2) and one Linux root, all MiB-aligned."""
    records = [_table_label(table, firmwares), _alignment(table)]
    if "bios" in firmwares:
        bios = table.of_type(BIOS_BOOT_GUID)
        records.append(verdict(
            "A4 BIOS boot partition (Gen1)",
            [] if bios else [(FAILED, "the recipe claims V1 but there is no BIOS boot partition (type "
                                      f"{BIOS_BOOT_GUID}) for GRUB's core.img: Gen1 cannot boot")],
            f"partition {bios[0].number}, {bios[0].size_bytes // 1024} KiB" if bios else "none",
            f"type {BIOS_BOOT_GUID}"))
    if "uefi" in firmwares:
        records.append(_esp(table, esp_is_fat))
    records.append(_root(table))
    return records


def _table_label(table: PartitionTable, firmwares: list[str]) -> Record:
    severity = FAILED if "uefi" in firmwares else WARNING
    problems = [] if table.label == "gpt" else [
        (severity, f"{table.label} label: the hybrid BIOS+UEFI layout needs GPT; rewrite it with sfdisk")]
    return verdict("A4 partition table", problems, table.label or "none", "gpt")


def _alignment(table: PartitionTable) -> Record:
    odd = [p for p in table.partitions if p.start % SECTORS_PER_MIB or p.size % SECTORS_PER_MIB]
    problems = [(WARNING, f"partition {listing(str(p.number) for p in odd)} not on 1 MiB boundaries: align "
                          "start and size to 2048 sectors")] if odd else []
    return verdict("A4 partition alignment", problems,
                   listing(f"{p.number}: {p.start}+{p.size}" for p in table.partitions),
                   "start and size multiples of 2048 sectors")


def _esp(table: PartitionTable, esp_is_fat: bool) -> Record:
    typed = table.of_type(ESP_GUID)
    problems = []
    if not typed:
        named = [p for p in table.partitions if p.name.lower() in ("esp", "efi") or p.type_guid.startswith("C12A7328")]
        wrong = f" (partition {named[0].number} has type {named[0].type_guid})" if named else ""
        problems.append((FAILED, f"no partition of the EFI system type {ESP_GUID}{wrong}: UEFI firmware looks for "
                                 "its boot loader there (OVMF is lenient, the UEFI spec is not); set the type with "
                                 "sfdisk --part-type"))
    elif not esp_is_fat:
        problems.append((FAILED, f"partition {typed[0].number} has the ESP type but no FAT file system"))
    actual = f"partition {typed[0].number} {typed[0].type_guid}" if typed else listing(
        f"{p.number}: {p.type_guid}" for p in table.partitions)
    return verdict("A4 EFI system partition (Gen2)", problems, actual, f"type {ESP_GUID}, FAT")


def _root(table: PartitionTable) -> Record:
    roots = [p for p in table.partitions if p.type_guid in LINUX_ROOT_GUIDS]
    lvm = [p for p in table.partitions if p.type_guid == LVM_GUID]
    problems = []
    if not roots:
        problems.append((FAILED, "no Linux root partition on the OS disk"))
    elif len(roots) > 1:
        problems.append((WARNING, f"{len(roots)} Linux partitions: Azure recommends a single root partition"))
    if lvm:
        problems.append((WARNING, "LVM on the OS disk: cloned VMs clash on volume group names; use plain partitions"))
    actual = listing(f"partition {p.number} ({p.size_bytes // MIB} MiB)" for p in roots)
    return verdict("A4 root partition", problems, actual, "one plain Linux root partition, no LVM")


@rule("A5 no swap")
def no_swap(img: Image) -> list[Record]:
    swap_parts = [p.number for p in img.table.partitions if p.type_guid == SWAP_GUID or
                  _has_swap_signature(img.disk.read(p.start_bytes, 4096 + 16))]
    fstab = parse_fstab(img.text("/etc/fstab") or "")
    candidates = [*SWAP_FILES, *(e.spec for e in fstab if e.fstype == "swap" and e.spec.startswith("/"))]
    files = [f for f in dict.fromkeys(candidates) if not f.startswith("/dev/") and img.root.exists(f)]
    return [evaluate_swap(swap_parts, fstab, files)]


def _has_swap_signature(head: bytes) -> bool:
    return any(head[4096 - 10:4096] == sig for sig in SWAP_SIGNATURES)


def evaluate_swap(swap_parts: list[int], fstab: list[FstabEntry], swap_files: list[str]) -> Record:
    entries = [e for e in fstab if e.fstype == "swap"]
    problems = []
    if swap_parts:
        problems.append((FAILED, f"swap partition {listing(map(str, swap_parts))} is found on OS disk: remove it and "
                                 "let the agent put swap on the resource disk (ResourceDisk.EnableSwap or cloud-init)"))
    if entries:
        problems.append((FAILED, f"fstab has swap entries ({listing(e.line for e in entries)}): remove them"))
    if swap_files:
        problems.append((FAILED, f"swap file {listing(swap_files)} on the root file system: delete it"))
    actual = "; ".join(x for x in (
        swap_parts and f"partitions {swap_parts}", entries and f"fstab: {listing(e.spec for e in entries)}",
        swap_files and f"files: {listing(swap_files)}") if x) or "no swap partition, fstab entry or swap file"
    return verdict("A5 no swap", problems, actual, "no swap on the OS disk")


@rule("A10 fstab")
def fstab_sanity(img: Image) -> list[Record]:
    text = img.text("/etc/fstab")
    manifest_uuid = img.manifest.disk.root_uuid.lower()
    return [evaluate_fstab(text, img.root_uuid, img.esp_serial, manifest_uuid)]


def evaluate_fstab(text: str | None, root_uuid: str, esp_serial: str | None, manifest_uuid: str = "") -> Record:
    """By UUID/label only; the root entry names the real root file system; extra mounts carry nofail."""
    name, required = "A10 fstab", f"UUID=/LABEL= sources; / is UUID={root_uuid}; other mounts nofail"
    if text is None:
        return record(name, FAILED, "no /etc/fstab", required, "write /etc/fstab with the root file system by UUID")
    entries = parse_fstab(text)
    problems = []
    unstable = [e for e in entries if is_device_spec(e.spec) and not is_stable_spec(e.spec)]
    if unstable:
        problems.append((FAILED, f"{listing(e.spec for e in unstable)} by kernel device name: device names move on "
                                 "Azure; use UUID= or LABEL="))
    root = [e for e in entries if e.mountpoint == "/"]
    root_spec = root[0].spec if root else "none"
    if not root:
        problems.append((FAILED, "no entry for /: add UUID=<root uuid> / ext4 defaults 0 1"))
    elif spec_uuid(root_spec) not in (None, root_uuid):
        problems.append((FAILED, f"/ is {root_spec} but the root file system is UUID={root_uuid}: the boot ends in "
                                 "an emergency shell; fix the UUID"))
    problems += _esp_entry(entries, esp_serial)
    loose = [e for e in entries if is_device_spec(e.spec) and e.mountpoint not in ("/", "/boot", "/boot/efi", "none")
             and e.fstype != "swap" and "nofail" not in e.options]
    if loose:
        problems.append((WARNING, f"{listing(e.mountpoint for e in loose)} without nofail: a missing disk stops the "
                                  "boot; add nofail"))
    if manifest_uuid and manifest_uuid != root_uuid:
        problems.append((WARNING, f"the manifest records root UUID {manifest_uuid}, the disk has {root_uuid}: "
                                  "the disk changed after the build"))
    return verdict(name, problems, f"/ from {root_spec}; {len(entries)} entries", required)


def _esp_entry(entries: list[FstabEntry], esp_serial: str | None) -> list[Problem]:
    esp = [e for e in entries if e.mountpoint in ("/boot/efi", "/efi")]
    if not esp or esp_serial is None or spec_uuid(esp[0].spec) in (None, esp_serial.lower()):
        return []
    severity = WARNING if "nofail" in esp[0].options else FAILED
    return [(severity, f"{esp[0].mountpoint} is {esp[0].spec} but the ESP's serial is {esp_serial}")]


RULES = (vhd_container, whole_mib, first_mib_free, partition_layout, no_swap, fstab_sanity)
