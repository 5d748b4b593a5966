"""``export`` and ``import``: states as one plain JSON document.

Format (version 1)::

    {"qstate_export": 1,
     "states": [{"state": "MyState", "scope": "", "ttl": null, "data": {...}}, ...]}

``ttl`` is the time the state had left when exported (seconds) or null. Values
are plain JSON, never base64, so an export can be read, diffed and edited.
An export re-imports unchanged, on any backend.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from qstate import CorruptDataError, StateInfo
from qstate._keys import check_name, check_scope
from qstate._model import check_document, check_ttl

from ..completion import complete_state
from ..errors import BadInput, CliError
from ..exit_codes import ExitCode
from ..options import ScopeOpt, YesOpt
from ..render import json_text
from ..session import Session
from ..values import loads
from ._common import confirm, describe, session_of

DETAILED_REPORT = 20
"""Up to this many states, import reports each one on stderr; beyond, only totals."""
FORMAT_KEY = "qstate_export"
FORMAT_VERSION = 1


@contextmanager
def _progress(total: int, description: str) -> Iterator[Any]:
    """A progress bar on stderr when it is a terminal; nothing in a pipe."""
    if not sys.stderr.isatty() or total < 2:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(file=sys.stderr), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda: progress.advance(task)


def export(
    ctx: typer.Context,
    states: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[STATE]...",
            help="States to export (all scopes); default all.",
            autocompletion=complete_state,
        ),
    ] = None,
    scope: ScopeOpt = None,
    skip_unreadable: Annotated[
        bool,
        typer.Option(
            "--skip-unreadable",
            help="Leave out data qstate did not write (warned on stderr) instead of failing.",
        ),
    ] = False,
) -> None:
    """Print states as one JSON document (for import, diff, backup)."""
    session = session_of(ctx)
    registry = session.registry()
    listed = registry.list_states()
    infos = _selected(listed, states, scope)
    unreadable = list(listed.unreadable) if not states and scope is None else []
    exported = []
    with _progress(len(infos), "exporting") as advance:
        for info in infos:
            try:
                data = registry.state(info.name, scope=info.scope or None).get_all()
            except CorruptDataError:
                unreadable.append(describe(info.name, info.scope))
                advance()
                continue
            if data:  # expired since listed
                exported.append(
                    {"state": info.name, "scope": info.scope, "ttl": info.ttl, "data": data}
                )
            advance()
    if unreadable:
        names = ", ".join(unreadable)
        if not skip_unreadable:
            raise CliError(
                f"cannot export data qstate did not write: {names}; fix or delete it, "
                "or pass --skip-unreadable to export the rest",
                ExitCode.UNAVAILABLE,
            )
        session.output.message(f"qstate: warning: skipped unreadable data: {names}")
    session.output.data(json_text({FORMAT_KEY: FORMAT_VERSION, "states": exported}))


def _selected(
    infos: Iterable[StateInfo], names: list[str] | None, scope: str | None
) -> list[StateInfo]:
    wanted = set(names or [])
    return [
        info
        for info in infos
        if (not wanted or info.name in wanted) and (scope is None or info.scope == scope)
    ]


def _read_document(source: str) -> Any:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read {source}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{source} is not UTF-8 text") from None
    try:
        return loads(text, source)
    except ValueError as exc:
        raise BadInput(f"{source} is not valid JSON: {exc}") from None


def _entries(document: Any, source: str) -> list[tuple[str, str, float | None, dict[str, Any]]]:
    """Every state in an export, all validated before anything is written."""
    if not isinstance(document, dict) or document.get(FORMAT_KEY) != FORMAT_VERSION:
        raise BadInput(f"{source} is not a qstate export (version {FORMAT_VERSION})")
    states = document.get("states")
    if not isinstance(states, list):
        raise BadInput(f"{source}: 'states' must be a list")
    entries = []
    for index, entry in enumerate(states):
        where = f"{source}: states[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("data"), dict):
            raise BadInput(f"{where} must be an object with 'state' and 'data'")
        try:
            name = check_name(entry.get("state"))
            scope = check_scope(entry.get("scope") or None)
            ttl = check_ttl(entry.get("ttl"))
            data = check_document(entry["data"], where)
        except ValueError as exc:
            raise BadInput(f"{where}: {exc}") from None
        entries.append((name, scope, ttl, data))
    return entries


def import_states(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="FILE", help="An export file, or - for stdin.")],
    replace: Annotated[
        bool,
        typer.Option(
            "--replace", help="Make each state exactly as exported (removes other keys)."
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; write nothing.")
    ] = False,
    yes: YesOpt = False,
) -> None:
    """Load an export: merged into existing states, or --replace them."""
    session = session_of(ctx)
    entries = _entries(_read_document(source), source)
    registry = session.registry()
    changes = [_change(registry, *entry, replace=replace) for entry in entries]
    if dry_run:
        _report(session, changes, dry_run=True)
        return
    if replace:
        confirm(
            session,
            f"Replace {len(entries)} state(s) with the contents of {source}?",
            yes=yes,
            action="replace states",
        )
    with _progress(len(entries), "importing") as advance:
        for name, scope, ttl, data in entries:
            state = registry.state(name, scope=scope or None, ttl=ttl)
            if replace:
                state.modify(_replacement(data))
            else:
                state.update(data)
            advance()
    _report(session, changes, dry_run=False)


def _replacement(data: dict[str, Any]) -> Any:
    def replace(_current: dict[str, Any]) -> dict[str, Any]:
        return dict(data)

    return replace


def _change(
    registry: Any, name: str, scope: str, ttl: float | None, data: dict[str, Any], *, replace: bool
) -> dict[str, Any]:
    current = registry.state(name, scope=scope or None).get_all()
    return {
        "state": name,
        "scope": scope,
        "added": sorted(k for k in data if k not in current),
        "changed": sorted(k for k in data if k in current and current[k] != data[k]),
        "removed": sorted(k for k in current if k not in data) if replace else [],
    }


def _report(session: Session, changes: list[dict[str, Any]], *, dry_run: bool) -> None:
    verb = "would import" if dry_run else "imported"
    if session.output.json_requested:
        session.output.data(json_text({"dry_run": dry_run, "states": changes}))
        return
    if len(changes) <= DETAILED_REPORT:
        for change in changes:
            counts = ", ".join(
                f"{len(change[kind])} {kind}" for kind in ("added", "changed", "removed")
            )
            scope = f" [{change['scope']}]" if change["scope"] else ""
            session.output.message(f"{verb} {change['state']}{scope}: {counts}")
    totals = ", ".join(
        f"{sum(len(change[kind]) for change in changes)} keys {kind}"
        for kind in ("added", "changed", "removed")
    )
    session.output.message(f"{verb} {len(changes)} state(s): {totals}")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("import")(import_states)
