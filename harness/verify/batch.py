"""The in-guest batch: many shell commands ("probes") in one program, one SSH round trip, structured output.

The program runs as the admin user: its probes in order, the background ones beside them, and every root probe
in one `sudo -n sh` (one PAM session instead of one per probe). Each probe reports its exit code, output and
in-guest duration on one line.
"""

from __future__ import annotations

import base64
import binascii
import shlex
from dataclasses import dataclass

from harness.vm.ssh import CommandResult


@dataclass(frozen=True)
class Probe:
    """One command of the batch. `root`: in the batch's one `sudo -n` part; `background`: started at once
    and collected at the end (slow evidence that no check reads, e.g. systemd-analyze under TCG)."""

    command: str
    root: bool = False
    background: bool = False

    def shell(self) -> str:
        return f"sudo -n sh -c {shlex.quote(self.command)}" if self.root else self.command


# Each probe's line: KEY|EXIT|SECONDS|BASE64(stdout)|BASE64(stderr); base64 has no '|'. A background probe
# writes its files under $T/<n>.* and its line is printed by `emit` once it is done. Under TCG every process
# costs tens of milliseconds, so the runner starts as few as it can: the probe runs in a subshell (no exec), its
# time comes from /proc/uptime through `read` (centiseconds, no `date`), files are read with `read`, and base64
# runs only for a non-empty output: two processes per probe instead of about fourteen.
_RUNNER = r"""
now() { read up _ </proc/uptime; t=$(( ${up%.*} * 100 + 1${up#*.} - 100 )); }
run() {
  now; start=$t
  ( eval "$2" ) >"$T/$1.o" 2>"$T/$1.e" </dev/null; echo $? >"$T/$1.rc"
  now; echo $(( t - start )) >"$T/$1.t"
}
emit() {
  read rc <"$T/$1.rc"; read cs <"$T/$1.t"
  printf '%s|%s|%d.%02d|' "$2" "$rc" $(( cs / 100 )) $(( cs % 100 ))
  [ ! -s "$T/$1.o" ] || base64 -w0 <"$T/$1.o"
  printf '|'
  [ ! -s "$T/$1.e" ] || base64 -w0 <"$T/$1.e"
  echo
}
probe() { run "$1" "$3"; emit "$1" "$2"; }
T=$(mktemp -d) || exit 99
trap 'rm -rf "$T"' EXIT
"""

@dataclass(frozen=True)
class ProbeResult:
    result: CommandResult
    duration_s: float


ROOT_PART = "HARNESS_ROOT_BATCH"


def batch_script(probes: dict[str, Probe], env: dict[str, str]) -> str:
    """The shell program the batch runs in the guest as the admin user: its probes in order, the background
    ones beside them, and every root probe in one `sudo -n sh` (one PAM session instead of one per probe)."""
    numbered = list(enumerate(probes.items()))
    lines = [f"{name}={shlex.quote(value)}; export {name}" for name, value in env.items()]
    lines.append(_RUNNER)
    background = [(n, key) for n, (key, p) in numbered if p.background]
    started = False
    for n, (key, probe) in numbered:
        if probe.root or probe.background:
            continue
        lines.append(f"probe {n} {shlex.quote(key)} {shlex.quote(probe.command)}")
        if not started:  # after the first probe (the boot has finished), start the slow evidence
            lines += [f"run {m} {shlex.quote(probes[k].command)} &" for m, k in background]
            started = True
    root = [f"probe {n} {shlex.quote(key)} {shlex.quote(p.command)}" for n, (key, p) in numbered if p.root]
    if root:
        lines += [f"sudo -n sh -s <<'{ROOT_PART}'", _RUNNER, *root, ROOT_PART]
    if background:
        lines += ["wait", *(f"emit {m} {shlex.quote(k)}" for m, k in background)]
    return "\n".join(lines) + "\n"


def parse_batch(stdout: str, probes: dict[str, Probe]) -> dict[str, ProbeResult]:
    """The batch's output lines back into one CommandResult per probe; a probe with no line is an error."""
    results: dict[str, ProbeResult] = {}
    for line in stdout.splitlines():
        parts = line.split("|")
        if len(parts) != 5 or parts[0] not in probes:
            continue
        key, code, seconds, out, err = parts
        try:
            stdout_text = base64.b64decode(out).decode(errors="replace")
            stderr_text = base64.b64decode(err).decode(errors="replace")
            results[key] = ProbeResult(CommandResult(probes[key].shell(), int(code), stdout_text, stderr_text),
                                       round(float(seconds or 0), 3))  # a missing .t (killed) is 0
        except (ValueError, binascii.Error):
            continue
    return results
