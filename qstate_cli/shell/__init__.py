"""``qstate shell``: the interactive shell, one prompt-toolkit concern per module.

``grammar`` (lines → CLI arguments), ``completer`` and ``catalog`` (what to
suggest), ``history``, ``syntax`` (toolbar), ``prompt`` (the PromptSession)
and ``loop`` (reading and running lines). Commands run through the CLI app
itself, so the shell and ``qstate`` share one grammar and one implementation.
"""

from __future__ import annotations


def embedded_shell(registry: object, state: str | None = None, scope: str | None = None) -> int:
    """Open the shell on a registry of a running program (memory states too).

    The registry stays open afterwards; it belongs to the program.
    """
    from qstate import StateRegistry as SyncRegistry
    from qstate import UsageError

    from ..output import Output
    from ..session import Session
    from .grammar import Current
    from .loop import run_shell

    if not isinstance(registry, SyncRegistry):
        raise UsageError("the shell needs a StateRegistry (the sync flavour)")
    return run_shell(Session.around(registry, Output()), Current(state, scope))
