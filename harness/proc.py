"""The only subprocess entry point: argv lists, logged as pasteable lines, typed failures."""

from __future__ import annotations

import collections
import logging
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from harness.errors import CommandError, CommandTimeoutError, ToolMissingError

log = logging.getLogger(__name__)

TAIL_LINES = 40

# Host tool -> Debian package that provides it; one lookup, one error message.
TOOL_PACKAGES: dict[str, str] = {
    "mmdebstrap": "mmdebstrap",
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "sfdisk": "fdisk",
    "mkfs.ext4": "e2fsprogs",
    "mke2fs": "e2fsprogs",
    "debugfs": "e2fsprogs",
    "e2fsck": "e2fsprogs",
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "mmd": "mtools",
    "mdir": "mtools",
    "mtype": "mtools",
    "dnsmasq": "dnsmasq-base",
    "ip": "iproute2",
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "lsinitramfs": "initramfs-tools-core",
    "lsinitrd": "dracut-core",
    "dpkg-query": "dpkg",
    "chroot": "coreutils",
    "systemctl": "systemd",
    "newuidmap": "uidmap",
    "shellcheck": "shellcheck",
    "rpmbuild": "rpm",
    "rpm": "rpm",
    "createrepo_c": "createrepo-c",
    "dnf": "dnf",
    "zypper": "zypper",
    "npm": "npm",
    "swtpm": "swtpm",
    "sbattach": "sbsigntool",
    "node": "nodejs",
    "gpgv": "gpgv",
    "tar": "tar",
    "zstd": "zstd",
}


def shell_line(argv: Sequence[str]) -> str:
    """Render argv as a line a person can paste into a shell."""
    return " ".join(shlex.quote(str(a)) for a in argv)


def which(tool: str) -> str:
    """Absolute path of a host tool, or ToolMissingError naming its Debian package."""
    found = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if not found:
        raise ToolMissingError(tool, TOOL_PACKAGES.get(tool, tool))
    return found


def require(*tools: str) -> None:
    """Fail early, before any slow step, when a host tool is missing."""
    for tool in tools:
        which(tool)


@dataclass(frozen=True)
class Result:
    """What a finished command produced."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float


def _resolve(argv: Sequence[str | os.PathLike[str]]) -> list[str]:
    args = [os.fspath(a) for a in argv]
    if not args:
        raise ValueError("empty argv")
    if "/" not in args[0]:
        args[0] = which(args[0])
    return args


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input_bytes: bytes | None = None,
    timeout_s: float | None = None,
    check: bool = True,
    hint: str = "",
) -> Result:
    """Run a command to completion, capturing output; raise CommandError on failure if check."""
    args = _resolve(argv)
    log.debug("$ %s", shell_line(args))
    start = time.monotonic()
    try:
        proc = subprocess.run(
            args,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            input=input_bytes,
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandTimeoutError(
            f"command timed out after {timeout_s:.0f} s: {shell_line(args)}",
            hint or "the step hung; rerun with --debug to see its output",
        ) from exc
    duration = time.monotonic() - start
    out = proc.stdout.decode(errors="replace")
    err = proc.stderr.decode(errors="replace")
    if check and proc.returncode != 0:
        tail = "\n".join((err or out).splitlines()[-TAIL_LINES:])
        raise CommandError(args, proc.returncode, tail, hint)
    return Result(args, proc.returncode, out, err, duration)


def stream(
    argv: Sequence[str | os.PathLike[str]],
    *,
    on_line: Callable[[str], None] | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    log_path: Path | None = None,
    hint: str = "",
) -> Result:
    """Run a long command, passing each output line (stdout+stderr merged) to on_line."""
    args = _resolve(argv)
    log.debug("$ %s", shell_line(args))
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    start = time.monotonic()
    logfile = log_path.open("a", encoding="utf-8") if log_path else None
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    timer = _kill_after(proc, timeout_s) if timeout_s else None
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            tail.append(line)
            if logfile:
                logfile.write(line + "\n")
            if on_line:
                on_line(line)
        proc.wait()
    finally:
        if timer:
            timer.cancel()
        if proc.poll() is None:
            _killpg(proc)
        if logfile:
            logfile.close()
    duration = time.monotonic() - start
    if timeout_s and duration >= timeout_s and proc.returncode != 0:
        raise CommandTimeoutError(f"command timed out after {timeout_s:.0f} s: {shell_line(args)}", hint)
    if proc.returncode != 0:
        raise CommandError(args, proc.returncode, "\n".join(tail), hint)
    return Result(args, proc.returncode, "\n".join(tail), "", duration)


def _killpg(proc: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _kill_after(proc: subprocess.Popen[bytes], timeout_s: float) -> threading.Timer:
    def kill() -> None:
        if proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout_s, kill)
    timer.daemon = True
    timer.start()
    return timer


class Process:
    """A long-running child (QEMU, dnsmasq, Azurite, the platform daemon) that is always reaped."""

    def __init__(self, popen: subprocess.Popen[bytes], argv: list[str], name: str) -> None:
        self.popen = popen
        self.argv = argv
        self.name = name

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def stdin(self) -> IO[bytes] | None:
        return self.popen.stdin

    @property
    def stdout(self) -> IO[bytes] | None:
        return self.popen.stdout

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout_s: float | None = None) -> int:
        return self.popen.wait(timeout=timeout_s)

    def stop(self, grace_s: float = 5.0) -> int:
        """SIGTERM the process group, then SIGKILL after grace_s; always reaps."""
        if self.popen.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                _killpg(self.popen)
        return self.popen.wait()


def spawn(
    argv: Sequence[str | os.PathLike[str]],
    *,
    name: str = "",
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdout_path: Path | None = None,
    pipe_stdin: bool = False,
    pipe_stdout: bool = False,
    pass_fds: Sequence[int] = (),
) -> Process:
    """Start a background process in its own process group; the caller owns stopping it."""
    args = _resolve(argv)
    log.debug("$ %s &", shell_line(args))
    out: IO[bytes] | int
    if pipe_stdout:
        out = subprocess.PIPE
    elif stdout_path is not None:
        out = stdout_path.open("ab")
    else:
        out = subprocess.DEVNULL
    popen = subprocess.Popen(
        args,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.PIPE if pipe_stdin else subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        pass_fds=tuple(pass_fds),
    )
    if stdout_path is not None and not pipe_stdout and not isinstance(out, int):
        out.close()
    return Process(popen, args, name or Path(args[0]).name)


@contextmanager
def spawned(
    argv: Sequence[str | os.PathLike[str]], *, name: str = "", stdout_path: Path | None = None,
    env: Mapping[str, str] | None = None, cwd: Path | None = None,
) -> Iterator[Process]:
    """spawn() as a context manager that always stops and reaps the process."""
    proc = spawn(argv, name=name, stdout_path=stdout_path, env=env, cwd=cwd)
    try:
        yield proc
    finally:
        proc.stop()
