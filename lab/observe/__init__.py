"""Observe: the live lab as checks, faults, quiz and diagram see it (probes, visitor requests)."""

import contextvars

# the check whose observation runs in this context (set by the runner, carried by fan_out)
CURRENT_CHECK: contextvars.ContextVar[str | None] = contextvars.ContextVar("check", default=None)


class CheckError(Exception):
    """An observation could not be made (the message says what was tried)."""
