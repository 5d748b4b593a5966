"""``wait`` and ``watch``: following a state as it changes.

Both poll the backend (the one mechanism every backend has), at an interval
the user can set, so they work the same on memory, SQLite and Redis.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from ..errors import Unmet
from ..options import ScopeOpt, StateArg
from ..render import Mode, compact_json, json_text, state_table
from ..values import parse_assignment, parse_value
from ._common import describe, session_of

IntervalOpt = Annotated[
    float, typer.Option("--interval", help="Seconds between two reads of the state.", min=0.01)
]


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
    deadline = time.monotonic() + timeout
    while True:
        data = target.get_all()
        if all(key in data and data[key] == value for key, value in expected.items()):
            if session.output.json_requested:
                session.output.data(json_text(data))
            return
        if time.monotonic() >= deadline:
            unmet = ", ".join(
                f"{key}={compact_json(value)} (is {_shown(data, key)})"
                for key, value in expected.items()
                if data.get(key, _MISSING) != value
            )
            raise Unmet(
                f"timed out after {timeout:g} s waiting for {describe(state, scope)}: {unmet}"
            )
        time.sleep(min(interval, max(deadline - time.monotonic(), 0)))


_MISSING = object()


def _shown(data: dict[str, Any], key: str) -> str:
    return compact_json(data[key]) if key in data else "absent"


def watch(
    ctx: typer.Context,
    state: StateArg,
    scope: ScopeOpt = None,
    interval: IntervalOpt = 0.5,
    count: Annotated[
        int | None, typer.Option("--count", "-n", help="Stop after this many versions.", min=1)
    ] = None,
) -> None:
    """Follow a state: a live table on a terminal, one JSON line per change otherwise."""
    session = session_of(ctx)
    target = session.state(state, scope)
    out = session.output
    live_table = out.mode() is Mode.table
    seen: Any = _MISSING
    shown = 0
    live: Any = None
    try:
        while count is None or shown < count:
            data = target.get_all()
            if data != seen:
                seen, shown = data, shown + 1
                if live_table:
                    table = state_table(state, scope or "", data)
                    if live is None:
                        from rich.live import Live

                        live = Live(table, console=out.console(), auto_refresh=False)
                        live.start()
                    live.update(table, refresh=True)
                else:
                    out.data(compact_json(data))
            if count is not None and shown >= count:
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how one stops watching: not an error
    finally:
        if live is not None:
            live.stop()
