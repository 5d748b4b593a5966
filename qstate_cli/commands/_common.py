"""Helpers the command modules share."""

from __future__ import annotations

from typing import Any

import typer

from ..errors import Refused
from ..output import Output
from ..render import Mode, json_text, state_plain, state_table, state_title
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


def print_state(out: Output, name: str, scope: str | None, data: dict[str, Any]) -> None:
    """A whole state, in the output's mode (table, one JSON document, or key<TAB>value)."""
    mode = out.mode()
    if mode is Mode.table:
        out.renderable(state_table(name, scope or "", data))
    elif mode is Mode.json:
        out.data(json_text(data))
    else:
        out.data(state_plain(data))


def state_payload(name: str, scope: str | None, **fields: Any) -> dict[str, Any]:
    return {"state": name, "scope": scope or "", **fields}
