"""A tiny local rpm repository built with rpmbuild and createrepo_c (both Debian packages): fake packages that
stand in for a distro's kernel and configuration packages, so dnf and zypper run for real against them.

The fake kernel ships /boot/vmlinuz, /boot/config and an initramfs (a plain newc cpio) under both the dnf and
the zypper names, and a Lua %posttrans scriptlet (Lua runs inside rpm: the fake root has no shell) that
copies what a real kernel's scriptlets read (kernel-install's /etc/kernel/cmdline, the dracut drop-in,
GRUB's defaults) to /boot/harness-seen/, proving those files were in place when the kernel installed.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from harness import proc

KERNEL_VERSION = "5.14.0-1.fake.x86_64"
HV_MODULE_PATHS = (
    f"usr/lib/modules/{KERNEL_VERSION}/kernel/drivers/hv/hv_vmbus.ko.xz",
    f"usr/lib/modules/{KERNEL_VERSION}/kernel/drivers/scsi/hv_storvsc.ko.xz",
    f"usr/lib/modules/{KERNEL_VERSION}/kernel/drivers/net/hyperv/hv_netvsc.ko.xz",
)
SEEN = "/boot/harness-seen"
KERNEL_POSTTRANS = f"""
local function copy(src, dst)
  local data = "MISSING"
  local f = io.open(src, "r")
  if f then data = f:read("a"); f:close() end
  local out = io.open(dst, "w")
  out:write(data)
  out:close()
end
copy("/etc/kernel/cmdline", "{SEEN}/kernel-cmdline")
copy("/etc/dracut.conf.d/50-azure-hyperv.conf", "{SEEN}/dracut.conf")
copy("/etc/default/grub", "{SEEN}/grub")
"""


@dataclass(frozen=True)
class FakePackage:
    name: str
    version: str
    release: str = "1"
    arch: str = "noarch"
    files: dict[str, bytes] = field(default_factory=dict)
    dirs: tuple[str, ...] = ()
    posttrans_lua: str = ""


def newc_cpio(paths: list[str]) -> bytes:
    """A newc cpio archive of empty regular files (what lsinitrd lists from an uncompressed initramfs)."""
    out = bytearray()
    for ino, name in enumerate([*paths, "TRAILER!!!"], start=1):
        encoded = name.encode() + b"\0"
        mode = 0o100644 if name != "TRAILER!!!" else 0
        # ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
        fields = [ino, mode, 0, 0, 1, 0, 0, 0, 0, 0, 0, len(encoded), 0]
        out += b"070701" + b"".join(f"{v:08X}".encode() for v in fields) + encoded
        out += b"\0" * (-(110 + len(encoded)) % 4)
    out += b"\0" * (-len(out) % 512)
    return bytes(out)


def kernel_package(modules: tuple[str, ...] = HV_MODULE_PATHS) -> FakePackage:
    initramfs = newc_cpio(list(modules))
    config = b"CONFIG_HYPERV=m\nCONFIG_HYPERV_STORAGE=m\nCONFIG_HYPERV_NET=m\nCONFIG_UDF_FS=m\n"
    return FakePackage(
        name="kernel-core", version="5.14.0", release="1.fake", arch="x86_64",
        files={f"/boot/vmlinuz-{KERNEL_VERSION}": b"not a kernel\n", f"/boot/config-{KERNEL_VERSION}": config,
               f"/boot/initramfs-{KERNEL_VERSION}.img": initramfs, f"/boot/initrd-{KERNEL_VERSION}": initramfs,
               f"/usr/lib/modules/{KERNEL_VERSION}/modules.dep": b""},
        dirs=(SEEN,), posttrans_lua=KERNEL_POSTTRANS)


def default_packages() -> list[FakePackage]:
    return [
        kernel_package(),
        FakePackage("dracut-config-generic", "057", files={
            "/usr/lib/dracut/dracut.conf.d/02-generic-image.conf": b'hostonly="no"\n'}),
        FakePackage("fake-base", "1.0", files={"/etc/os-release": b'ID=fake\nNAME="Fake Linux"\n',
                                               "/etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n"}),
        FakePackage("cloud-init", "23.4", files={"/etc/cloud/cloud.cfg": b"datasource_list: [ NoCloud ]\n"}),
    ]


def _spec(package: FakePackage, source: Path) -> str:
    files = "\n".join([*(f"%dir {d}" for d in package.dirs), *package.files])
    posttrans = f"%posttrans -p <lua>\n{package.posttrans_lua}\n" if package.posttrans_lua else ""
    return f"""Name: {package.name}
Version: {package.version}
Release: {package.release}
Summary: harness test stand-in for {package.name}
License: MIT
BuildArch: {package.arch}
%description
A fake package for the harness's dnf/zypper plumbing tests.
%install
mkdir -p %{{buildroot}}
cp -a {source}/. %{{buildroot}}/
{posttrans}%files
{files}
"""


def build_repo(workdir: Path, packages: list[FakePackage]) -> Path:
    """rpmbuild every package, then createrepo_c; returns the repository folder."""
    top = workdir / "rpmbuild"
    repo = workdir / "repo"
    repo.mkdir(parents=True)
    for package in packages:
        source = workdir / "src" / package.name
        for path, data in package.files.items():
            target = source / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        for folder in package.dirs:
            (source / folder.lstrip("/")).mkdir(parents=True, exist_ok=True)
        spec = workdir / f"{package.name}.spec"
        spec.write_text(_spec(package, source), encoding="utf-8")
        proc.run(["rpmbuild", "--quiet", "--define", f"_topdir {top}", "--define", "_build_id_links none",
                 "--define", "__os_install_post %{nil}", "-bb", str(spec)])
    for rpm_file in top.glob("RPMS/*/*.rpm"):
        shutil.copy(rpm_file, repo / rpm_file.name)
    proc.run(["createrepo_c", "--quiet", str(repo)])
    return repo
