"""``set``, ``update``, ``delete``, ``clear`` and ``incr``."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ..completion import complete_key
from ..errors import BadInput
from ..options import KeyArg, ScopeOpt, StateArg, YesOpt
from ..render import json_text
from ..values import parse_assignment, parse_document, parse_value
from ._common import confirm, describe, print_state, session_of, state_payload

StringOpt = Annotated[
    bool, typer.Option("--string", help="Store values as strings, without parsing JSON.")
]
TtlOpt = Annotated[
    float | None,
    typer.Option("--ttl", help="Expire the state this many seconds after this write."),
]


def set_value(
    ctx: typer.Context,
    state: StateArg,
    key: KeyArg,
    value: Annotated[
        str,
        typer.Argument(help="JSON (42, true, [1], {...}), else taken as a string; - reads stdin."),
    ],
    string: StringOpt = False,
    ttl: TtlOpt = None,
    scope: ScopeOpt = None,
) -> None:
    """Store VALUE under KEY."""
    session = session_of(ctx)
    if value == "-":
        value = sys.stdin.read()
        value = value.removesuffix("\n")
    parsed = parse_value(value, force_string=string)
    session.registry().state(state, scope=scope, ttl=ttl).set(key, parsed)
    if session.output.json_requested:
        session.output.data(json_text(state_payload(state, scope, key=key, value=parsed)))


def update(
    ctx: typer.Context,
    state: StateArg,
    assignments: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[KEY=VALUE]...", help="Values parsed as in set.", show_default=False
        ),
    ] = None,
    json_document: Annotated[
        str | None, typer.Option("--json", "-j", help="A JSON object, e.g. '{\"step\": 2}'.")
    ] = None,
    string: StringOpt = False,
    ttl: TtlOpt = None,
    scope: ScopeOpt = None,
) -> None:
    """Store several values in one atomic step and print the updated state."""
    session = session_of(ctx)
    mapping: dict[str, Any] = {}
    if json_document is not None:
        mapping.update(parse_document(json_document, "--json"))
    for assignment in assignments or []:
        key, raw = parse_assignment(assignment)
        mapping[key] = parse_value(raw, force_string=string, what=f"the value of {key}")
    if not mapping:
        raise BadInput("nothing to update: give KEY=VALUE pairs or --json")
    data = session.registry().state(state, scope=scope, ttl=ttl).update(mapping)
    print_state(session.output, state, scope, data)


def delete(
    ctx: typer.Context,
    state: StateArg,
    keys: Annotated[
        list[str],
        typer.Argument(metavar="KEY...", help="Keys to remove.", autocompletion=complete_key),
    ],
    scope: ScopeOpt = None,
) -> None:
    """Remove keys from a state (one atomic step)."""
    session = session_of(ctx)
    removed = session.state(state, scope).delete_many(keys)
    if session.output.json_requested:
        session.output.data(json_text(state_payload(state, scope, deleted=removed)))
    else:
        session.output.message(
            f"deleted {removed} of {len(keys)} key(s) from {describe(state, scope)}"
        )


def clear(
    ctx: typer.Context,
    state: StateArg,
    scope: ScopeOpt = None,
    yes: YesOpt = False,
) -> None:
    """Remove the whole state. Asks on a terminal; in a pipe refuses (exit 5) without --yes."""
    session = session_of(ctx)
    name = describe(state, scope)
    confirm(session, f"Clear state {name}?", yes=yes, action=f"clear {name}")
    existed = session.state(state, scope).clear()
    if session.output.json_requested:
        session.output.data(json_text(state_payload(state, scope, cleared=existed)))
    else:
        session.output.message(f"cleared {name}" if existed else f"{name} was already empty")


def incr(
    ctx: typer.Context,
    state: StateArg,
    key: KeyArg,
    amount: Annotated[str, typer.Argument(help="A number (default 1).")] = "1",
    ttl: TtlOpt = None,
    scope: ScopeOpt = None,
) -> None:
    """Add AMOUNT to the number at KEY atomically (a missing key counts as 0); print it."""
    session = session_of(ctx)
    number = parse_value(amount)
    if type(number) not in (int, float):
        raise BadInput(f"AMOUNT must be a number, not {amount!r}")
    result = session.registry().state(state, scope=scope, ttl=ttl).incr(key, number)
    session.output.value(result)
