"""Option and argument types shared by the commands."""

from __future__ import annotations

from typing import Annotated

import typer

from .completion import complete_key, complete_scope, complete_state

StateArg = Annotated[
    str,
    typer.Argument(
        metavar="STATE",
        help="The state's name.",
        autocompletion=complete_state,
        show_default=False,
    ),
]
OptionalStateArg = Annotated[
    str | None,
    typer.Argument(
        metavar="[STATE]",
        help="The state to start on (commands then act on it).",
        autocompletion=complete_state,
        show_default=False,
    ),
]
ScopeOpt = Annotated[
    str | None,
    typer.Option(
        "--scope",
        "-s",
        help="The state's scope (one document per user, chat, job...).",
        autocompletion=complete_scope,
    ),
]
KeyArg = Annotated[
    str, typer.Argument(metavar="KEY", help="A key of the state.", autocompletion=complete_key)
]
OptionalKeyArg = Annotated[
    str | None,
    typer.Argument(
        metavar="[KEY]",
        help="The key to print; without it, the whole state.",
        autocompletion=complete_key,
        show_default=False,
    ),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
