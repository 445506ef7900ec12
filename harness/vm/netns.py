"""A private network namespace per VM, held by a sleeping process; commands enter it with nsenter.

No guest can reach a real IMDS or WireServer: the namespace has no route out (DESIGN: Isolation).
As root the namespace is a plain network namespace; otherwise it is owned by a new user
namespace where we are root (needs unprivileged user namespaces).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from harness import proc
from harness.errors import PlatformError
from harness.proc import Process, Result

log = logging.getLogger(__name__)


def _unprivileged_userns_allowed() -> bool:
    knob = Path("/proc/sys/kernel/unprivileged_userns_clone")
    if knob.exists() and knob.read_text().strip() == "0":
        return False
    limit = Path("/proc/sys/user/max_user_namespaces")
    return not (limit.exists() and limit.read_text().strip() == "0")


class NetNamespace:
    """Owns the holder process; stopping it (and everything spawned inside) ends the namespace."""

    def __init__(self) -> None:
        self.rootless = os.geteuid() != 0
        self.holder: Process | None = None

    def __enter__(self) -> NetNamespace:
        if self.rootless and not _unprivileged_userns_allowed():
            raise PlatformError("cannot create a private network namespace without root",
                                "run as root, or enable unprivileged user namespaces "
                                "(sysctl kernel.unprivileged_userns_clone=1)")
        argv = ["unshare", "--net", "--", "sleep", "infinity"]
        if self.rootless:
            argv = ["unshare", "--user", "--map-root-user", "--net", "--", "sleep", "infinity"]
        self.holder = proc.spawn(argv, name="netns")
        own = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if os.readlink(f"/proc/{self.holder.pid}/ns/net") != own:
                    break
            except FileNotFoundError:
                pass
            if self.holder.poll() is not None:
                raise PlatformError("unshare could not create a network namespace",
                                    "run as root or enable unprivileged user namespaces")
            time.sleep(0.02)
        else:
            raise PlatformError("the network namespace did not appear in 5 s", "check 'unshare --net true'")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.holder is not None:
            self.holder.stop(grace_s=1)

    @property
    def pid(self) -> int:
        assert self.holder is not None
        return self.holder.pid

    def prefix(self) -> list[str]:
        """argv prefix that runs a command inside the namespace."""
        if self.rootless:
            return ["nsenter", f"--target={self.pid}", "--user", "--net", "--preserve-credentials", "--"]
        return ["nsenter", f"--target={self.pid}", "--net", "--"]

    def run(self, argv: Sequence[str], *, timeout_s: float | None = None) -> Result:
        return proc.run([*self.prefix(), *argv], timeout_s=timeout_s)

    def spawn(self, argv: Sequence[str], *, name: str, stdout_path: Path | None = None) -> Process:
        return proc.spawn([*self.prefix(), *argv], name=name, stdout_path=stdout_path)

    def shell_hint(self) -> str:
        """How a person enters the namespace (for `harness boot`)."""
        return " ".join(self.prefix()[:-1])
