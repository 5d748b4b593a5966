"""``wait`` and ``watch``: following a state as it changes.

Both follow the state's change log (``State.watch``): every change, in
revision order, as soon as it is made, without reading the whole state again.
A backend that keeps no revisions (a third-party one may not) is polled
instead, every ``--interval`` seconds, as before revisions existed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from qstate import Change, ChangesLostError, State, UsageError

from ..errors import Unmet
from ..options import ScopeOpt, StateArg
from ..render import Mode, compact_json, json_text, state_table
from ..values import parse_assignment, parse_value
from ._common import describe, session_of

IntervalOpt = Annotated[
    float,
    typer.Option(
        "--interval",
        help="Seconds between two reads of the state, on a backend that keeps no "
        "revisions (the others are followed change by change).",
        min=0.01,
    ),
]


def _revision(target: State) -> int | None:
    """The state's revision, or None when its backend keeps none (then it is polled)."""
    try:
        return target.revision()
    except UsageError:
        return None


def _apply(data: dict[str, Any], change: Change) -> None:
    """Replay ``change`` on ``data``; replaying one twice gives the same document."""
    for item in change.changes:
        if "new" in item:
            data[item["key"]] = item["new"]
        else:
            data.pop(item["key"], None)


def _versions(target: State, deadline: float | None, interval: float) -> Iterator[dict[str, Any]]:
    """The state as it is, then as each change leaves it, until ``deadline`` (monotonic).

    Follows the change log from the revision read first; the document read
    right after may already hold a later change, which replaying makes no
    difference to. A watcher that falls too far behind reads the state anew.
    """
    rev = _revision(target)
    data = target.get_all()
    yield dict(data)
    while deadline is None or time.monotonic() < deadline:
        if rev is None:  # a backend without revisions: poll, as before
            left = interval if deadline is None else deadline - time.monotonic()
            time.sleep(max(min(interval, left), 0))
            fresh = target.get_all()
            if fresh != data:
                data = fresh
                yield dict(data)
            continue
        # Watch in slices of at most a second, so that the deadline is kept.
        idle = 1.0 if deadline is None else max(min(deadline - time.monotonic(), 1.0), 0.001)
        if target.revision() < rev:  # cleared, and its log gone since: a new life
            rev = target.revision()
            data = target.get_all()
            yield dict(data)
        try:
            for change in target.watch(since=rev, timeout=idle):
                rev = change.rev
                _apply(data, change)
                yield dict(data)
                if deadline is not None and time.monotonic() >= deadline:
                    return
        except ChangesLostError:
            rev = target.revision()
            data = target.get_all()
            yield dict(data)


def wait(
    ctx: typer.Context,
    state: StateArg,
    conditions: Annotated[
        list[str],
        typer.Argument(
            metavar="KEY=VALUE...", help="Conditions that must all hold (values as in set)."
        ),
    ],
    timeout: Annotated[
        float,
        typer.Option("--timeout", "-t", help="Give up (exit 4) after this many seconds.", min=0),
    ] = 30.0,
    interval: IntervalOpt = 0.2,
    scope: ScopeOpt = None,
) -> None:
    """Block until the state holds KEY=VALUE; for gating CI steps. Exit 4 on timeout."""
    session = session_of(ctx)
    expected = {}
    for condition in conditions:
        key, raw = parse_assignment(condition)
        expected[key] = parse_value(raw)
    target = session.state(state, scope)
    data: dict[str, Any] = {}
    for data in _versions(target, time.monotonic() + timeout, interval):
        if all(key in data and data[key] == value for key, value in expected.items()):
            if session.output.json_requested:
                session.output.data(json_text(data))
            return
    unmet = ", ".join(
        f"{key}={compact_json(value)} (is {_shown(data, key)})"
        for key, value in expected.items()
        if data.get(key, _MISSING) != value
    )
    raise Unmet(f"timed out after {timeout:g} s waiting for {describe(state, scope)}: {unmet}")


_MISSING = object()


def _shown(data: dict[str, Any], key: str) -> str:
    return compact_json(data[key]) if key in data else "absent"


def watch(
    ctx: typer.Context,
    state: StateArg,
    scope: ScopeOpt = None,
    interval: IntervalOpt = 0.5,
    count: Annotated[
        int | None, typer.Option("--count", "-n", help="Stop after this many changes.", min=1)
    ] = None,
    since: Annotated[
        int | None,
        typer.Option(
            "--since",
            help="Print the changes after this revision, then follow (JSON lines only; "
            "a table always starts from the present). Fails if they are no longer kept.",
            min=0,
        ),
    ] = None,
) -> None:
    """Follow a state: a live table on a terminal, one JSON line per change otherwise.

    Each JSON line is one change: {"state", "scope", "rev", "time", "changes",
    "origin"}, where changes lists {"key", "old", "new"} ("old" absent for a new
    key, "new" for a removed one) and origin says who made it ({"host", "pid",
    "task"}; absent when unknown). Revisions come in order, none skipped or repeated.
    """
    session = session_of(ctx)
    target = session.state(state, scope)
    out = session.output
    live: Any = None
    try:
        if out.mode() is Mode.table:
            shown = -1  # the first version is the state as it is, not a change
            for data in _versions(target, None, interval):
                table = state_table(state, scope or "", data)
                if live is None:
                    from rich.live import Live

                    live = Live(table, console=out.console(), auto_refresh=False)
                    live.start()
                live.update(table, refresh=True)
                shown += 1
                if count is not None and shown >= count:
                    break
        else:
            _print_changes(session.output.data, target, interval, count, since)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how one stops watching: not an error
    finally:
        if live is not None:
            live.stop()


def _print_changes(
    write: Any, target: State, interval: float, count: int | None, since: int | None
) -> None:
    """One JSON line per change; on a backend without revisions, per new version."""
    rev = _revision(target)
    label = {"state": target.name, "scope": target.scope}
    if rev is None:
        for shown, data in enumerate(_versions(target, None, interval), 1):
            write(compact_json({**label, "data": data}))
            if count is not None and shown >= count:
                return
    for shown, change in enumerate(target.watch(since=rev if since is None else since), 1):
        write(compact_json({**label, **change.as_dict()}))
        if count is not None and shown >= count:
            return
