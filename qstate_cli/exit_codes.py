"""The exit codes of ``qstate``: stable, documented in the README, tested.

Scripts can tell "not found" from "broken": 1 is a clean negative answer (like
``grep``), everything from 2 up is a failure of a different kind.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    NOT_FOUND = 1
    """The state or key asked for does not exist (``get``)."""
    USAGE = 2
    """Bad usage or invalid input: unknown option, bad JSON, bad name, bad URL."""
    UNAVAILABLE = 3
    """The backend cannot be used: refused, timeout, auth, unwritable or corrupt file."""
    CONFLICT = 4
    """A conflict or an unmet condition: ``edit`` conflict, ``wait`` timeout, lock held."""
    REFUSED = 5
    """A destructive command was not confirmed (no terminal and no ``--yes``, or "no")."""
    INTERNAL = 70
    """A bug in qstate (EX_SOFTWARE); the message says how to get a traceback."""
