"""The one boundary where errors become a one-line message and an exit code.

:func:`report` is the only place that prints an error; ``main`` (for the CLI
and every shell line) and the shell's own words (``use``, a bad line) call it.
"""

from __future__ import annotations

import sys

from qstate import (
    BackendUnavailableError,
    ChangesLostError,
    ConfigError,
    ConflictError,
    CorruptDataError,
    InvalidNameError,
    InvalidValueError,
    QStateError,
    UsageError,
    redact_url,
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
    (ChangesLostError, ExitCode.CONFLICT),
]


def exit_code_for(error: BaseException) -> ExitCode:
    """The documented exit code of a library or CLI error."""
    if isinstance(error, CliError):
        return error.code
    for kind, code in _LIBRARY_CODES:
        if isinstance(error, kind):
            return code
    return ExitCode.UNAVAILABLE


def one_line(error: BaseException | str) -> str:
    """An error as one line, with any URL password in it (even one the user typed
    where a name was expected) replaced by ``***``."""
    from .render import escape_controls  # stored names can reach an error message

    text = error if isinstance(error, str) else str(error).strip() or type(error).__name__
    return escape_controls(redact_url(" ".join(text.split())))


def report(
    error: BaseException | str, code: ExitCode | None = None, *, debug: bool = False
) -> int:
    """Print ``qstate: error: ...`` (one line on stderr) and return the exit code.

    ``code`` defaults to the documented code of ``error``; ``debug`` also prints
    the traceback of an exception.
    """
    if debug and isinstance(error, BaseException):
        import traceback

        traceback.print_exception(error)
    print(f"qstate: error: {one_line(error)}", file=sys.stderr)
    if code is not None:
        return code
    return exit_code_for(error) if isinstance(error, BaseException) else ExitCode.USAGE
