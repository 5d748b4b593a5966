"""``export`` and ``import``: states as one plain JSON document.

The format, its validation and the import's diff are the library's
(:mod:`qstate.transfer`); this module reads and writes files, shows progress
and reports.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from qstate import StateInfo
from qstate.transfer import (
    FORMAT_KEY,
    FORMAT_VERSION,
    Change,
    ExportedState,
    ExportStream,
    apply_import,
    plan_import,
    read_export,
    stream_export,
)

from ..completion import complete_state
from ..errors import BadInput, CliError
from ..exit_codes import ExitCode
from ..options import ScopeOpt, YesOpt
from ..render import export_json_chunks, json_text, safe_text
from ..session import Session
from ..values import loads
from ._common import confirm, describe, session_of

DETAILED_REPORT = 20
"""Up to this many states, import reports each one on stderr; beyond, only totals."""


@contextmanager
def _progress(total: int, description: str) -> Iterator[Any]:
    """A progress bar on stderr when it is a terminal; nothing in a pipe.

    stdout is left alone: the data written while the bar runs (a streamed
    export) must reach the file or pipe it was sent to, not the terminal.
    """
    if not sys.stderr.isatty() or total < 2:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(
        console=Console(file=sys.stderr),
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    ) as progress:
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
    """Print states as one JSON document (for import, diff, backup).

    The document is written as the states are read, one state held at a time,
    so an export of any size takes about the memory of its biggest state. If it
    fails part way, output sent to a file is taken back; a pipe gets a document
    without its end, which no JSON reader accepts.
    """
    session = session_of(ctx)
    registry = session.registry()
    listed = registry.list_states()
    with _progress(len(listed), "exporting") as advance:
        found = stream_export(registry, states or (), scope, listed=listed, on_each=advance)
        if found.unreadable and not skip_unreadable:  # known before anything is written
            raise _unreadable(found)
        with session.output.whole_or_nothing():
            session.output.stream(
                export_json_chunks(
                    {FORMAT_KEY: FORMAT_VERSION},
                    (entry.as_json() for entry in _readable(found, skip=skip_unreadable)),
                )
            )
    if found.unreadable:
        session.output.message(
            f"qstate: warning: skipped unreadable data: {safe_text(_names(found))}"
        )


def _readable(found: ExportStream, *, skip: bool) -> Iterator[ExportedState]:
    """The states to write; unless ``skip``, an unreadable one stops the export.

    The check also runs after the last state, before the document is closed,
    so that a refused export is never a whole document.
    """
    for entry in found:
        if found.unreadable and not skip:
            raise _unreadable(found)
        yield entry
    if found.unreadable and not skip:
        raise _unreadable(found)


def _unreadable(found: ExportStream) -> CliError:
    """The refusal, naming every unreadable state (the rest are read to find them)."""
    for _ in found:
        pass
    return CliError(
        f"cannot export data qstate did not write: {_names(found)}; fix or delete it, "
        "or pass --skip-unreadable to export the rest",
        ExitCode.UNAVAILABLE,
    )


def _names(found: ExportStream) -> str:
    return ", ".join(
        describe(item.name, item.scope) if isinstance(item, StateInfo) else item
        for item in found.unreadable
    )


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
    entries = read_export(_read_document(source), source)
    registry = session.registry()
    changes = plan_import(registry, entries, replace=replace)
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
        apply_import(registry, entries, replace=replace, on_each=advance)
    _report(session, changes, dry_run=False)


def _report(session: Session, changes: list[Change], *, dry_run: bool) -> None:
    verb = "would import" if dry_run else "imported"
    if session.output.json_requested:
        session.output.data(
            json_text({"dry_run": dry_run, "states": [change.as_json() for change in changes]})
        )
        return
    kinds = ("added", "changed", "removed")
    if len(changes) <= DETAILED_REPORT:
        for change in changes:
            counts = ", ".join(f"{len(getattr(change, kind))} {kind}" for kind in kinds)
            session.output.message(f"{verb} {describe(change.state, change.scope)}: {counts}")
    totals = ", ".join(
        f"{sum(len(getattr(change, kind)) for change in changes)} keys {kind}" for kind in kinds
    )
    session.output.message(f"{verb} {len(changes)} state(s): {totals}")
