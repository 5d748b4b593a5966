"""Persistent shell history that never keeps a password."""

from __future__ import annotations

import os
from pathlib import Path

from prompt_toolkit.history import FileHistory

from qstate import redact_url


def history_path() -> Path:
    """``$QSTATE_HISTFILE``, else ``$XDG_STATE_HOME/qstate/history`` (~/.local/state)."""
    explicit = os.environ.get("QSTATE_HISTFILE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "qstate" / "history"


class RedactingFileHistory(FileHistory):
    """A FileHistory that writes lines with their passwords removed."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            path.touch(mode=0o600)
        super().__init__(str(path))

    def store_string(self, string: str) -> None:
        super().store_string(redact_url(string))

    def append_string(self, string: str) -> None:
        super().append_string(redact_url(string))
