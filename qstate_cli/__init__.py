"""qstate command line (Typer) and interactive shell.

``qstate`` (the library) never imports this package; a program that wants the
shell on its own registry calls :func:`open_shell`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qstate import StateRegistry

__all__ = ["open_shell"]


def open_shell(registry: StateRegistry, state: str | None = None, scope: str | None = None) -> int:
    """Open the interactive ``qstate`` shell on a registry of this running program.

    This is how the states of a running program, ``memory://`` ones included,
    can be inspected and changed by hand. The registry stays open afterwards (it
    belongs to the program). Returns the shell's exit status. Only the sync
    ``StateRegistry`` can host the shell.
    """
    from .shell import embedded_shell

    return embedded_shell(registry, state, scope)
