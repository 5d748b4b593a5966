"""``list`` and ``get``."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import BadInput, NotFound
from ..options import OptionalKeyArg, ScopeOpt, StateArg
from ..render import (
    Mode,
    left_out,
    list_json_chunks,
    list_plain_chunks,
    list_table,
    safe_text,
)
from ._common import TABLE_FRAME, describe, print_state, session_of

MORE_STATES = "--prefix P, --json, or --output plain | less"

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
            f"qstate did not write: {safe_text(', '.join(infos.unreadable))}"
        )
    mode = out.mode()
    if mode is Mode.table:
        rows = out.rows_that_fit(TABLE_FRAME - 1)  # no title
        out.renderable(list_table(infos, rows=rows))
        out.note(left_out(len(infos), rows, "state", MORE_STATES))
    elif mode is Mode.json:
        out.stream(list_json_chunks(infos))
    else:
        out.stream(list_plain_chunks(infos))


def get(
    ctx: typer.Context,
    state: StateArg,
    key: OptionalKeyArg = None,
    scope: ScopeOpt = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", "-n", help="Print at most this many keys (in stored order).", min=0
        ),
    ] = None,
    prefix: Annotated[
        str | None, typer.Option("--prefix", "-p", help="Print only keys starting with this.")
    ] = None,
) -> None:
    """Print one value, or the whole state. Exit 1 if it does not exist.

    On a terminal a big state's table shows the rows that fit and how many keys
    it left out; --limit, --prefix, --json or --output plain show the rest.
    """
    session = session_of(ctx)
    target = session.state(state, scope)
    out = session.output
    if key is not None and (limit is not None or prefix is not None):
        raise BadInput("--limit and --prefix choose keys of a whole state: give no KEY with them")
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
    if prefix:
        data = {name: value for name, value in data.items() if name.startswith(prefix)}
        if not data:
            raise NotFound(
                f"no key of state {describe(state, scope)} starts with {prefix!r} "
                f"in {session.where()}"
            )
    print_state(out, state, scope, data, limit=limit)
