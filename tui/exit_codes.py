"""Exit codes of the incidex command."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What the incidex process tells its caller."""

    OK = 0
    RECORDS_FAILED = 1
    USAGE = 2
    STORE_UNAVAILABLE = 3
    ACCESS_DENIED = 4
    AUDIT_BROKEN = 5
    INTERNAL_ERROR = 70
    INTERRUPTED = 130
