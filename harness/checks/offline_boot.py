"""Boot-path rules (image-checks A6-A9): drivers in the initramfs, kernel configuration, the GRUB chain
each firmware follows, and the kernel command line it ends up with.
"""

from __future__ import annotations

import posixpath

from harness.checks import grubimage
from harness.checks.image import EFI_LOADER, Image
from harness.checks.rulebase import FAILED, WARNING, Problem, Record, listing, record, rule, skipped, verdict
from harness.checks.textparse import cmdline_params, has_param, param_value
from harness.enums import Result
from harness.shellsyntax import parse_assignments

# module -> kernel option that builds it in (=y means no module is needed)
HV_MODULES = {"hv_vmbus": "CONFIG_HYPERV", "hv_storvsc": "CONFIG_HYPERV_STORAGE", "hv_netvsc": "CONFIG_HYPERV_NET"}
NVME_MODULES = {"nvme": "CONFIG_BLK_DEV_NVME", "nvme_core": "CONFIG_NVME_CORE"}
MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")
# file system -> (kernel option, module folder under /lib/modules/<version>)
PROVISIONING_FS = {"udf": ("CONFIG_UDF_FS", "kernel/fs/udf"), "vfat": ("CONFIG_VFAT_FS", "kernel/fs/fat")}
OPTIONAL_OPTIONS = {"wdt": "CONFIG_WATCHDOG", "cifs": "CONFIG_CIFS"}
SERIAL = {"x86_64": "ttyS0", "aarch64": "ttyAMA0"}
UNWANTED = ("quiet", "rhgb")
FORBIDDEN = ("libata.atapi_enabled=0", "reserve=0x1f0,0x8")


def modules_present(files: list[str], wanted: dict[str, str], config: dict[str, str]) -> dict[str, str]:
    """module -> where it was found ('initramfs', 'built in') or '' when missing."""
    names = {posixpath.basename(f) for f in files}
    found = {}
    for module, option in wanted.items():
        variants = {module + s for s in MODULE_SUFFIXES} | {module.replace("_", "-") + s for s in MODULE_SUFFIXES}
        found[module] = "initramfs" if names & variants else ("built in" if config.get(option) == "y" else "")
    return found


def evaluate_modules(check: str, severity: Result, files: list[str] | None, *, wanted: dict[str, str],
                     config: dict[str, str], initramfs: str) -> Record:
    required = listing(wanted) + " in the initramfs or built in (=y)"
    if files is None:
        return record(check, severity, f"no initramfs at {initramfs}", required,
                      "the boot entry names an initramfs that does not exist: regenerate it (update-initramfs -u)")
    found = modules_present(files, wanted, config)
    missing = [m for m, where in found.items() if not where]
    actual = listing(f"{m}: {where or 'missing'}" for m, where in found.items())
    problems = [(severity, f"{listing(missing)} missing from {initramfs}: the root disk or NIC never appears on "
                           "Azure; add them to the initramfs module list and regenerate it")] if missing else []
    return verdict(check, problems, actual, required)


@rule("A6 Hyper-V drivers in the initramfs")
def hv_drivers(img: Image) -> list[Record]:
    return [evaluate_modules("A6 Hyper-V drivers in the initramfs", FAILED, img.initramfs_files, wanted=HV_MODULES,
                             config=img.kernel_config or {}, initramfs=img.initramfs_path)]


@rule("A7 NVMe driver in the initramfs")
def nvme_driver(img: Image) -> list[Record]:
    return [evaluate_modules("A7 NVMe driver in the initramfs", WARNING, img.initramfs_files, wanted=NVME_MODULES,
                             config=img.kernel_config or {}, initramfs=img.initramfs_path)]


@rule("A8 kernel configuration (udf, vfat)")
def kernel_config(img: Image) -> list[Record]:
    config = img.kernel_config
    if config is None:
        reason = f"no /boot/config-{img.kernel_version} to read the kernel configuration from"
        return [record("A8 kernel configuration (udf, vfat)", FAILED, "unknown", "udf and vfat enabled", reason)]
    modules = {fs: img.module_files(folder) for fs, (_, folder) in PROVISIONING_FS.items()}
    return [evaluate_provisioning_fs(config, modules), evaluate_optional_options(config)]


