"""The one boundary where errors become a one-line message and an exit code."""

from __future__ import annotations

from qstate import (
    BackendUnavailableError,
    ConfigError,
    ConflictError,
    CorruptDataError,
    InvalidNameError,
    InvalidValueError,
    QStateError,
    UsageError,
)

from .exit_codes import ExitCode


class CliError(Exception):
    """An error the CLI reports itself: a message and an exit code."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


class NotFound(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.NOT_FOUND)


class BadInput(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.USAGE)


class Refused(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.REFUSED)


class Unmet(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.CONFLICT)


_LIBRARY_CODES: list[tuple[type[QStateError], ExitCode]] = [
    (ConfigError, ExitCode.USAGE),
    (InvalidNameError, ExitCode.USAGE),
    (InvalidValueError, ExitCode.USAGE),
    (UsageError, ExitCode.USAGE),
    (BackendUnavailableError, ExitCode.UNAVAILABLE),
    (CorruptDataError, ExitCode.UNAVAILABLE),
    (ConflictError, ExitCode.CONFLICT),
]


def exit_code_for(error: BaseException) -> ExitCode:
    """The documented exit code of a library or CLI error."""
    if isinstance(error, CliError):
        return error.code
    for kind, code in _LIBRARY_CODES:
        if isinstance(error, kind):
            return code
    return ExitCode.UNAVAILABLE
