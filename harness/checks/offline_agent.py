"""Provisioning-agent rules (image-checks A11, E4, E6): cloud-init datasource lock, waagent configuration
consistent with the agent the build chose, cloud-init module layout, SCSI timeout, KVP daemon.
"""

from __future__ import annotations

import posixpath
from typing import Any

import yaml

from harness.checks.image import Image
from harness.checks.rulebase import FAILED, PASSED, WARNING, Record, listing, record, rule, skipped, verdict
from harness.checks.textparse import kv_values

CLOUD_CFG = "/etc/cloud/cloud.cfg"
CLOUD_CFG_D = "/etc/cloud/cloud.cfg.d"
AZURE_DS_FILE = "/etc/cloud/cloud.cfg.d/91-azure_datasource.cfg"
CLOUD_INIT_DISABLED = "/etc/cloud/cloud-init.disabled"
WAAGENT_CONF = "/etc/waagent.conf"
# Provisioning.Agent values that let each provisioning choice work (WALinuxAgent pa/provision/factory.py).
AGENT_VALUES = {"cloud-init": ("cloud-init", "auto"), "waagent": ("waagent", "auto"), "specialized": ("disabled",)}
KVP_FILES = ("/usr/sbin/hv_kvp_daemon", "/usr/sbin/hypervkvpd", "/usr/libexec/hypervkvpd/hypervkvpd",
             "/usr/bin/hv_kvp_daemon")
KVP_PACKAGES = ("hyperv-daemons", "hypervkvpd", "hyperv-tools", "azure-vm-utils")
UDEV_DIRS = ("/etc/udev/rules.d", "/lib/udev/rules.d", "/usr/lib/udev/rules.d")


def merge_cloud_configs(documents: list[Any]) -> dict[str, Any]:
    """cloud.cfg then cloud.cfg.d/*.cfg in order: later files win, dictionaries merge, lists are replaced."""
    merged: dict[str, Any] = {}
    for doc in documents:
        if isinstance(doc, dict):
            merged = _merge(merged, doc)
    return merged


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def cloud_config(img: Image) -> dict[str, Any] | None:
    """The merged cloud-init configuration, or None when cloud-init is not installed."""
    base = img.text(CLOUD_CFG)
    if base is None:
        return None
    names = sorted(n for n in img.root.listdir(CLOUD_CFG_D) or [] if n.endswith(".cfg"))
    texts = [base] + [img.text(posixpath.join(CLOUD_CFG_D, n)) or "" for n in names]
    return merge_cloud_configs([_yaml(t) for t in texts])


