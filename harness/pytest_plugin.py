"""pytest plugin for users' own provisioning checks (entry point `pytest11: harness`).

    pytest --harness-build builds/debian-12/<id> my_checks.py

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
from typing import Any

import pytest

from harness.buildfolder import BuildFolder
from harness.verify.boot import BootRequest, BootSession
from harness.verify.events import PlatformView
from harness.vm.ssh import Guest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "harness image checks")
    group.addoption("--harness-build", metavar="BUILD", help="build folder or RECIPE[@ID|@latest] to boot")
    group.addoption("--harness-firmware", default="bios,uefi", metavar="LIST",
                    help="firmwares to boot the build under (bios, uefi; default both)")
    group.addoption("--harness-accel", default="auto", choices=["auto", "kvm", "tcg"], help="QEMU accelerator")
    group.addoption("--harness-fault", action="append", default=[], metavar="RULE",
                    help="fault to inject into the fake platform for the boot (repeatable)")
    group.addoption("--harness-timeout-s", type=float, default=300.0, help="boot-to-Ready timeout")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "vm" in metafunc.fixturenames or "ssh" in metafunc.fixturenames or "azure_platform" in metafunc.fixturenames:
        firmwares = [f.strip() for f in str(metafunc.config.getoption("harness_firmware")).split(",") if f.strip()]
        metafunc.parametrize("harness_firmware", firmwares, scope="session")


@pytest.fixture(scope="session")
def harness_build(pytestconfig: pytest.Config) -> BuildFolder:
    from harness.buildfolder import resolve

    value = pytestconfig.getoption("harness_build")
    if not value:
        pytest.skip("no build to check: pass --harness-build BUILD (a build folder or RECIPE@latest)")
    return resolve(str(value))


@pytest.fixture(scope="session")
def vm(pytestconfig: pytest.Config, harness_build: BuildFolder, harness_firmware: str) -> Iterator[BootSession]:
    from harness.verify.prepare import choose_accel

    accel = choose_accel(harness_build, str(pytestconfig.getoption("harness_accel")))
    request = BootRequest(build=harness_build, firmware=harness_firmware, platform="azure", accel=accel,
                          faults=tuple(pytestconfig.getoption("harness_fault")),
                          timeout_s=float(pytestconfig.getoption("harness_timeout_s")))
    with BootSession(request) as session:
        session.wait_ready()
        yield session


@pytest.fixture(scope="session")
def ssh(vm: BootSession) -> Guest:
    return vm.guest()


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
def azure_platform(vm: BootSession) -> AzurePlatform:
    assert vm.view is not None
    return AzurePlatform(vm.view)
