"""The pytest plugin users drop their own checks into: fixtures boot the build and log in."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.buildfolder import BuildFolder
from harness.enums import Stage
from harness.results import load_stage

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


def test_user_checks_run_inside_verify_and_gate_publish(debian12_build: BuildFolder, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """`harness verify --tests DIR`: the user's tests run in verify's own boot with the plugin's fixtures; each is a
    verify record, the failing one fails verify, and publish refuses the build."""
    from harness.cli import main
    from tests.conftest import copy_build

    build = copy_build(debian12_build, tmp_path / "builds")
    tests = tmp_path / "site-checks"
    tests.mkdir()
    (tests / "test_my_image.py").write_text(USER_TESTS, encoding="utf-8")
    assert main(["verify", str(build.path), "--firmware", "bios", "--tests", str(tests), "--json"]) == 1
    report = load_stage(build, Stage.VERIFY)
    assert report is not None
    user = {r.check.rsplit("::", 1)[-1]: r for r in report.records if r.check.startswith("user ")}
    assert {name: r.result for name, r in user.items()} == {
        "test_my_package_is_there": "Passed", "test_my_user_is_not_root": "Passed", "test_agent_said_ready": "Passed",
        "test_a_user_check_that_fails": "Failed"}
    assert (build.path / user["test_a_user_check_that_fails"].evidence).is_file()
    builtin = [r for r in report.failed_records() if not r.check.startswith("user ")]
    assert builtin == []  # only the user's failing test fails this boot
    capsys.readouterr()
    assert main(["check", str(build.path)]) == 0
    assert main(["publish", str(build.path), "--to", f"local:{tmp_path / 'gallery'}", "--generation", "V1"]) == 1
    assert "verify has not passed on bios" in capsys.readouterr().err


@pytest.mark.nightly  # the same fixtures run in make test through `verify --tests`; this is the boot of their own
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