def evaluate_provisioning_fs(config: dict[str, str], module_files: dict[str, list[str]]) -> Record:
    """udf (provisioning media) and vfat (ESP, provisioning) built in, or modular with the module on disk."""
    states, problems = [], []
    for fs, (option, _) in PROVISIONING_FS.items():
        value = config.get(option, "n")
        on_disk = any(f.startswith(fs + ".ko") for f in module_files.get(fs, []))
        ok = value == "y" or (value == "m" and on_disk)
        states.append(f"{option}={value}" + ("" if value != "m" else " (module present)" if on_disk else
                                               " (module missing)"))
        if not ok:
            problems.append((FAILED, f"{fs} is not available ({option}={value}): Azure's provisioning media is "
                                     f"{'UDF' if fs == 'udf' else 'FAT'}; use a kernel with {option}=y or =m"))
    return verdict("A8 kernel configuration (udf, vfat)", problems, "; ".join(states), "=y, or =m with the module")


def evaluate_optional_options(config: dict[str, str]) -> Record:
    off = [option for option in OPTIONAL_OPTIONS.values() if config.get(option, "n") not in ("y", "m")]
    actual = "; ".join(f"{option}={config.get(option, 'n')}" for option in OPTIONAL_OPTIONS.values())
    problems = [(WARNING, f"{listing(off)} not enabled (LISA verify_essential_kernel_modules expects them)")] if off \
        else []
    return verdict("A8 kernel configuration (watchdog, cifs)", problems, actual, "=y or =m")


# ---------------------------------------------------------------------------------------------
# A9: what each firmware boots, and with which parameters.

PARAM_WHY = {
    "console": "no serial console: Azure boot diagnostics and Serial Console stay blank",
    "earlyprintk": "early boot messages do not reach the serial log",
    "rootdelay": "slow storage may not be waited for (Debian's initramfs sleeps the whole value: decide per family)",
    "net.ifnames": "the NIC may not be named eth0, which cloud-init's Azure datasource expects",
}


def _wanted_params(tty: str) -> list[tuple[str, str, Result, bool]]:
    """(name, value, severity if missing, whether the value only has to start with it: console=ttyS0,115200)."""
    return [("console", tty, FAILED, True), ("earlyprintk", tty, WARNING, True),
            ("rootdelay", "300", WARNING, False), ("net.ifnames", "0", WARNING, False)]


def evaluate_params(words: list[str], arch: str, root_uuid: str | None) -> tuple[list[Problem], str]:
    """(problems, actual) for a kernel command line; root_uuid None skips the root= check (GRUB defaults)."""
    params = cmdline_params(words)
    problems: list[Problem] = []
    matched: list[str] = []
    missing: list[str] = []
    for name, value, severity, prefix in _wanted_params(SERIAL.get(arch, "ttyS0")):
        present = has_param(params, name, value) if prefix else param_value(params, name) == value
        (matched if present else missing).append(f"{name}={value}")
        if not present:
            problems.append((severity, f"{name}={value} missing: {PARAM_WHY[name]}"))
    bad = [w for w in words if w in UNWANTED]
    if bad:
        problems.append((WARNING, f"{listing(bad)} hide boot messages from the serial console: remove them"))
    forbidden = [w for w in words if w in FORBIDDEN]
    if forbidden:
        problems.append((FAILED, f"{listing(forbidden)} break Azure's provisioning media: remove them"))
    if root_uuid is not None:
        root = param_value(params, "root")
        if root is None or root.lower() not in (f"uuid={root_uuid}", f"/dev/disk/by-uuid/{root_uuid}"):
            problems.append((FAILED, f"root={root} does not name the root file system UUID={root_uuid}"))
    actual = f"Matched Parameter: {','.join(matched) or 'none'}; Missing Parameter: {','.join(missing) or 'none'}"
    return problems, actual


