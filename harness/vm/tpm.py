"""A TPM 2.0 for one VM: swtpm with its state in the boot's scratch folder, started before QEMU and stopped after.

`--terminate` makes swtpm exit when QEMU closes the control channel; the firmware starts the TPM itself (no
`--flags startup-clear`), so it measures the boot as a physical TPM would.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType

from harness import proc
from harness.errors import VerifyError

START_TIMEOUT_S = 10.0


class SoftwareTpm:
    """swtpm socket --tpm2, as a context manager that always stops and reaps it."""

    def __init__(self, folder: Path, log_path: Path, socket: Path | None = None) -> None:
        self.folder = folder
        self.log_path = log_path
        self.socket = socket or folder / "swtpm-sock"
        self.process: proc.Process | None = None

    def argv(self) -> list[str]:
        return ["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={self.folder}",
                "--ctrl", f"type=unixio,path={self.socket}", "--terminate",
                "--log", f"file={self.log_path},level=1"]

    def __enter__(self) -> SoftwareTpm:
        proc.require("swtpm")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = proc.spawn(self.argv(), name="swtpm", stdout_path=self.log_path.with_suffix(".out"))
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                said = self.log_path.read_text(errors="replace").strip() if self.log_path.exists() else ""
                raise VerifyError(f"swtpm did not start: {said.splitlines()[-1] if said else 'no output'}",
                                  "check the swtpm package (apt-get install swtpm)")
            time.sleep(0.02)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace_s=2)
            self.process = None
