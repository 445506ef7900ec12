"""Typed errors with one root: every message says what happened and how to fix it."""

from __future__ import annotations

from collections.abc import Sequence

# Exit codes (README "Exit codes"): what CI needs to tell apart.
EXIT_OK = 0
EXIT_IMAGE_FAILED = 1  # the image failed a check, a verification or a publish gate
EXIT_USAGE = 2  # the command line, a recipe or another input is wrong
EXIT_ENVIRONMENT = 3  # the tool or its environment failed: a mirror, QEMU, a missing host tool, Azure
EXIT_BUG = 70  # an unexpected exception: a bug in the harness (EX_SOFTWARE)
EXIT_INTERRUPTED = 130


class HarnessError(Exception):
    """Root of every error the harness raises on purpose; cli.py turns it into one line and `exit_code`."""

    exit_code = EXIT_ENVIRONMENT

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ToolMissingError(HarnessError):
    """A host tool the step needs is not installed."""

    def __init__(self, tool: str, package: str) -> None:
        super().__init__(
            f"host tool '{tool}' is missing",
            f"install the Debian package '{package}' (apt-get install {package}) or run 'make setup'",
        )
        self.tool = tool
        self.package = package


class CommandError(HarnessError):
    """A subprocess failed; carries argv, exit code and the tail of its output."""

    def __init__(self, argv: Sequence[str], returncode: int, output_tail: str, hint: str = "") -> None:
        from harness.proc import shell_line

        tail = output_tail.strip()
        last = tail.splitlines()[-1] if tail else "no output"
        super().__init__(f"command failed with exit code {returncode}: {shell_line(argv)}: {last}", hint)
        self.argv = list(argv)
        self.returncode = returncode
        self.output_tail = tail


class CommandTimeoutError(HarnessError):
    """A subprocess did not finish in time."""


class RecipeError(HarnessError):
    """A recipe failed validation; lists every problem with its key path."""

    exit_code = EXIT_USAGE

    def __init__(self, path: str, problems: Sequence[str]) -> None:
        lines = "; ".join(problems)
        super().__init__(f"recipe {path} is invalid: {lines}", "fix the keys named above")
        self.path = path
        self.problems = list(problems)


class BuildError(HarnessError):
    """A build step failed."""


class NotFoundError(HarnessError):
    """A build folder, recipe, gallery item or file does not exist (or is not what it should be)."""

    exit_code = EXIT_USAGE


class UsageError(HarnessError):
    """An option or argument is not valid."""

    exit_code = EXIT_USAGE


class VerifyError(HarnessError):
    """Verification could not run (not: a check failed; that is a result)."""


class PlatformError(HarnessError):
    """The fake Azure platform could not start or broke."""


class VhdError(HarnessError):
    """A VHD is malformed or cannot be converted."""

    exit_code = EXIT_IMAGE_FAILED


class PublishError(HarnessError):
    """Publishing was refused (an unverified build, a name or version that exists) or failed."""

    exit_code = EXIT_USAGE


class GateRefused(PublishError):
    """Publish refused a build whose check or verify did not pass for its content."""

    exit_code = EXIT_IMAGE_FAILED


class IntegrityError(HarnessError):
    """A build's disk is not the one its manifest describes (changed, truncated, two disks)."""

    exit_code = EXIT_IMAGE_FAILED


class GateError(HarnessError):
    """A pipeline gate (check, verify) failed, so later stages did not run."""

    exit_code = EXIT_IMAGE_FAILED
