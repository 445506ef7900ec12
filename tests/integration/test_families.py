"""dnf and zypper for real against a tiny local rpm repository served over loopback HTTP, through the harness's
own bootstrap code; the customization program's shell (shellcheck, and the same edits as settings.py).

Local (no archive, no QEMU): rpmbuild, createrepo_c, dnf, zypper and shellcheck are Debian packages. The
apt recipes beyond the default two (debian-13, ubuntu-22.04) build at the end under the `nightly` marker.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from harness import proc
from harness import recipe as recipe_mod
from harness.builder import configure, customize, dnf, fetch, rpm, seal, zypper
from harness.builder import settings as settings_mod
from harness.builder.context import BuildContext, BuildOptions
from harness.builder.families import DNF, FAMILIES, ZYPPER
from harness.builder.pipeline import build, make_context
from harness.checks.audit import audit
from harness.errors import BuildError
from harness.recipe import DISTROS_DIR, Setting
from tests.conftest import build_recipe
from tests.integration.rangeserver import RangeServer, closed_port
from tests.integration.rpmrepo import HV_MODULE_PATHS, KERNEL_VERSION, SEEN, build_repo, default_packages, newc_cpio

CMDLINE = ["console=ttyS0,115200n8", "earlyprintk=ttyS0", "net.ifnames=0", "rootdelay=300"]
RECIPE = """
name = "{name}"
family = "{family}"
release = "9"
[source]
bootstrap = "{family}"
[[source.repositories]]
id = "fake"
baseurl = "{url}"
gpgcheck = false
[packages]
include = ["fake-base", "dracut-config-generic"]
[kernel]
package = "kernel-core"
cmdline = {cmdline}
initramfs_modules = ["hv_vmbus", "hv_storvsc", "hv_netvsc"]
[agent]
cloud-init = {{ include = ["cloud-init"] }}
[gallery]
publisher = "harness-test"
offer = "fake"
sku = "{family}"
[[settings]]
file = "/etc/default/grub"
key = "GRUB_TIMEOUT"
value = "1"
style = "shell"
reason = "test"
"""


@pytest.fixture(scope="module")
def repo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RangeServer]:
    work = tmp_path_factory.mktemp("rpmrepo")
    build_repo(work, default_packages())
    with RangeServer(work) as server:
        yield server


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Builds and the download cache in the test's own folder."""
    monkeypatch.setenv("HARNESS_BUILDS", str(tmp_path / "builds"))
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    return tmp_path


def fake_context(folder: Path, family: str, url: str) -> BuildContext:
    path = folder / f"fake-{family}.toml"
    cmdline = str(CMDLINE).replace("'", '"')
    path.write_text(RECIPE.format(name=f"fake-{family}", family=family, url=url, cmdline=cmdline))
    ctx = make_context(recipe_mod.load(path), BuildOptions(disk_size_mib=1024))
    ctx.work_dir.mkdir(parents=True)
    return ctx


def seen(ctx: BuildContext, name: str) -> str:
    return (ctx.rootfs / SEEN.lstrip("/") / name).read_text()


INSTALLED = [("cloud-init", "23.4-1", "noarch"), ("dracut-config-generic", "057-1", "noarch"),
             ("fake-base", "1.0-1", "noarch"), ("kernel-core", "5.14.0-1.fake", "x86_64")]


def test_dnf_installroot_installs_with_the_boot_files_in_place_before_the_kernel(
        repo_server: RangeServer, scratch: Path) -> None:
    ctx = fake_context(scratch, "dnf", f"{repo_server.url}/repo/")
    started = time.monotonic()
    dnf.bootstrap(ctx)
    assert time.monotonic() - started < 60
    # what the kernel's scriptlets (kernel-install, dracut) read was there when they ran
    assert seen(ctx, "kernel-cmdline") == f"root=UUID={ctx.root_uuid} ro {' '.join(CMDLINE)}\n"
    assert seen(ctx, "dracut.conf") == 'add_drivers+=" hv_vmbus hv_storvsc hv_netvsc "\n'
    assert seen(ctx, "grub").startswith(f'GRUB_CMDLINE_LINUX="{" ".join(CMDLINE)}"\n')
    assert [(p["name"], p["version"], p["arch"]) for p in ctx.packages] == INSTALLED
    # the target's database where its rpm looks (not Debian's ~/.rpmdb), packages kept in the harness cache
    assert (ctx.rootfs / "var/lib/rpm/rpmdb.sqlite").exists()
    cached = sorted(p.name for p in (scratch / "cache/dnf/9").glob("*/packages/*.rpm"))
    assert cached == sorted(f"{n}-{v}.{a}.rpm" for n, v, a in INSTALLED)
    assert not (ctx.rootfs / "tmp" / dnf.cache_link(ctx).name).exists() and not dnf.cache_link(ctx).exists()
    assert not (ctx.rootfs / "etc/yum.repos.d").exists()  # the host's repositories never leak in
    gets = [r.path for r in repo_server.requests if r.method == "GET"]
    assert "/repo/kernel-core-5.14.0-1.fake.x86_64.rpm" in gets


