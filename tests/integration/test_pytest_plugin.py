"""The pytest plugin users drop their own checks into: fixtures boot the build and log in."""

from __future__ import annotations

import pytest

from harness.buildfolder import BuildFolder

pytestmark = [pytest.mark.qemu, pytest.mark.network]

USER_TESTS = '''
def test_my_package_is_there(ssh):
    result = ssh.run("dpkg-query -W openssh-server")
    assert result.exit_code == 0, result.describe()

def test_my_user_is_not_root(ssh):
    assert ssh.run("id -u").stdout.strip() != "0"

def test_agent_said_ready(azure_platform, harness_build):
    assert azure_platform.ready is not None
    assert azure_platform.ready["state"] == "Ready"
    assert harness_build.manifest().recipe == "debian-12"

def test_a_user_check_that_fails(ssh):
    assert ssh.run("test -e /etc/no-such-file").exit_code == 0
'''


def test_user_checks_run_against_the_booted_build(pytester: pytest.Pytester, debian12_build: BuildFolder) -> None:
    pytester.makepyfile(test_my_image=USER_TESTS)
    result = pytester.runpytest_inprocess("--harness-build", str(debian12_build.path), "--harness-firmware", "bios",
                                          "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*test_a_user_check_that_fails*"])


def test_without_a_build_the_fixtures_say_why(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x(harness_build):\n    pass\n")
    result = pytester.runpytest_inprocess("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*pass --harness-build BUILD*"])
