"""``history`` and ``restore``: what a state's change log still keeps, and going back.

Both read the state's change log through the library (``State.history``);
``restore`` has the library write an earlier revision's document back in one
atomic step (``State.restore``). What a restore would change is worked out
by the library too (``State.as_of``), only to show it before asking.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from qstate import State

from ..options import ScopeOpt, StateArg, YesOpt
from ..render import Mode, compact_json, differences_table, history_table, json_text, left_out
from ..session import Session
from ._common import confirm, describe, session_of, state_payload

SHOWN_DIFFERENCES = 30
"""Keys a restore's question lists at most; the rest are counted."""


def history(
    ctx: typer.Context,
    state: StateArg,
    scope: ScopeOpt = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", "-n", help="Only the last N of the changes.", min=0),
    ] = None,
    since: Annotated[
        int | None,
        typer.Option("--since", help="Only the changes after this revision.", min=0),
    ] = None,
) -> None:
    """Show what changed in a state, when and by whom (the changes its log keeps).

    On a terminal a table, one row per changed key, oldest first; otherwise one
    JSON array of the changes as watch prints them ({"state", "scope", "rev",
    "time", "changes", "origin"}); --output plain prints one of them per line.
    """
    session = session_of(ctx)
    target = session.state(state, scope)
    changes = target.history(since=since or 0, limit=limit)
    out = session.output
    mode = out.mode()
    if mode is Mode.table:
        if changes:
            out.renderable(history_table(state, scope or "", changes))
        else:
            after = f" after revision {since}" if since else ""
            out.note(f"no changes kept for {describe(state, scope)}{after}")
        return
    label = {"state": target.name, "scope": target.scope}
    items = [{**label, **change.as_dict()} for change in changes]
    if mode is Mode.json:
        out.data(json_text(items))
    else:
        out.stream(compact_json(item) + "\n" for item in items)


def restore(
    ctx: typer.Context,
    state: StateArg,
    to: Annotated[
        int,
        typer.Option(
            "--to",
            metavar="REV",
            help="The revision to go back to (qstate history lists them).",
            min=0,
            show_default=False,
        ),
    ],
    scope: ScopeOpt = None,
    yes: YesOpt = False,
) -> None:
    """Make a state what it was at revision REV, in one atomic write (a new revision).

    On a terminal it shows the keys that differ and asks; in a pipe it refuses
    (exit 5) without --yes. Exit 4 when the change log no longer reaches back
    to REV, 2 when REV is ahead of the latest revision.
    """
    session = session_of(ctx)
    target = session.state(state, scope)
    name = describe(state, scope)
    if not yes:
        _show_differences(session, target, to, scope)  # a bad REV is reported as such
    confirm(session, f"Restore {name} to revision {to}?", yes=yes, action=f"restore {name}")
    data = target.restore(to)
    now = target.revision()
    if session.output.json_requested:
        payload = state_payload(state, scope, restored_to=to, rev=now, data=data)
        session.output.data(json_text(payload))
    else:
        session.output.message(f"restored {name} to revision {to}, now revision {now}")


_ABSENT = object()
"""A key that does not exist on one side of a difference."""


def _show_differences(session: Session, target: State, to: int, scope: str | None) -> None:
    """On a terminal, the keys a restore to ``to`` changes (on stderr, with the question)."""
    name = describe(target.name, scope)
    differences = _differences(target, to)
    out = session.output
    if not out.interactive:
        return
    if not differences:
        out.message(f"{name} holds the same values as at revision {to}")
        return
    shown = differences[:SHOWN_DIFFERENCES]
    out.aside(differences_table(target.name, scope or "", to, shown, _ABSENT))
    more = f"qstate history --since {to} lists every change"
    note = left_out(len(differences), SHOWN_DIFFERENCES, "key", more)
    if note is not None:
        out.message(note)


def _differences(target: State, to: int) -> list[tuple[str, Any, Any]]:
    """``(key, value now, value at revision to)`` for each key a restore would change.

    ``as_of`` refuses, as the restore itself would, a revision ahead of the
    latest (exit 2) or older than the log keeps (exit 4).
    """
    then = target.as_of(to)
    now = target.get_all()
    keys = dict.fromkeys([*now, *then])
    return [
        (key, now.get(key, _ABSENT), then.get(key, _ABSENT))
        for key in keys
        if not _same(now.get(key, _ABSENT), then.get(key, _ABSENT))
    ]


def _same(a: Any, b: Any) -> bool:
    """Whether two values (or absences) are the same JSON value (``1``, ``1.0`` and
    ``true`` differ; key order does not matter)."""
    if a is _ABSENT or b is _ABSENT:
        return a is b
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
