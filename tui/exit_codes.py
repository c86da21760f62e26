"""Exit codes of the incidex command."""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from store import StoreError


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


def store_error_code(error: StoreError) -> ExitCode:
    """The exit code of a store error that ends a whole command (the same for the command
    line, the save client's in-process rest and the save server)."""
    from store import AccessDenied, SettingsInvalid, StoreUnavailable

    for kind, code in ((SettingsInvalid, ExitCode.USAGE),
                       (StoreUnavailable, ExitCode.STORE_UNAVAILABLE),
                       (AccessDenied, ExitCode.ACCESS_DENIED)):
        if isinstance(error, kind):
            return code
    return ExitCode.RECORDS_FAILED
