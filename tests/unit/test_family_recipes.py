"""The seven distributions' recipes: schema rules of the new families and sources, and `harness build --plan`
for every recipe without any network (name lookups and connects are made to fail)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import recipe
from harness.builder import pipeline
from harness.builder.context import BuildOptions
from harness.builder.families import get as get_family
from harness.builder.settings import apply_to_text, effective_settings
from harness.checks import offline_config
from harness.errors import RecipeError
from harness.results import PASSED

EXPECTED = {
    "debian-12": ("apt", "mmdebstrap"), "debian-13": ("apt", "mmdebstrap"), "ubuntu-22.04": ("apt", "mmdebstrap"),
    "ubuntu-24.04": ("apt", "mmdebstrap"), "centos-stream-9": ("dnf", "dnf"), "oracle-9": ("dnf", "dnf"),
    "rhel-9": ("dnf", "base_image"), "sles-15": ("zypper", "base_image"),
    "opensuse-leap-15": ("zypper", "zypper"), "flatcar-stable": ("flatcar", "base_image"),
}
HEAD = """
name = "{name}"
family = "{family}"
release = "9"
[gallery]
publisher = "p"
offer = "o"
sku = "s"
"""


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> Any:
        raise AssertionError("--plan touched the network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def load_text(tmp_path: Path, name: str, family: str, body: str) -> recipe.Recipe:
    path = tmp_path / f"{name}.toml"
    path.write_text(HEAD.format(name=name, family=family) + body)
    return recipe.load(path)


def problems(tmp_path: Path, family: str, body: str) -> str:
    with pytest.raises(RecipeError) as info:
        load_text(tmp_path, "bad", family, body)
    return "\n".join(info.value.problems)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_distro_has_a_recipe_with_its_family_source_and_gallery_identity(name: str) -> None:
    loaded = recipe.load(name)
    assert (loaded.family, pipeline.source_kind(loaded)) == EXPECTED[name]
    assert loaded.publisher and loaded.offer and loaded.sku and loaded.generations == ("V1", "V2")


def test_gallery_identities_are_unique() -> None:
    identities = [(r.offer, r.sku) for r in map(recipe.load, recipe.all_recipes())]
    assert len(identities) == len(set(identities))


def test_bootstrap_must_match_the_family(tmp_path: Path) -> None:
    found = problems(tmp_path, "dnf", '[source]\nbootstrap = "zypper"\n'
                                      '[[source.repositories]]\nid = "a"\nbaseurl = "http://x/"\n')
    assert "source.bootstrap: family dnf bootstraps with dnf, not 'zypper'" in found
    found = problems(tmp_path, "flatcar", '[source]\nbootstrap = "dnf"\n[agent]\nprovisioning = "ignition"\n')
    assert "family flatcar bootstraps with nothing (use source.base_image)" in found


def test_repositories_are_required_and_checked(tmp_path: Path) -> None:
    assert "source.repositories: missing" in problems(tmp_path, "zypper", '[source]\nbootstrap = "zypper"\n')
    found = problems(tmp_path, "dnf", """[source]