def test_dnf_tree_is_configured_and_sealed_by_the_shared_steps(repo_server: RangeServer, scratch: Path) -> None:
    ctx = fake_context(scratch, "dnf", f"{repo_server.url}/repo/")
    dnf.bootstrap(ctx)
    (ctx.rootfs / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    configure.configure(ctx)
    seal.seal(ctx)
    root = ctx.rootfs
    assert f"UUID={ctx.root_uuid} / ext4" in (root / "etc/fstab").read_text()
    assert (root / "etc/default/grub").read_text().count("GRUB_TIMEOUT=1") == 1
    assert (root / "etc/machine-id").read_text() == "uninitialized\n"  # dnf family policy
    assert (root / "var/log/dnf.log").stat().st_size == 0
    assert all(p.stat().st_size == 0 for p in (root / "var/log").rglob("*") if p.is_file())


def test_zypper_root_installs_keeps_packages_and_prepares_the_database_hand_over(
        repo_server: RangeServer, scratch: Path) -> None:
    ctx = fake_context(scratch, "zypper", f"{repo_server.url}/repo/")
    zypper.install(ctx)
    assert seen(ctx, "grub").startswith(f'GRUB_CMDLINE_LINUX_DEFAULT="{" ".join(CMDLINE)}"\n')
    assert seen(ctx, "dracut.conf") == 'add_drivers+=" hv_vmbus hv_storvsc hv_netvsc "\n'
    assert seen(ctx, "kernel-cmdline") == "MISSING"  # zypper's family has no kernel-install cmdline file
    assert [(p["name"], p["version"], p["arch"]) for p in ctx.packages] == INSTALLED
    assert (ctx.rootfs / "usr/lib/sysimage/rpm/rpmdb.sqlite").exists()
    assert not (ctx.rootfs / "run/zypp.pid").exists() and not zypper.solv_link(ctx).exists()
    assert not (ctx.rootfs / "tmp" / zypper.solv_link(ctx).name).exists()
    assert (scratch / "cache/zypper/9/solv/fake").is_dir()  # repository caches stay in the harness cache
    rpm.initramfs_gate(ctx, ZYPPER, KERNEL_VERSION)
    # the hand-over re-registers exactly the installed packages from zypper's cache
    files = zypper.cached_packages(ctx, ctx.packages)
    assert sorted(f.name for f in files) == sorted(f"{n}-{v}.{a}.rpm" for n, v, a in INSTALLED)
    assert zypper.host_backend() == "sqlite" and ZYPPER.rpmdb_backend == "ndb"
    argvs = zypper.handover_argvs(ctx, ZYPPER, ["/p.rpm"], [])
    assert argvs[-1][:4] == ["chroot", str(ctx.rootfs), "rpm", "-i"] and "--justdb" in argvs[-1]
    before = (ctx.rootfs / "usr/lib/sysimage/rpm/rpmdb.sqlite").stat().st_mtime_ns
    zypper.handover(ctx, replace(ZYPPER, rpmdb_backend="sqlite"))  # same backend as the host: nothing to do
    assert (ctx.rootfs / "usr/lib/sysimage/rpm/rpmdb.sqlite").stat().st_mtime_ns == before


def test_initramfs_without_a_hyperv_driver_stops_the_build(repo_server: RangeServer, scratch: Path) -> None:
    ctx = fake_context(scratch, "dnf", f"{repo_server.url}/repo/")
    dnf.bootstrap(ctx)
    initramfs = ctx.rootfs / f"boot/initramfs-{KERNEL_VERSION}.img"
    initramfs.write_bytes(newc_cpio([p for p in HV_MODULE_PATHS if "netvsc" not in p]))
    with pytest.raises(BuildError, match=r"hv_netvsc missing from /boot/initramfs-5\.14\.0-1\.fake\.x86_64\.img"):
        rpm.initramfs_gate(ctx, DNF, KERNEL_VERSION)


def test_repository_probe_digests_the_index(repo_server: RangeServer, scratch: Path) -> None:
    ctx = fake_context(scratch, "dnf", f"{repo_server.url}/repo/")
    import hashlib

    repomd = hashlib.sha256(fetch.fetch_bytes(f"{repo_server.url}/repo/repodata/repomd.xml")).hexdigest()
    assert rpm.probe_repositories(ctx) == {"fake": f"sha256:{repomd}"}


def test_unreachable_mirror_fails_in_seconds_naming_the_host(scratch: Path) -> None:
    port = closed_port()
    ctx = fake_context(scratch, "zypper", f"http://127.0.0.1:{port}/repo/")
    started = time.monotonic()
    with pytest.raises(fetch.UnreachableError) as info:
        build(ctx.recipe, BuildOptions(disk_size_mib=1024))
    assert time.monotonic() - started < 5
    assert f"cannot reach 127.0.0.1:{port}" in info.value.message
    assert "recipe fake-zypper (repository fake) needs network access to it" in info.value.message
    assert [p.name for p in (scratch / "builds/fake-zypper").iterdir()] == [ctx.work_dir.name]  # only ours


# ---------------------------------------------------------------------------------------------
# The customization program's shell.

def shellcheck(path: Path) -> None:
    result = proc.run(["shellcheck", "-s", "bash", str(path)], check=False)
    assert result.returncode == 0, result.stdout


def vendor_contexts(folder: Path) -> list[tuple[str, BuildContext]]:
    """Every shipped recipe with a customization boot, plus an apt-family one (no shipped apt recipe has one)."""
    apt = folder / "apt-vendor.toml"
    text = (DISTROS_DIR / "debian-12.toml").read_text().replace('name = "debian-12"', 'name = "apt-vendor"')
    apt.write_text(text.replace('[source]\nbootstrap = "mmdebstrap"\ncomponents = ["main"]\n',
                                f'[source.base_image]\nurl = "https://x/i.qcow2"\nsha256 = "{"0" * 64}"\n'))
    recipes = [recipe_mod.load(p) for p in recipe_mod.all_recipes()] + [recipe_mod.load(apt)]
    contexts = []
    for loaded in recipes:
        if loaded.source.base_image is not None and loaded.family in FAMILIES:
            for agent in ("cloud-init", "waagent"):
                contexts.append((f"{loaded.name}-{agent}", make_context(loaded, BuildOptions(agent=agent))))
    return contexts


def test_every_customization_program_passes_shellcheck(tmp_path: Path) -> None:
    contexts = vendor_contexts(tmp_path)
    assert {name for name, _ in contexts} >= {"rhel-9-cloud-init", "sles-15-waagent", "apt-vendor-cloud-init"}
    for name, ctx in contexts:
        program = tmp_path / f"{name}.sh"
        program.write_text(customize.program(ctx, FAMILIES[ctx.recipe.family]))
        shellcheck(program)


SAMPLES: list[tuple[Setting, str | None]] = [
    (Setting(file="/etc/waagent.conf", key="ResourceDisk.Format", value="n", reason="r"),
     "# ResourceDisk.Format=y\nResourceDiskXFormat=y\nResourceDisk.Format=y\nFoo=1\n  ResourceDisk.Format = x\n"),
    (Setting(file="/etc/waagent2.conf", key="Provisioning.Agent", value="auto", reason="r"), "A=1\nB=2"),
    (Setting(file="/etc/ssh/sshd_config", key="ClientAliveInterval", value="180", style="sshd", reason="r"),
     "#ClientAliveInterval 0\nclientaliveinterval 5\nPort 22\n"),
    (Setting(file="/etc/default/grub", key="GRUB_CMDLINE_LINUX", value='console=ttyS0 a="b c" $x', style="shell",
             reason="r"), '# GRUB_CMDLINE_LINUX=""\nGRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX="quiet"\n'),
    (Setting(file="/etc/dhcp/dhclient.conf", value="timeout 300;", style="line", reason="r"),
     "send host-name = gethostname();\n   timeout 300;   \n"),
    (Setting(file="/etc/dhcp/dhclient2.conf", value="timeout 300;", style="line", reason="r"), "retry 60;"),
    (Setting(file="/etc/cloud/cloud.cfg.d/91-azure_datasource.cfg", value="\nds: [ 'a\\b' ]\n$HOME `x`\n",
             style="file", reason="r"), "old\n"),
    (Setting(file="/etc/new/dir/created.conf", key="K", value="v", reason="r"), None),
]


def test_shell_settings_make_the_same_files_as_settings_py(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for setting, initial in SAMPLES:
        if initial is not None:
            target = root / setting.file.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(initial)
            target.chmod(0o600)
    script = tmp_path / "apply.sh"
    script.write_text("set -euo pipefail\n" + customize.snippet("common/settings.sh") +
                      customize.settings_function([s for s, _ in SAMPLES]) + "harness_apply_settings\n")
    shellcheck(script)
    proc.run(["bash", str(script)], env={**os.environ, "HARNESS_ROOT": str(root)})
    for setting, initial in SAMPLES:
        target = root / setting.file.lstrip("/")
        assert target.read_text() == settings_mod.apply_to_text(initial or "", setting), setting.file
        if initial is not None:
            assert stat.S_IMODE(target.stat().st_mode) == 0o600, setting.file


# ---------------------------------------------------------------------------------------------
# apt recipes beyond debian-12 and ubuntu-24.04: real builds from the archives, nightly only.

@pytest.mark.nightly
@pytest.mark.network
@pytest.mark.parametrize("name,release", [("debian-13", "trixie"), ("ubuntu-22.04", "jammy")])
def test_nightly_apt_recipe_builds_and_passes_the_offline_audit(name: str, release: str) -> None:
    folder = build_recipe(name)
    manifest = folder.manifest()
    assert (manifest.recipe, manifest.release, manifest.source) == (name, release, "mmdebstrap")
    names = {p.name for p in manifest.packages}
    assert {"cloud-init", "openssh-server"} <= names and manifest.kernel_version
    assert [f"{r.check}: {r.message}" for r in audit(folder).failed] == []
