"""``shell``: the interactive shell (see ``qstate_cli.shell``)."""

from __future__ import annotations

import typer

from ..options import OptionalStateArg, ScopeOpt
from ._common import session_of


def shell(
    ctx: typer.Context,
    state: OptionalStateArg = None,
    scope: ScopeOpt = None,
) -> None:
    """Open the interactive shell: the same commands, with completion and history.

    From a pipe (qstate shell < script) it runs the lines and exits with the
    first failing line's code.
    """
    from ..shell.grammar import Current
    from ..shell.loop import run_shell

    session = session_of(ctx)
    session.lives_on = True
    if state is not None:
        session.state(state, scope)  # a bad name or scope: exit 2 before the shell starts
    raise typer.Exit(run_shell(session, Current(state, scope)))
