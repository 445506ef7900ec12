"""SSH into the guest with paramiko over the namespace bridge; every command's exit code is checked."""

from __future__ import annotations

import logging
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness.errors import VerifyError

log = logging.getLogger(__name__)
# paramiko's transport thread logs every reset connection while the guest's sshd starts as an ERROR with a
# traceback; the harness retries and reports a real failure itself. Set here, not only by the CLI's log
# setup, so library users (the pytest plugin, benchmarks) get the same quiet console.
logging.getLogger("paramiko").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class KeyPair:
    private_path: Path
    public_line: str


def generate_keypair(folder: Path, comment: str = "harness-verify") -> KeyPair:
    """A fresh ed25519 key per run (waagent accepts only 'ssh-' keys), private file mode 0600."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    path = folder / "id_ed25519"
    path.touch(mode=0o600)
    path.write_bytes(private)
    return KeyPair(path, f"{public.decode()} {comment}")


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_code: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        out = (self.stdout.strip() or self.stderr.strip())[-600:]
        return f"`{self.command}` exited {self.exit_code}: {out or 'no output'}"


class Guest:
    """A paramiko session to the guest through a unix-socket bridge into its namespace."""

    def __init__(self, socket_path: Path, user: str, key: KeyPair) -> None:
        self.socket_path = socket_path
        self.user = user
        self.key = key
        self.client: paramiko.SSHClient | None = None
        self.host_key: paramiko.PKey | None = None

    def _sock(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(15)
        sock.connect(str(self.socket_path))
        return sock

    def connect(self, timeout_s: float) -> float:
        """Retry until key authentication succeeds; returns the seconds it took."""
        start = time.monotonic()
        last = "no attempt"
        pkey = paramiko.Ed25519Key.from_private_key_file(str(self.key.private_path))
        while time.monotonic() - start < timeout_s:
            client = paramiko.SSHClient()
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # noqa: S507 - fresh VM, key checked below
            try:
                client.connect("guest", username=self.user, pkey=pkey, sock=self._sock(),
                               allow_agent=False, look_for_keys=False, timeout=15, banner_timeout=15,
                               auth_timeout=15)
                transport = client.get_transport()
                assert transport is not None
                self.host_key = transport.get_remote_server_key()
                self.client = client
                return time.monotonic() - start
            except (OSError, paramiko.SSHException, EOFError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                client.close()
                time.sleep(1)
        raise VerifyError(f"SSH to {self.user}@guest failed for {timeout_s:.0f} s ({last})",
                          "sshd did not start or the injected key was not installed; see the serial log")

    def run(self, command: str, timeout_s: float = 120) -> CommandResult:
        """Run a command; never raises on a non-zero exit (checks decide), only on transport loss."""
        code, out, err = self._exec(command, None, timeout_s, f"SSH command `{command}`")
        log.debug("guest$ %s -> %d", command, code)
        return CommandResult(command, code, out, err)

    def run_script(self, script: str, timeout_s: float = 600) -> CommandResult:
        """Run a shell program fed on stdin (one round trip for many commands); never raises on its exit code."""
        code, out, err = self._exec("sh -s", script.encode(), timeout_s,
                                    f"SSH batch of {script.count(chr(10))} lines")
        log.debug("guest$ sh -s (%d bytes) -> %d", len(script), code)
        return CommandResult("sh -s <batch>", code, out, err)

    def _exec(self, command: str, stdin_data: bytes | None, timeout_s: float, what: str) -> tuple[int, str, str]:
        """(exit code, stdout, stderr) of one remote command; VerifyError when the connection is lost."""
        if self.client is None:
            raise VerifyError("not connected to the guest", "call connect() first")
        try:
            stdin, stdout, stderr = self.client.exec_command(command, timeout=timeout_s)
            if stdin_data is not None:
                stdin.write(stdin_data)
                stdin.channel.shutdown_write()
            # stderr is read beside stdout: both share the channel's window, so a command writing much to the
            # one not being read would stall the other.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ssh-stderr") as pool:
                err_future = pool.submit(stderr.read)
                out = stdout.read().decode(errors="replace")
                err = err_future.result().decode(errors="replace")
            return stdout.channel.recv_exit_status(), out, err
        except (OSError, paramiko.SSHException) as exc:
            raise VerifyError(f"{what} lost its connection: {exc}", "the guest may have crashed") from exc

    def try_password(self, password: str) -> bool:
        """Whether a password login is accepted (it must not be)."""
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # noqa: S507
        try:
            client.connect("guest", username=self.user, password=password, sock=self._sock(),
                           allow_agent=False, look_for_keys=False, timeout=15, banner_timeout=15, auth_timeout=15)
            return True
        except paramiko.AuthenticationException:
            return False
        finally:
            client.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