def _yaml(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def cloud_init_state(img: Image) -> str:
    """'absent', 'disabled' or 'enabled'."""
    if img.text(CLOUD_CFG) is None:
        return "absent"
    cmdline = img.boot_entry.linux if img.boot_entry else []
    return "disabled" if img.root.exists(CLOUD_INIT_DISABLED) or "cloud-init=disabled" in cmdline else "enabled"


def provisioning(img: Image) -> str:
    """What should provision: 'cloud-init', 'waagent' or 'specialized' (nothing)."""
    return "specialized" if img.specialized else img.agent


def evaluate_datasource(mode: str, state: str, config: dict[str, Any] | None, cmdline: list[str],
                        ds_file_present: bool) -> Record:
    """cloud-init locked to Azure when it provisions; out of the way when something else does."""
    check, required = "A11 cloud-init Azure datasource", "datasource_list: [ Azure ] (91-azure_datasource.cfg)"
    overrides = [w for w in cmdline if w.startswith(("ci.ds=", "ci.datasource=", "ds="))]
    problems = [(FAILED, f"{listing(overrides)} on the kernel command line overrides the datasource: only a fake "
                         "platform needs that; remove it")] if overrides else []
    if mode != "cloud-init":
        if state == "enabled":
            problems.append((FAILED, f"cloud-init is installed and enabled but {mode} is the provisioning choice: "
                                     f"both would provision; remove cloud-init or create {CLOUD_INIT_DISABLED}"))
        return verdict(check, problems, f"cloud-init {state}", f"cloud-init absent or disabled ({mode})")
    if state != "enabled":
        problems.append((FAILED, f"cloud-init provisions this image but is {state}: install and enable it"))
        return verdict(check, problems, f"cloud-init {state}", required)
    datasources = (config or {}).get("datasource_list")
    names = [str(d) for d in datasources] if isinstance(datasources, list) else []
    if "Azure" not in names:
        problems.append((FAILED, f"datasource_list is {datasources if datasources is not None else 'not set'}: "
                                 "cloud-init is not locked to Azure; write " + AZURE_DS_FILE))
    elif [n for n in names if n not in ("Azure", "None")]:
        problems.append((WARNING, f"datasource_list {names} lets cloud-init pick another datasource"))
    if not ds_file_present:
        problems.append((WARNING, f"{AZURE_DS_FILE} is missing (the Azure guide and cloud-image-val expect it)"))
    return verdict(check, problems, f"datasource_list: {names or 'not set'}", required)


@rule("A11 cloud-init Azure datasource")
def datasource(img: Image) -> list[Record]:
    state = cloud_init_state(img)
    config = cloud_config(img) if state != "absent" else None
    cmdline = img.boot_entry.linux if img.boot_entry else []
    return [evaluate_datasource(provisioning(img), state, config, cmdline, img.root.exists(AZURE_DS_FILE))]


def evaluate_waagent(mode: str, conf: dict[str, str] | None, cloud_init: str) -> list[Record]:
    """Provisioning.Agent consistent with the provisioning choice; resource disk left to cloud-init."""
    check, disk_check = "A11 waagent provisioning agent", "A11 waagent resource disk"
    if conf is None:
        result = FAILED if mode == "waagent" else PASSED
        message = "the Azure Linux Agent provisions this image but is not installed" if result == FAILED else ""
        return [record(check, result, "waagent not installed", f"{WAAGENT_CONF} when waagent provisions", message)]
    value = conf.get("Provisioning.Agent", "auto")
    allowed = AGENT_VALUES.get(mode, (mode,))
    problems = []
    if value not in allowed or (value == "auto" and mode == "waagent" and cloud_init == "enabled"):
        problems.append((FAILED, f"Provisioning.Agent={value} conflicts with {mode} provisioning: set "
                                 f"Provisioning.Agent={allowed[0]} in {WAAGENT_CONF}"))
    records = [verdict(check, problems, f"Provisioning.Agent={value}", f"one of {', '.join(allowed)} ({mode})")]
    disk = {k: conf.get(f"ResourceDisk.{k}", "y" if k == "Format" else "n") for k in ("Format", "EnableSwap")}
    actual = f"ResourceDisk.Format={disk['Format']}, ResourceDisk.EnableSwap={disk['EnableSwap']}"
    if mode != "cloud-init":
        return [*records, record(disk_check, PASSED, actual, "any (the agent owns the resource disk)")]
    wrong = [f"ResourceDisk.{k}={v}" for k, v in disk.items() if v.lower() != "n"]
    disk_problems = [(WARNING, f"{listing(wrong)}: cloud-init owns the resource disk; set them to n")] if wrong else []
    return [*records, verdict(disk_check, disk_problems, actual, "ResourceDisk.Format=n, ResourceDisk.EnableSwap=n")]


@rule("A11 waagent provisioning agent")
def waagent(img: Image) -> list[Record]:
    text = img.text(WAAGENT_CONF)
    return evaluate_waagent(provisioning(img), kv_values(text) if text is not None else None, cloud_init_state(img))


def evaluate_cloud_modules(config: dict[str, Any]) -> list[Record]:
    """disk_setup and mounts in the init stage, growpart somewhere, no wheel for the default user."""
    def names(stage: str) -> list[str]:
        items = config.get(stage) or []
        return [str(i[0] if isinstance(i, list) and i else i).replace("-", "_") for i in items]

    init = names("cloud_init_modules")
    every = init + names("cloud_config_modules") + names("cloud_final_modules")
    problems = [(WARNING, f"{m} is not in cloud_init_modules (Azure's guide moves it to the init stage)")
                for m in ("disk_setup", "mounts") if m not in init]
    if "growpart" not in every:
        problems.append((WARNING, "growpart is not enabled: the root partition will not grow to the VM's disk"))
    user = ((config.get("system_info") or {}).get("default_user") or {})
    groups = user.get("groups") or []
    groups = groups.split(",") if isinstance(groups, str) else [str(g) for g in groups]
    if "wheel" in [g.strip() for g in groups]:
        problems.append((WARNING, "the default user joins wheel: drop it from system_info.default_user.groups"))
    output = str((config.get("output") or {}).get("all", ""))
    log_problems = [] if "cloud-init-output.log" in output else [
        (WARNING, "cloud-init output is not teed to /var/log/cloud-init-output.log (05_logging.cfg)")]
    return [verdict("A11 cloud-init modules", problems, f"init stage: {listing(init, 20)}",
                    "disk_setup, mounts in cloud_init_modules; growpart; no wheel"),
            verdict("A11 cloud-init output log", log_problems, f"output.all: {output or 'unset'}",
                    "| tee -a /var/log/cloud-init-output.log")]


@rule("A11 cloud-init modules")
def cloud_modules(img: Image) -> list[Record]:
    if provisioning(img) != "cloud-init" or cloud_init_state(img) != "enabled":
        return [skipped("A11 cloud-init modules", f"cloud-init does not provision ({provisioning(img)}, "
                                                  f"cloud-init {cloud_init_state(img)})")]
    return evaluate_cloud_modules(cloud_config(img) or {})


@rule("E4 SCSI disk timeout")
def scsi_timeout(img: Image) -> list[Record]:
    text = img.text(WAAGENT_CONF)
    agent_value = kv_values(text).get("OS.RootDeviceScsiTimeout") if text is not None else None
    texts = img.root.texts(udev_rules(img))
    by_udev = [path for path, rules in texts.items() if _sets_scsi_timeout(rules or "")]
    return [evaluate_scsi_timeout(agent_value, by_udev)]


def udev_rules(img: Image) -> list[str]:
    """Every udev rules file, once per real folder (/lib is often a link to /usr/lib)."""
    folders = dict.fromkeys(r for d in UDEV_DIRS if (r := img.root.resolve(d)) is not None)
    return [f"{d}/{n}" for d in folders for n in img.root.listdir(d) or [] if n.endswith(".rules")]


def _sets_scsi_timeout(text: str) -> bool:
    # ATTR{device/timeout}="300"
    return any("timeout" in line and "300" in line and not line.lstrip().startswith("#") for line in text.splitlines())


def evaluate_scsi_timeout(agent_value: str | None, udev_rules: list[str]) -> Record:
    ok = agent_value == "300" or bool(udev_rules)
    actual = f"OS.RootDeviceScsiTimeout={agent_value or 'unset'}; udev rules: {listing(udev_rules)}"
    problems = [] if ok else [(WARNING, "nothing sets the SCSI disk timeout to 300 s: set "
                                        "OS.RootDeviceScsiTimeout=300 in waagent.conf or add a udev rule")]
    return verdict("E4 SCSI disk timeout", problems, actual, "300 s via waagent or udev")


@rule("E6 Hyper-V KVP daemon")
def kvp_daemon(img: Image) -> list[Record]:
    packages = [p for p in KVP_PACKAGES if p in img.packages]
    files = [f for f in KVP_FILES if img.root.exists(f)]
    problems = [] if packages or files else [
        (WARNING, "no hv_kvp_daemon: Azure cannot read guest properties (optional on Debian, required on Azure "
                  "Linux); install hyperv-daemons")]
    return [verdict("E6 Hyper-V KVP daemon", problems, listing([*packages, *files]), "hv_kvp_daemon installed")]


RULES = (datasource, waagent, cloud_modules, scsi_timeout, kvp_daemon)
PREFETCH_STATS = (CLOUD_INIT_DISABLED, AZURE_DS_FILE, *KVP_FILES)
PREFETCH_LISTS = UDEV_DIRS
