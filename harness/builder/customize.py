"""The customization program of a vendor image and the NoCloud seed that runs it (pure: unit-tested, shown by
`harness build --plan`, shellchecked by the tests).

One bash program is written to the guest: the build's variables, harness/distros/common/settings.sh, the
family's functions (harness/distros/<family>/customize.sh), harness/distros/common/seal.sh, the declared settings
as calls, and harness/distros/common/main.sh. cloud-init's runcmd starts it after cloud-final; it installs the
agent, applies the settings, regenerates the initramfs and boot entries when their inputs changed, removes swap,
seals, writes its facts (status, package list, kernel, root UUID) as a tar onto a small extra disk and powers off.
"""

from __future__ import annotations

import base64
import shlex
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.builder.context import BuildContext
from harness.builder.families import FamilyTraits
from harness.builder.packages import package_set
from harness.builder.settings import render_line
from harness.errors import BuildError
from harness.helpers.egress import PROXY_PORT
from harness.recipe import DISTROS_DIR, Setting
from harness.vm.network import GATEWAY

GUEST_PROGRAM = "/run/harness/customize.sh"
# the package proxy inside the customization boot's namespace (custboot.py, egress.py)
PROXY_URL = f"http://{GATEWAY}:{PROXY_PORT}"
FACTS_SERIAL = "harness-facts"
FACTS_DEVICE = f"/dev/disk/by-id/virtio-{FACTS_SERIAL}"
UNIT = "harness-customize"
DONE_MARKER = "harness-customize: finished"
# image-checks A9: these hide the boot from the serial console
REMOVE_CMDLINE = ("rhgb", "quiet")
COMMON = ("common/settings.sh", "common/seal.sh")
MAIN = "common/main.sh"


def snippet(name: str) -> str:
    return (DISTROS_DIR / name).read_text(encoding="utf-8")


def _array(name: str, values: list[str] | tuple[str, ...]) -> str:
    return f"{name}=({' '.join(shlex.quote(v) for v in values)})"


def _scalar(name: str, value: str) -> str:
    return f"{name}={shlex.quote(value)}"


def environment(ctx: BuildContext, family: FamilyTraits) -> str:
    """The build's inputs as bash variables (the first part of the program)."""
    include, exclude = package_set(ctx)
    variant = ctx.recipe.agent_variants.get(ctx.agent)
    boot_files = [family.grub_default] + ([family.kernel_cmdline_file] if family.kernel_cmdline_file else [])
    lines = [
        _array("HARNESS_PACKAGES", include),
        _array("HARNESS_REMOVE_PACKAGES", exclude),
        _scalar("HARNESS_CMDLINE", " ".join(ctx.recipe.kernel_cmdline)),
        _scalar("HARNESS_REMOVE_CMDLINE", " ".join(REMOVE_CMDLINE)),
        _array("HARNESS_ENABLE_UNITS", variant.enable_units if variant else ()),
        _array("HARNESS_DISABLE_UNITS", variant.disable_units if variant else ()),
        _scalar("HARNESS_MACHINE_ID", ctx.recipe.machine_id or family.machine_id),
        _array("HARNESS_LEASE_DIRS", family.dhcp_lease_dirs),
        _array("HARNESS_INITRAMFS_FILES", [family.initramfs_modules_file]),
        _array("HARNESS_BOOT_FILES", boot_files),
        _scalar("HARNESS_FACTS_DEVICE", FACTS_DEVICE),
        _scalar("HARNESS_PROXY", PROXY_URL),
        # read by some families' functions only
        "export HARNESS_CMDLINE HARNESS_REMOVE_CMDLINE",
    ]
    return "\n".join(lines) + "\n"


def setting_call(setting: Setting) -> str:
    """One declared setting as a call of harness/distros/common/settings.sh (same result as settings.apply_to_text)."""
    path = shlex.quote(setting.file)
    if setting.style == "file":
        value = setting.value.lstrip("\n")
        content = value if not value or value.endswith("\n") else value + "\n"
        return f"harness_set_file {path} {shlex.quote(content)}"
    if setting.style == "line":
        return f"harness_set_line {path} {shlex.quote(setting.value)}"
    if setting.style == "comment":
        return f"harness_comment_line {path} {shlex.quote(setting.value)}"
    return f"harness_set_key {path} {setting.style} {shlex.quote(setting.key)} {shlex.quote(render_line(setting))}"