REQUIRED_PARAMS = "console=ttyS0#earlyprintk=ttyS0#rootdelay=300#net.ifnames=0; no quiet/rhgb"


def evaluate_chain(firmware: str, early: grubimage.EarlyConfig | None, root_uuid: str,
                   grub_dir: str) -> list[Problem]:
    """The firmware's GRUB image must search the root file system by UUID and load grub.cfg from grub_dir."""
    loader = "core.img in the BIOS boot partition" if firmware == "bios" else "EFI/BOOT/BOOTX64.EFI on the ESP"
    if early is None:
        return [(FAILED, f"no embedded GRUB config found in {loader}: reinstall the boot loader (harness build)")]
    problems = []
    if early.root_uuid != root_uuid:
        problems.append((FAILED, f"{loader} searches for file system {early.root_uuid}, the root file system is "
                                 f"{root_uuid}: GRUB stops at its rescue prompt; rebuild the GRUB image"))
    if early.grub_dir != grub_dir:
        problems.append((FAILED, f"{loader} loads its config from {early.grub_dir}, expected {grub_dir}"))
    return problems


def firmware_cmdline(img: Image, firmware: str) -> Record:
    check = f"A9 kernel command line ({firmware})"
    early = img.early_config(firmware)
    problems = evaluate_chain(firmware, early, img.root_uuid, img.grub_dir)
    if firmware == "bios" and img.bios_part is not None:
        problems += _mbr_problems(img)
    if firmware == "uefi" and early is None:
        problems.append((FAILED, f"the ESP holds {listing(img.esp_files())}; firmware without a boot entry starts "
                                 f"{EFI_LOADER}"))
    cfg_dir = early.grub_dir if early and early.grub_dir else img.grub_dir
    text = img.text(f"{cfg_dir}/grub.cfg")
    entry = grubimage.default_entry(text) if text else None
    if entry is None or not entry.linux:
        problems.append((FAILED, f"{cfg_dir}/grub.cfg {'has no boot entry with a linux line' if text else 'missing'}:"
                                 " regenerate it (update-grub)"))
        return verdict(check, problems, "no kernel command line", REQUIRED_PARAMS)
    param_problems, actual = evaluate_params(entry.linux[1:], img.arch, img.root_uuid)
    chain = f"{firmware} -> {cfg_dir}/grub.cfg"
    return verdict(check, problems + param_problems, f"{chain}: {actual}", REQUIRED_PARAMS)


def _mbr_problems(img: Image) -> list[Problem]:
    assert img.bios_part is not None
    lba = grubimage.mbr_core_lba(img.disk.read(0, 512))
    if lba == img.bios_part.start:
        return []
    return [(FAILED, f"the MBR boot code loads core.img from sector {lba}, the BIOS boot partition starts at "
                     f"{img.bios_part.start}: rewrite the MBR (grub-bios-setup)")]


@rule("A9 kernel command line")
def kernel_cmdline(img: Image) -> list[Record]:
    records = [firmware_cmdline(img, fw) if fw in img.firmwares else
               skipped(f"A9 kernel command line ({fw})", f"the recipe does not claim {fw} (generations "
                                                         f"{[g.value for g in img.manifest.generations]})")
               for fw in ("bios", "uefi")]
    return [*records, grub_defaults(img)]


def grub_defaults(img: Image) -> Record:
    """/etc/default/grub: what update-grub in the guest would write after a kernel update."""
    check = "A9 kernel command line (grub defaults)"
    path = img.family.grub_default if img.family else "/etc/default/grub"
    text = img.text(path)
    if text is None:
        return record(check, WARNING, f"no {path}", REQUIRED_PARAMS,
                      "a kernel update regenerating grub.cfg would lose the command line: write the defaults file")
    values = parse_assignments(text)
    words = " ".join(values.get(k, "") for k in ("GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT")).split()
    problems, actual = evaluate_params(words, img.arch, None)
    return verdict(check, problems, f"{path}: {actual}", REQUIRED_PARAMS)


RULES = (hv_drivers, nvme_driver, kernel_config, kernel_cmdline)
