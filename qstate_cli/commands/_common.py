"""Helpers the command modules share."""

from __future__ import annotations

from itertools import islice
from typing import Any

import typer

from ..errors import Refused
from ..output import Output
from ..render import (
    Mode,
    left_out,
    state_json_chunks,
    state_plain_chunks,
    state_table,
    state_title,
)
from ..session import Session


def session_of(ctx: typer.Context) -> Session:
    session = ctx.find_root().obj
    assert isinstance(session, Session), "the app callback sets ctx.obj"
    return session


def describe(name: str, scope: str | None) -> str:
    return state_title(name, scope or "")


def confirm(session: Session, question: str, *, yes: bool, action: str) -> None:
    """Go on only if ``--yes`` was given or the person at the terminal says yes.

    Without a terminal nobody can answer, so a destructive command is refused
    (exit 5) rather than run unconfirmed from a pipe or a cron job.
    """
    if yes:
        return
    if not session.output.interactive:
        raise Refused(f"refusing to {action} without confirmation: no terminal; pass --yes")
    try:
        agreed = typer.confirm(question, default=False, err=True)
    except typer.Abort:
        agreed = False
    if not agreed:
        raise Refused(f"did not {action}: not confirmed")


TABLE_FRAME = 7
"""Lines a table takes besides its rows: title, borders, header, the line on
what it left out, the next prompt."""

MORE_KEYS = "--limit N, --prefix P, --json, or --output plain | less"


def print_state(
    out: Output, name: str, scope: str | None, data: dict[str, Any], *, limit: int | None = None
) -> None:
    """A whole state, in the output's mode (table, one JSON document, or key<TAB>value).

    A table on a terminal shows the rows that fit (``limit`` rows if given) and
    says how many keys it left out; JSON and plain text are streamed, so a
    state of any size prints in about the memory it already takes.
    """
    mode = out.mode()
    if mode is Mode.table:
        rows = limit if limit is not None else out.rows_that_fit(TABLE_FRAME)
        out.renderable(state_table(name, scope or "", data, rows=rows))
        out.note(left_out(len(data), rows, "key", MORE_KEYS))
        return
    items = data.items() if limit is None else islice(data.items(), limit)
    out.stream(state_json_chunks(items) if mode is Mode.json else state_plain_chunks(items))


def state_payload(name: str, scope: str | None, **fields: Any) -> dict[str, Any]:
    return {"state": name, "scope": scope or "", **fields}