def settings_function(settings: list[Setting]) -> str:
    body = [f"  {setting_call(s)}" for s in settings] or ["  :"]
    # single quotes on purpose: a setting's value is literal text, a '$' in it must not expand
    return "# shellcheck disable=SC2016\nharness_apply_settings() {\n" + "\n".join(body) + "\n}\n"


def program(ctx: BuildContext, family: FamilyTraits) -> str:
    """The whole bash program the customization boot runs."""
    parts = [
        "#!/bin/bash\n# Written by harness (harness/builder/customize.py) for the customization boot of "
        f"{ctx.recipe.name}.\n",
        environment(ctx, family),
        *(snippet(name) for name in COMMON),
        snippet(family.customize_snippet),
        settings_function(ctx.settings),
        snippet(MAIN),
    ]
    return "\n".join(parts)


def user_data(program_text: str) -> str:
    """#cloud-config: no users, keep the host name and the disk layout, write and start the program."""
    config: dict[str, Any] = {
        "users": [],
        "preserve_hostname": True,
        "growpart": {"mode": "off"},
        "resize_rootfs": False,
        "apt": {"preserve_sources_list": True},
        "write_files": [{"path": GUEST_PROGRAM, "permissions": "0700", "encoding": "b64",
                         "content": base64.b64encode(program_text.encode()).decode("ascii")}],
        # runcmd runs inside cloud-final: the unit waits for cloud-final to finish before it starts
        "runcmd": [["systemd-run", "--no-block", f"--unit={UNIT}", "--property=After=cloud-final.service",
                    "/bin/bash", GUEST_PROGRAM]],
    }
    return "#cloud-config\n" + yaml.safe_dump(config, sort_keys=False, width=1 << 20)


def meta_data() -> str:
    return yaml.safe_dump({"instance-id": f"iid-harness-customize-{uuid.uuid4().hex[:12]}",
                           "local-hostname": "localhost"}, sort_keys=False)


@dataclass(frozen=True)
class Facts:
    """What the customization boot reported from inside the guest."""

    status: int
    seal_status: int
    log: str
    packages: list[dict[str, str]]
    kernel_version: str
    root_uuid: str
    os_release: str

    def failure(self) -> str | None:
        if self.status != 0:
            return f"the customization failed with exit status {self.status}"
        if self.seal_status != 0:
            return f"the seal failed with exit status {self.seal_status}"
        return None


def read_facts(disk: Path) -> Facts:
    """Parse the tar the guest wrote onto the facts disk."""
    try:
        with tarfile.open(disk, mode="r:") as archive:
            files = {Path(m.name).name: _member(archive, m) for m in archive.getmembers() if m.isfile()}
    except tarfile.TarError as exc:
        raise BuildError(f"the customization boot wrote no facts ({exc})",
                         "it never reached its end: see customize/serial.log in the scratch folder") from exc
    if "status" not in files:
        raise BuildError("the customization boot wrote no status", "see customize/serial.log")

    def text(name: str) -> str:
        return files.get(name, "").strip()

    return Facts(status=int(text("status") or 1), seal_status=int(text("seal-status") or 1),
                 log="\n".join(filter(None, (files.get("customize.log", ""), files.get("seal.log", "")))),
                 packages=parse_packages(files.get("packages.tsv", "")), kernel_version=text("kernel"),
                 root_uuid=text("root-uuid").lower(), os_release=files.get("os-release", ""))


def _member(archive: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    handle = archive.extractfile(member)
    return handle.read().decode("utf-8", errors="replace") if handle else ""


def parse_packages(text: str) -> list[dict[str, str]]:
    """'name<TAB>version<TAB>arch' lines -> the manifest's package records."""
    packages = []
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) == 3:
            packages.append({"name": fields[0], "version": fields[1], "arch": fields[2]})
    return packages
