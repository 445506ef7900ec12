"""Writes into the image tree stay inside it: symlinks resolve relative to the image root, '..' is refused,
and settings and seal steps never touch the build host's files (they run as root on the host)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import proc
from harness.builder import seal, settings
from harness.builder.guestroot import GuestRoot, check_guest_path
from harness.errors import BuildError
from harness.recipe import Setting
from harness.shellsyntax import grub_word, parse_assignments, shell_value


@pytest.fixture
def host_and_image(tmp_path: Path) -> tuple[Path, GuestRoot]:
    """An image tree whose absolute symlinks name files that also exist on the 'host' (tmp_path/host)."""
    host = tmp_path / "host"
    (host / "etc").mkdir(parents=True)
    (host / "etc/passwd").write_text("host passwd\n")
    (host / "run").mkdir()
    (host / "run/stub-resolv.conf").write_text("host resolver\n")
    image = tmp_path / "image"
    (image / "etc/ssh").mkdir(parents=True)
    (image / "run").mkdir()
    # Absolute links as a real image holds them; relative to the host they would leave the image.
    (image / "etc/resolv.conf").symlink_to(f"{host}/run/stub-resolv.conf")
    (image / "etc/mylink").symlink_to(f"{host}/etc/passwd")
    return host, GuestRoot(image)


def test_absolute_symlink_resolves_inside_the_image(host_and_image: tuple[Path, GuestRoot]) -> None:
    host, image = host_and_image
    target = image.path("/etc/mylink")
    assert target == image.root / str(host).lstrip("/") / "etc/passwd"
    image.write_text("/etc/mylink", "image file\n")
    assert (host / "etc/passwd").read_text() == "host passwd\n"
    assert target.read_text() == "image file\n"


def test_a_symlink_named_like_the_temp_file_is_not_written_through(host_and_image: tuple[Path, GuestRoot]) -> None:
    host, image = host_and_image
    (image.root / "etc/.hostname.harness-tmp").symlink_to(host / "etc/passwd")
    image.write_text("/etc/hostname", "image\n")
    assert (host / "etc/passwd").read_text() == "host passwd\n"
    assert (image.root / "etc/hostname").read_text() == "image\n"
    assert not (image.root / "etc/.hostname.harness-tmp").exists()


def test_dotdot_in_a_link_stops_at_the_image_root(tmp_path: Path) -> None:
    image = GuestRoot(tmp_path / "image")
    (image.root / "etc").mkdir(parents=True)
    (image.root / "etc/escape").symlink_to("../../../../../../etc")
    assert image.path("/etc/escape/passwd") == image.root / "etc/passwd"


@pytest.mark.parametrize("path", ["/../../etc/passwd", "etc/passwd", "/etc//passwd", "/etc/./x", "/a\0b", "/etc/"])
def test_recipe_paths_that_could_leave_the_image_are_refused(path: str) -> None:
    assert check_guest_path(path) is not None
    with pytest.raises(BuildError, match="image path"):
        GuestRoot(Path("/nonexistent")).path(path)


def test_symlink_loop_is_an_error(tmp_path: Path) -> None:
    image = GuestRoot(tmp_path)
    (tmp_path / "a").symlink_to("/b")
    (tmp_path / "b").symlink_to("/a")
    with pytest.raises(BuildError, match="symbolic links"):
        image.path("/a/x")


def test_a_setting_through_a_link_to_a_host_file_writes_the_image(host_and_image: tuple[Path, GuestRoot]) -> None:
    host, image = host_and_image
    settings.apply(image, Setting(file="/etc/mylink", key="Key", value="v", reason="r"))
    assert (host / "etc/passwd").read_text() == "host passwd\n"
    assert settings.read_from_text(image.read_text("/etc/mylink") or "", Setting("/etc/mylink", "v", "r", "Key")) == "v"


def test_seal_never_touches_host_files(host_and_image: tuple[Path, GuestRoot]) -> None:
    host, image = host_and_image
    (image.root / "home").symlink_to(f"{host}/home")  # /home -> /var/home style absolute link
    (host / "home/alice").mkdir(parents=True)
    (host / "home/alice/.bash_history").write_text("host history\n")
    (image.root / "var/lib").mkdir(parents=True)
    (image.root / "var/lib/dbus").symlink_to(f"{host}/etc")
    (image.root / "etc/ssh/ssh_host_rsa_key").write_text("key")
    seal.remove_host_keys(image)
    seal.remove_histories(image)
    seal.reset_machine_id(image, "empty")
    seal.reset_resolv_conf(image)
    seal.clean_caches_and_logs(image)
    assert (host / "home/alice/.bash_history").read_text() == "host history\n"
    assert (host / "etc/passwd").read_text() == "host passwd\n"
    assert (host / "run/stub-resolv.conf").read_text() == "host resolver\n"
    assert not (image.root / "etc/ssh/ssh_host_rsa_key").exists()
    assert (image.root / "etc/resolv.conf").is_symlink()  # the distro's design stays
    assert oct(os.stat(image.root / "etc/machine-id").st_mode & 0o777) == "0o444"


def registered_tree(tmp_path: Path) -> GuestRoot:
    """A tree registered with Red Hat and the SUSE Customer Center, holding both tools."""
    root = tmp_path / "image"
    for path in ("usr/sbin/subscription-manager", "usr/sbin/SUSEConnect", "etc/pki/consumer/cert.pem",
                 "etc/pki/consumer/key.pem", "etc/pki/entitlement/123.pem", "etc/pki/entitlement/123-key.pem",
                 "etc/pki/entitlement/README", "etc/zypp/credentials.d/SCCcredentials", "etc/SUSEConnect"):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("x\n")
    return GuestRoot(root)


def test_seal_unregisters_in_the_tree_and_removes_certificates_and_credentials(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = registered_tree(tmp_path)
    ran: list[list[str]] = []
    monkeypatch.setattr(proc, "run", lambda argv, **kwargs: ran.append([str(a) for a in argv]))
    seal.unregister(image, image.root)
    chroot = ["chroot", str(image.root)]
    assert ran == [[*chroot, "subscription-manager", "unregister"], [*chroot, "subscription-manager", "clean"],
                   [*chroot, "SUSEConnect", "--cleanup"]]
    assert not list(image.glob("/etc/pki/entitlement", "*.pem")) and not list(image.glob("/etc/pki/consumer", "*"))
    assert not image.exists("/etc/zypp/credentials.d/SCCcredentials") and not image.exists("/etc/SUSEConnect")
    assert image.exists("/etc/pki/entitlement/README")


def test_seal_runs_no_registration_tool_the_tree_does_not_hold(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    image = registered_tree(tmp_path)
    image.remove("/usr/sbin/subscription-manager")
    image.remove("/usr/sbin/SUSEConnect")
    ran: list[list[str]] = []
    monkeypatch.setattr(proc, "run", lambda argv, **kwargs: ran.append([str(a) for a in argv]))
    seal.unregister(image, image.root)
    assert ran == [] and not image.exists("/etc/pki/consumer/cert.pem") and not image.exists("/etc/SUSEConnect")


@pytest.mark.parametrize("value", ['a "quoted" $HOME `id` \\ back', "it's", "plain", "two words", "x;y|z&"])
def test_shell_settings_read_back_exactly_when_sourced(tmp_path: Path, value: str) -> None:
    line = settings.render_line(Setting("/etc/default/grub", value, "r", "GRUB_X", style="shell"))
    path = tmp_path / "grub"
    path.write_text(line + "\n")
    printed = proc.run(["sh", "-c", '. "$1"; printf %s "$GRUB_X"', "sh", str(path)]).stdout
    assert printed == value
    assert parse_assignments(line) == {"GRUB_X": value}
    assert shell_value(value) in line


@pytest.mark.parametrize("word,expected", [("console=ttyS0,115200n8", "console=ttyS0,115200n8"),
                                           ("dyndbg=$x", "'dyndbg=$x'"), ("a'b", "'a'\\''b'"),
                                           ("x;y", "'x;y'")])
def test_grub_words_are_literal(word: str, expected: str) -> None:
    assert grub_word(word) == expected


def test_a_blscfg_menu_needs_an_entry_for_the_kernel(tmp_path: Path) -> None:
    from harness.builder.grub import require_boot_entry

    root = GuestRoot(tmp_path)
    version = "5.14.0-503.el9.x86_64"
    with pytest.raises(BuildError, match=f"no Boot Loader Spec entry for kernel {version}"):
        require_boot_entry(root, version)  # no /boot/loader/entries at all
    root.write_text("/boot/loader/entries/abc-5.14.0-1.el9.x86_64.conf", "linux /vmlinuz-5.14.0-1.el9.x86_64\n")
    with pytest.raises(BuildError, match="the GRUB menu would be empty"):
        require_boot_entry(root, version)  # an entry, but for another kernel
    root.write_text(f"/boot/loader/entries/abc-{version}.conf", f"title CentOS\nversion {version}\n"
                    f"linux /vmlinuz-{version}\noptions root=UUID=x ro console=ttyS0\n")
    require_boot_entry(root, version)
