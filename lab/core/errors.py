"""Expected failures and exit codes: the CLI turns a LabError into one line and its code."""

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, stable for scripts and CI."""

    OK = 0
    FAILED = 1  # the command ran and something failed (a host, a step, a check)
    ERROR = 2  # the command could not run: bad input, missing prerequisite, no lab
    INTERRUPTED = 130


class LabError(Exception):
    """A failure the user can fix; its message is the one line they see."""

    exit_code = ExitCode.ERROR

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


class HostFailure(LabError):
    """Something failed on one or more hosts; the others went on."""

    exit_code = ExitCode.FAILED
