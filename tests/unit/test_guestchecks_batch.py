"""The in-guest check batch: one program, every probe reported once with its own exit code and output, the root
probes in one sudo, the slow evidence in the background; run here with sh and a stand-in sudo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import proc
from harness.verify import guestchecks
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


PLOT = """<svg><text x="20" y="30">Debian GNU/Linux 12 (bookworm) vm x86-64 microsoft</text>
<text class="sec" x="100.000" y="-5.000" >1.0s</text>
<text class="left" x="1914.773" y="134.000">dev-vda3.device (12.100s)</text>
<text class="left" x="2392.157" y="1034.000">cloud-init-local.service (25.466s)</text>
<text class="right" x="9882.312" y="2474.000">e2scrub_reap.service (870ms)</text>
<text class="left" x="6198.104" y="2234.000">cloud-init.service (1min 2.500s)</text>
<text class="left" x="10.0" y="300.000">swap.target</text>
</svg>"""


def test_blame_is_read_from_the_plot_labels() -> None:
    """The same figures and order `systemd-analyze blame` prints (checked against a guest's own blame once)."""
    assert guestchecks.blame_from_plot(PLOT) == ("    62.500s cloud-init.service\n"
                                                 "    25.466s cloud-init-local.service\n"
                                                 "    12.100s dev-vda3.device\n"
                                                 "     0.870s e2scrub_reap.service\n")
    assert guestchecks.blame_from_plot(PLOT, limit=1).count("\n") == 1
    assert guestchecks.blame_from_plot("<svg/>") == ""


def test_blame_goes_between_the_boot_time_and_the_critical_chains(tmp_path: Path) -> None:
    (tmp_path / "systemd-analyze-plot.svg").write_text(PLOT, encoding="utf-8")
    time_lines = "Startup finished in 12.4s (kernel) + 2min 3.0s (userspace) = 2min 15.4s \n"
    chain = (f"{guestchecks.CRITICAL_CHAIN_HEADER} or started is printed after the \"@\" character.\n\n"
             "cloud-init-local.service +25.466s\n")
    (tmp_path / "systemd-analyze.txt").write_text(time_lines + chain, encoding="utf-8")
    guestchecks._add_blame(tmp_path)
    text = (tmp_path / "systemd-analyze.txt").read_text(encoding="utf-8")
    assert text.startswith(time_lines)
    assert text.index("62.500s cloud-init.service") < text.index(guestchecks.CRITICAL_CHAIN_HEADER)
    assert text.endswith(chain)
    # No plot (the probe failed): the file stays as the guest wrote it.
    (tmp_path / "systemd-analyze-plot.svg").unlink()
    (tmp_path / "systemd-analyze.txt").write_text(time_lines, encoding="utf-8")
    guestchecks._add_blame(tmp_path)
    assert (tmp_path / "systemd-analyze.txt").read_text(encoding="utf-8") == time_lines


RESULT_OK = '{"v1": {"datasource": "DataSourceAzure [seed=/dev/sr0]", "errors": []}}'


def _status(**stages: dict[str, object]) -> str:
    import json

    base = {"init-local": {"errors": [], "start": 1.0, "finished": 2.0},
            "modules-init": {"errors": [], "start": None, "finished": None}}
    return json.dumps({"v1": {"datasource": "DataSourceAzure", "stage": None, **base, **stages}})


@pytest.mark.parametrize(("result", "status", "outcome"), [
    (RESULT_OK, _status(), "status: done"),
    (RESULT_OK, "", "status: done"),
    ('{"v1": {"errors": ["modules-final failed"]}}', _status(), "status: error: modules-final failed"),
    (RESULT_OK, _status(init={"errors": ["Datasource failed"], "start": 3.0, "finished": 4.0}),
     "status: error: init: Datasource failed"),
    (RESULT_OK, _status(init={"errors": [], "start": 3.0, "finished": 4.0,
                              "recoverable_errors": {"WARNING": ["Failed to set password"]}}),
     "status: error: init: WARNING: Failed to set password"),
    (RESULT_OK, _status(**{"modules-final": {"errors": [], "start": 5.0, "finished": None}}),
     "status: running (modules-final)"),
    ("cat: /run/cloud-init/result.json: No such file", "", "unreadable result.json or status.json"),
])
def test_cloud_init_outcome_follows_cloud_init_status(result: str, status: str, outcome: str) -> None:
    """C1 reads cloud-init's own files the way `cloud-init status` does: every failure mode fails it."""
    assert guestchecks.cloud_init_outcome(result, status).startswith(outcome)
