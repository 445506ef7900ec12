"""The pytest plugin users drop their own checks into: fixtures boot the build and log in."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.buildfolder import BuildFolder
from tests.integration.conftest import USER_TESTS, UnsignedGen2Run

pytestmark = [pytest.mark.qemu, pytest.mark.network]



def test_user_checks_run_inside_verify_and_gate_publish(unsigned_gen2: UnsignedGen2Run, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """`harness verify --tests DIR`: the user's tests run in verify's own boot with the plugin's fixtures; each is a
    verify record, the failing one fails verify, and publish refuses the build. (The boot is the standard Gen2 boot
    of a disk whose boot chain lost its signatures, shared with test_verify.py: every built-in check passes there.)"""
    from harness.cli import main

    assert unsigned_gen2.exit_code == 1
    build, report = unsigned_gen2.build, unsigned_gen2.report
    user = {r.check.rsplit("::", 1)[-1]: r for r in report.records if r.check.startswith("user ")}
    assert {name: r.result for name, r in user.items()} == {
        "test_my_package_is_there": "Passed", "test_my_user_is_not_root": "Passed", "test_agent_said_ready": "Passed",
        "test_a_user_check_that_fails": "Failed"}
    assert (build.path / user["test_a_user_check_that_fails"].evidence).is_file()
    builtin = [r for r in report.failed_records() if not r.check.startswith("user ")]
    assert builtin == []  # only the user's failing test fails this boot
    capsys.readouterr()
    assert main(["check", str(build.path)]) == 0
    assert main(["publish", str(build.path), "--to", f"local:{tmp_path / 'gallery'}", "--generation", "V2"]) == 1
    err = capsys.readouterr().err
    assert "verify has not passed on uefi" in err and "check has not passed" not in err, err


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
