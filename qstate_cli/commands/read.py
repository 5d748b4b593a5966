"""``list`` and ``get``."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import NotFound
from ..options import OptionalKeyArg, ScopeOpt, StateArg
from ..render import Mode, json_text, list_json, list_plain, list_table
from ._common import describe, print_state, session_of

_ABSENT = object()


def list_states(
    ctx: typer.Context,
    prefix: Annotated[
        str, typer.Option("--prefix", "-p", help="Only states whose name starts with this.")
    ] = "",
) -> None:
    """List states: name, scope, number of keys, time to live."""
    session = session_of(ctx)
    infos = session.registry().list_states(prefix)
    out = session.output
    if infos.unreadable:
        out.message(
            f"qstate: warning: skipped {len(infos.unreadable)} key(s) under the prefix that "
            f"qstate did not write: {', '.join(infos.unreadable)}"
        )
    mode = out.mode()
    if mode is Mode.table:
        out.renderable(list_table(infos))
    elif mode is Mode.json:
        out.data(json_text(list_json(infos)))
    elif infos:
        out.data(list_plain(infos))


def get(
    ctx: typer.Context,
    state: StateArg,
    key: OptionalKeyArg = None,
    scope: ScopeOpt = None,
) -> None:
    """Print one value, or the whole state. Exit 1 if it does not exist."""
    session = session_of(ctx)
    target = session.state(state, scope)
    out = session.output
    if key is not None:
        value = target.get(key, _ABSENT)
        if value is _ABSENT:
            raise NotFound(
                f"key {key!r} not found in state {describe(state, scope)} in {session.where()}"
            )
        out.value(value)
        return
    data = target.get_all()
    if not data:
        raise NotFound(
            f"state {describe(state, scope)} not found (it holds no keys) in {session.where()}"
        )
    print_state(out, state, scope, data)
