"""pytest plugin for users' own provisioning checks (entry point `pytest11: harness`).

    pytest --harness-build builds/debian-12/<id> my_checks.py      # boots the build itself
    harness verify debian-12@latest --tests my_checks/               # runs them inside verify's own boots

The second form starts pytest with `--harness-attach FILE`: the fixtures then reach the boot verify is
running (no second boot), and each test becomes a verify record that gates publish.

Fixtures:
- `harness_build`: the BuildFolder given by --harness-build (a folder or RECIPE[@ID|@latest]);
- `vm`: that build booted on the fake Azure platform and provisioned (Ready received), one boot per
  firmware for the whole session, parametrised by --harness-firmware (default: bios and uefi);
- `ssh`: a paramiko-backed Guest logged in as the provisioned admin user (`ssh.run(cmd)` returns
  exit code, stdout and stderr; nothing is checked for you);
- `azure_platform`: what the fake platform saw (requests, events, Ready, fault hits); inject
  faults for the boot with --harness-fault RULE (e.g. wireserver:health=500x3).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.buildfolder import BuildFolder
from harness.platform.config import PlatformConfig
from harness.verify.boot import BootRequest, BootSession
from harness.verify.events import PlatformView
from harness.verify.usertests import Attachment
from harness.vm.ssh import Guest, KeyPair


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "harness image checks")
    group.addoption("--harness-build", metavar="BUILD", help="build folder or RECIPE[@ID|@latest] to boot")
    group.addoption("--harness-firmware", default="bios,uefi", metavar="LIST",
                    help="firmwares to boot the build under (bios, uefi; default both)")
    group.addoption("--harness-accel", default="auto", choices=["auto", "kvm", "tcg"], help="QEMU accelerator")
    group.addoption("--harness-fault", action="append", default=[], metavar="RULE",
                    help="fault to inject into the fake platform for the boot (repeatable)")
    group.addoption("--harness-timeout-s", type=float, default=300.0, help="boot-to-Ready timeout")
    group.addoption("--harness-attach", metavar="FILE",
                    help="internal: attach to the boot `harness verify --tests` is running (a file it writes)")


def _attachment(config: pytest.Config) -> Attachment | None:
    value = config.getoption("harness_attach")
    return Attachment.read(Path(str(value))) if value else None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One boot per --harness-firmware value (attached to verify's boot: that one, test names unchanged)."""
    wanted = {"vm", "ssh", "azure_platform"} & set(metafunc.fixturenames)
    if wanted and _attachment(metafunc.config) is None:
        firmwares = [f.strip() for f in str(metafunc.config.getoption("harness_firmware")).split(",") if f.strip()]
        metafunc.parametrize("harness_firmware", firmwares, scope="session")


@pytest.fixture(scope="session")
def harness_firmware(pytestconfig: pytest.Config) -> str:
    """The firmware of the boot the tests are attached to (otherwise a parameter, see pytest_generate_tests)."""
    attached = _attachment(pytestconfig)
    assert attached is not None, "harness_firmware is parametrized unless the tests are attached to a boot"
    return attached.firmware


@pytest.fixture(scope="session")
def harness_build(pytestconfig: pytest.Config) -> BuildFolder:
    from harness.buildfolder import resolve

    attached = _attachment(pytestconfig)
    value = attached.build if attached else pytestconfig.getoption("harness_build")
    if not value:
        pytest.skip("no build to check: pass --harness-build BUILD (a build folder or RECIPE@latest)")
    return resolve(str(value))


@dataclass
class AttachedBoot:
    """The `vm` fixture when the tests run inside `harness verify`: the boot's platform configuration (host
    name, admin user, ...), its platform view (requests, events) and its evidence folder."""

    attachment: Attachment
    config: PlatformConfig
    view: PlatformView | None  # None on a NoCloud boot
    evidence: Path

    def guest(self, timeout_s: float = 180) -> Guest:
        """A fresh SSH session as the provisioned admin user (the boot's own key)."""
        key = KeyPair(Path(self.attachment.private_key), "")
        guest = Guest(Path(self.attachment.ssh_socket), self.attachment.user, key)
        guest.connect(timeout_s)
        return guest


@pytest.fixture(scope="session")
def vm(pytestconfig: pytest.Config, harness_build: BuildFolder,
       harness_firmware: str) -> Iterator[BootSession | AttachedBoot]:
    from harness.verify.prepare import choose_accel

    attached = _attachment(pytestconfig)
    if attached is not None:
        view = PlatformView(Path(attached.events), Path(attached.requests)) if attached.events else None
        yield AttachedBoot(attached, PlatformConfig.read_json(Path(attached.platform_config)), view,
                           Path(attached.evidence))
        return

    accel = choose_accel(harness_build, str(pytestconfig.getoption("harness_accel")))
    request = BootRequest(build=harness_build, firmware=harness_firmware, platform="azure", accel=accel,
                          faults=tuple(pytestconfig.getoption("harness_fault")),
                          timeout_s=float(pytestconfig.getoption("harness_timeout_s")))
    with BootSession(request) as session:
        session.wait_ready()
        yield session


@pytest.fixture(scope="session")
def ssh(vm: BootSession | AttachedBoot) -> Iterator[Guest]:
    guest = vm.guest()
    yield guest
    guest.close()


class AzurePlatform:
    """What the fake platform saw during the boot (re-read on every access)."""

    def __init__(self, view: PlatformView) -> None:
        self.view = view

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.view.refresh().requests

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.view.refresh().events

    @property
    def ready(self) -> dict[str, Any] | None:
        return self.view.refresh().ready()

    def faults_hit(self) -> dict[str, int]:
        return self.view.refresh().faulted()


@pytest.fixture(scope="session")
def azure_platform(vm: BootSession | AttachedBoot) -> AzurePlatform:
    if vm.view is None:
        pytest.skip("the boot has no fake Azure platform (a NoCloud boot)")
    return AzurePlatform(vm.view)
