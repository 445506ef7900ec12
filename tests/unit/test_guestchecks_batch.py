"""The in-guest check batch: one program, every probe reported once with its own exit code and output, the root
probes in one sudo, the slow evidence in the background; run here with sh and a stand-in sudo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import proc
from harness.verify.batch import Probe, batch_script, parse_batch
from harness.verify.guestchecks import GUEST_LOGS, PROBES


@pytest.fixture
def fake_sudo(tmp_path: Path) -> dict[str, str]:
    """A `sudo -n` that runs its command and counts how often it was called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sudo").write_text(f'#!/bin/sh\necho x >> {tmp_path}/sudo-calls\nshift\nexec "$@"\n')
    (bin_dir / "sudo").chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def run_batch(probes: dict[str, Probe], env: dict[str, str]) -> str:
    script = batch_script(probes, {"HARNESS_ADMIN": "admin", "HARNESS_HOSTNAME": "vm0"})
    return proc.run(["sh", "-c", 'printf %s "$1" | sh -s', "sh", script], env=env).stdout


def test_every_probe_reports_its_own_exit_code_output_and_time(tmp_path: Path, fake_sudo: dict[str, str]) -> None:
    probes = {
        "first": Probe("echo ready"),
        "fails": Probe("echo out; echo 'err|with bar' >&2; exit 3"),
        "quotes": Probe("printf '%s' \"it's a \\$HOME | test\""),
        "env": Probe('echo "$HARNESS_ADMIN@$HARNESS_HOSTNAME"'),
        "slow": Probe("sleep 0.5; echo late", background=True),
        "root1": Probe("echo one", root=True),
        "root2": Probe("exit 7", root=True),
    }
    found = parse_batch(run_batch(probes, fake_sudo), probes)
    assert set(found) == set(probes)
    assert (found["fails"].result.exit_code, found["fails"].result.stdout, found["fails"].result.stderr) == (
        3, "out\n", "err|with bar\n")
    assert found["quotes"].result.stdout == "it's a $HOME | test"
    assert found["env"].result.stdout == "admin@vm0\n"
    assert found["slow"].result.stdout == "late\n" and found["slow"].duration_s >= 0.5
    assert (found["root1"].result.stdout, found["root2"].result.exit_code) == ("one\n", 7)
    assert (tmp_path / "sudo-calls").read_text().count("x") == 1  # every root probe in one sudo


def test_the_real_probe_set_is_one_script_with_one_sudo() -> None:
    probes = {**PROBES, **{f"log:{name}": probe for name, probe in GUEST_LOGS.items()}}
    script = batch_script(probes, {})
    assert script.count("sudo -n sh -s") == 1
    background = script.index("systemd-analyze time")
    assert script.index("system_running") < background < script.index("cloud_init_wait")
    for key in probes:
        assert f" {key} " in script or f" {key}\n" in script, key


def test_a_probe_the_batch_never_reported_is_a_failed_result() -> None:
    from harness.verify.guestchecks import GuestContext

    ctx = GuestContext.__new__(GuestContext)
    ctx.out, ctx.probes = {}, {}
    result = ctx.probe("sshd_password")
    assert result.exit_code == -1 and "sudo -n" in result.stderr
