"""``edit``: change a state in $EDITOR, written back only if nobody changed it meanwhile."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from qstate import InvalidNameError, InvalidValueError

from ..errors import BadInput, CliError, Unmet
from ..exit_codes import ExitCode
from ..options import ScopeOpt, StateArg
from ..render import json_text
from ..values import parse_document
from ._common import describe, session_of


class _ChangedMeanwhile(Exception):
    pass


def edit(ctx: typer.Context, state: StateArg, scope: ScopeOpt = None) -> None:
    """Open the state as JSON in $VISUAL or $EDITOR; write it back on save.

    The state is written only if nobody changed it while you edited (else exit 4,
    and your text is kept in a file whose name is printed). A new state can be
    created this way too.
    """
    session = session_of(ctx)
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor and not session.output.interactive:
        raise BadInput("no $VISUAL or $EDITOR set, and no terminal to run vi on; set $EDITOR")
    target = session.state(state, scope)
    name = describe(state, scope)
    original = target.get_all()
    import tempfile  # here, not at the top: `qstate get` should not pay for it

    handle, path_name = tempfile.mkstemp(prefix="qstate-edit-", suffix=".json")
    path = Path(path_name)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(json_text(original) + "\n")
    _run_editor(editor or "vi", path)
    text = path.read_text(encoding="utf-8")
    try:
        edited = parse_document(text, f"your edit of {name}")
    except BadInput as exc:
        raise BadInput(f"{exc}; nothing was written, your text is kept in {path}") from None
    if edited == original:
        path.unlink()
        session.output.message(f"{name}: no changes")
        return

    def apply(current: dict[str, Any]) -> dict[str, Any]:
        if current != original:
            raise _ChangedMeanwhile
        return edited

    try:
        target.modify(apply)  # validates the edit: a bad one writes nothing
    except (InvalidValueError, InvalidNameError) as exc:
        raise BadInput(f"{exc}; nothing was written, your text is kept in {path}") from None
    except _ChangedMeanwhile:
        raise Unmet(
            f"{name} was changed by someone else while you edited; nothing was written, "
            f"your text is kept in {path}"
        ) from None
    path.unlink()
    session.output.message(f"{name}: saved")


def _run_editor(command: str, path: Path) -> None:
    import shlex
    import subprocess

    try:
        result = subprocess.run([*shlex.split(command), str(path)], check=False)
    except OSError as exc:
        raise CliError(
            f"cannot start the editor {command!r}: {exc.strerror}; set $EDITOR", ExitCode.USAGE
        ) from None
    if result.returncode != 0:
        raise CliError(
            f"the editor exited with status {result.returncode}; nothing was written "
            f"(your text is in {path})",
            ExitCode.USAGE,
        )