bootstrap = "dnf"
[[source.repositories]]
id = "a"
baseurl = "http://x/"
metalink = "http://y/"
[[source.repositories]]
id = "a"
[[source.repositories]]
baseurl = "http://z/"
colour = "red"
""")
    for expected in ("source.repositories[0]: needs exactly one of baseurl, mirrorlist, metalink",
                     "source.repositories[1].id: 'a' is used by more than one repository",
                     "source.repositories[1]: needs exactly one of", "source.repositories[2].id: missing",
                     "source.repositories[2].colour: unknown key"):
        assert expected in found, expected


def test_base_image_needs_one_digest_and_a_keyring_for_its_signature(tmp_path: Path) -> None:
    found = problems(tmp_path, "dnf", '[source.base_image]\nurl = "https://x/i.qcow2"\nsignature = "https://x/i.sig"\n'
                                      'compression = "zip"\nformat = "vmdk"\n')
    for expected in ("source.base_image: needs exactly one of 'sha256' (pinned) or 'checksum_url'",
                     "source.keyring: missing (source.base_image.signature is checked against it)",
                     "source.base_image.compression: must be one of", "source.base_image.format: must be one of"):
        assert expected in found, expected


def test_ignition_belongs_to_flatcar_only(tmp_path: Path) -> None:
    image = '[source.base_image]\nurl = "https://x/i.vhd"\nsha256 = "' + "0" * 64 + '"\n'
    assert "agent.provisioning: 'ignition' provisions flatcar-family images" in problems(
        tmp_path, "dnf", image + '[agent]\nprovisioning = "ignition"\n')
    assert "agent.provisioning: 'ignition'" in problems(tmp_path, "flatcar", image)


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_plan_works_for_every_recipe_without_network(name: str) -> None:
    loaded = recipe.load(name)
    planned = pipeline.plan(loaded, BuildOptions())
    assert planned["recipe"] == name and planned["source"] == EXPECTED[name][1]
    assert all(isinstance(arg, str) for argv in planned["commands"] for arg in argv)
    assert all(path.startswith("/") for path in planned["files"])
    assert json.loads(json.dumps(planned)) == planned  # what `harness build --plan --json` prints


@pytest.mark.usefixtures("no_network")
def test_dnf_plan_shows_the_installroot_repositories_and_boot_files() -> None:
    planned = pipeline.plan(recipe.load("centos-stream-9"), BuildOptions())
    argv = planned["commands"][0]
    assert argv[:2] == ["dnf", "-y"] and any(a.startswith("--installroot=") for a in argv)
    assert "--releasever=9" in argv and argv[argv.index("install") + 1:][-1] == "cloud-init"
    repo = next(text for path, text in planned["host_files"].items() if path.endswith("repos.d/harness.repo"))
    assert "[baseos]\nname=CentOS Stream 9 - BaseOS\nbaseurl=https://mirror.stream.centos.org/9-stream/BaseOS/" in repo
    assert planned["environment"]["HOME"].endswith("rpm-home")
    assert any(text == "%_dbpath /var/lib/rpm\n" for text in planned["host_files"].values())
    pre = planned["preinstall_files"]
    assert pre["/etc/dracut.conf.d/50-azure-hyperv.conf"] == 'add_drivers+=" hv_vmbus hv_storvsc hv_netvsc "\n'
    cmdline = pre["/etc/kernel/cmdline"]
    assert cmdline.startswith("root=UUID=") and " ro console=tty1 console=ttyS0,115200n8 " in cmdline
    assert "insmod blscfg\nblscfg\n" in planned["/boot/grub2/grub.cfg"]


@pytest.mark.usefixtures("no_network")
def test_zypper_plan_shows_the_root_and_the_database_hand_over() -> None:
    planned = pipeline.plan(recipe.load("opensuse-leap-15"), BuildOptions())
    zypper, *handover = planned["commands"]
    assert zypper[0] == "zypper" and any(a.startswith("--root=") for a in zypper) and "--releasever=15.6" in zypper
    assert handover[0][0] == "chroot" and handover[0][-2:] == ["rpm", "--initdb"]
    assert "--justdb" in handover[-1]
    repo = next(text for path, text in planned["host_files"].items() if path.endswith("harness.repo"))
    assert "keeppackages=1" in repo and "baseurl=https://download.opensuse.org/distribution/leap/$releasever/" in repo
    assert planned["preinstall_files"]["/etc/default/grub"].startswith('GRUB_CMDLINE_LINUX_DEFAULT="console=tty1')
    assert "menuentry" in planned["/boot/grub2/grub.cfg"]


@pytest.mark.usefixtures("no_network")
def test_vendor_plan_shows_download_conversion_and_the_customization_user_data() -> None:
    planned = pipeline.plan(recipe.load("rhel-9"), BuildOptions())
    assert planned["download"]["url"] == "/var/lib/harness/vendor/rhel-9-x86_64-kvm.qcow2"
    assert planned["download"]["checksum_url"].endswith(".qcow2.sha256")
    assert planned["commands"][0][:6] == ["qemu-img", "convert", "-f", "qcow2", "-O", "raw"]
    custom = planned["customization"]
    assert custom["firmware"] == "bios" and "serial=harness-facts" in " ".join(custom["qemu_extra"])
    user_data = yaml.safe_load(custom["user_data"])
    assert user_data["users"] == [] and user_data["growpart"] == {"mode": "off"}
    assert user_data["runcmd"][0][:3] == ["systemd-run", "--no-block", "--unit=harness-customize"]
    assert "grubby --update-kernel=ALL" in custom["program"] and "dracut --force" in custom["program"]


@pytest.mark.usefixtures("no_network")
def test_flatcar_plan_decompresses_and_does_not_customize() -> None:
    planned = pipeline.plan(recipe.load("flatcar-stable"), BuildOptions())
    assert planned["decompress"]["compression"] == "bz2"
    assert planned["commands"][0][2:4] == ["-f", "vpc"]
    assert planned["customization"].startswith("none")
    assert planned["download"]["checksum_url"].endswith(".DIGESTS")


NETWORK_MANAGER_RECIPES = ("centos-stream-9", "oracle-9", "rhel-9")  # rhel-9's vendor image brings NetworkManager


def test_every_recipe_installing_network_manager_is_in_the_dhcp_timeout_list() -> None:
    installing = {n for n in EXPECTED if "NetworkManager" in recipe.load(n).packages_include}
    assert installing <= set(NETWORK_MANAGER_RECIPES)


@pytest.mark.parametrize("name", NETWORK_MANAGER_RECIPES)
@pytest.mark.parametrize("agent", ["cloud-init", "waagent"])
def test_network_manager_recipes_wait_300_s_for_a_dhcp_lease(name: str, agent: str) -> None:
    loaded = recipe.load(name)
    files: dict[str, str] = {}
    for setting in effective_settings(loaded, get_family(loaded.family), agent, specialized=False):
        files[setting.file] = apply_to_text(files.get(setting.file, ""), setting)
    texts = [text for path, text in sorted(files.items()) if path.startswith(offline_config.NM_CONF_D + "/")]
    assert offline_config.evaluate_dhcp_timeout(None, False, offline_config.nm_dhcp_timeouts(texts)).result == PASSED


def test_comment_style_takes_a_value_and_no_key(tmp_path: Path) -> None:
    base = '[[settings]]\nfile = "/etc/sudoers"\nvalue = "Defaults targetpw"\nstyle = "comment"\nreason = "r"\n'
    image = '[source.base_image]\nurl = "/v/x.qcow2"\nchecksum_url = "/v/x.qcow2.sha256"\nformat = "qcow2"\n'
    loaded = load_text(tmp_path, "ok", "zypper", image + base)
    assert [(s.style, s.key) for s in loaded.settings_for("cloud-init")] == [("comment", "")]
    assert "style 'comment' takes no key" in problems(tmp_path, "zypper", image + base + 'key = "Defaults"\n')
    for value in ("", "# Defaults targetpw", "Defaults targetpw # ask"):
        entry = base.replace('"Defaults targetpw"', repr(value).replace("'", '"'))
        assert "style 'comment' takes the words of an active line" in problems(tmp_path, "zypper", image + entry)


@pytest.mark.parametrize("name", ["centos-stream-9", "oracle-9", "rhel-9", "sles-15", "opensuse-leap-15"])
def test_rpm_recipes_turn_on_cloud_init_kvp_reporting(name: str) -> None:
    """Azure's RHEL and SUSE guides install cloud-init's Hyper-V KVP reporting (not the waagent variant's)."""
    loaded = recipe.load(name)
    family = get_family(loaded.family)
    kvp = [s for s in effective_settings(loaded, family, "cloud-init", specialized=False)
           if s.file == "/etc/cloud/cloud.cfg.d/10-azure-kvp.cfg"]
    assert len(kvp) == 1 and kvp[0].style == "file"
    assert yaml.safe_load(kvp[0].value)["reporting"]["telemetry"] == {"type": "hyperv"}
    assert not [s for s in effective_settings(loaded, family, "waagent", specialized=False) if s in kvp]
