"""The shell's loop: read a line, run it through the CLI app, show the result.

Interactive on a terminal (prompt-toolkit: completion, history, suggestions,
multi-line JSON, a syntax toolbar, a pager for tall output); line by line from
a pipe (``qstate shell < script``), exiting with the first failure's code.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
from typing import Any

from qstate import QStateError, redact_url

from ..catalog import Catalog
from ..errors import report
from ..exit_codes import ExitCode
from ..main import app, invoke
from ..session import Session
from .facts import SHELL_OWN, all_facts, value_options_of
from .grammar import (
    Current,
    LineError,
    command_index,
    is_complete,
    parse_use,
    split,
    to_cli_args,
)
from .syntax import line_syntax

LIVE_COMMANDS = frozenset({"watch", "edit", "clear", "import", "restore"})
"""Commands that talk to the terminal themselves (live view, editor, [y/N]):
their output is not captured for the pager."""


class _Leave(Exception):
    pass


class _TerminalBuffer(io.StringIO):
    """Captures a command's output while letting it render as for a terminal."""

    def isatty(self) -> bool:
        return True


class Shell:
    """One shell on one session; ``current`` is the state commands default to."""

    def __init__(self, session: Session, current: Current) -> None:
        from typer.main import get_command

        self.session = session
        self.current = current
        root = get_command(app)
        self.commands: dict[str, Any] = dict(root.commands)  # type: ignore[attr-defined]
        self.global_value_options = value_options_of(root)
        self.commands.pop("shell", None)
        self.facts = all_facts(self.commands)
        self.takes_state = frozenset(f.name for f in self.facts.values() if f.takes_state)
        self.catalog = Catalog(session.registry())

    # -- one line ------------------------------------------------------------

    def run_line(self, line: str, *, capture: bool) -> int:
        """Run one line; the exit code it would have as a ``qstate`` command."""
        try:
            words = split(line)
        except LineError as error:
            return report(str(error), ExitCode.USAGE)
        if not words:
            return ExitCode.OK
        at = command_index(words, self.global_value_options)
        command = words[at] if at < len(words) else ""
        if command in ("exit", "quit"):
            raise _Leave
        if command == "use":
            return self._use(words[at:])
        if command == "help":
            return self._help(words[at + 1 :])
        if command == "shell":
            return report("already in the shell", ExitCode.USAGE)
        args = to_cli_args(words, self.current, self.takes_state, at)
        try:
            if capture and command not in LIVE_COMMANDS:
                return self._captured(args)
            return invoke(args, self.session)
        finally:
            self.catalog.invalidate()

    def _captured(self, args: list[str]) -> int:
        buffer = _TerminalBuffer()
        with contextlib.redirect_stdout(buffer):
            code = invoke(args, self.session)
        _show(buffer.getvalue())
        return code

    def _use(self, words: list[str]) -> int:
        try:
            current = parse_use(words)
            if current.name is not None:
                self.session.state(current.name, current.scope)  # validates both
        except (LineError, QStateError) as error:
            return report(error, ExitCode.USAGE)
        self.current = current
        return ExitCode.OK

    def _help(self, topic: list[str]) -> int:
        if topic and topic[0] in self.commands:
            return invoke([topic[0], "--help"], self.session)
        if topic:
            return report(f"no command {topic[0]!r}; try help", ExitCode.USAGE)
        lines = ["Commands (as the qstate CLI, without the word qstate):"]
        lines += [f"  {name:<8} {self.facts[name].summary}" for name in sorted(self.facts)]
        lines += [f"  {syntax:<26} {summary}" for syntax, summary in SHELL_OWN.values()]
        lines.append("Ctrl-C cancels the line; Ctrl-D leaves.")
        print("\n".join(lines))
        return ExitCode.OK

    # -- loops ---------------------------------------------------------------

    def prompt_text(self) -> str:
        label = self.current.label()
        return f"qstate {redact_url(self.session.registry().url)}{' ' + label if label else ''}> "

    def toolbar(self, text: str) -> str:
        try:
            words = split(text)
        except LineError:
            return ""
        return line_syntax(
            words,
            self.commands,
            implicit_state=self.current.name is not None,
            width=shutil.get_terminal_size().columns,
        )

    def interactive(self) -> int:
        """The prompt-toolkit loop; Ctrl-C cancels the line, Ctrl-D or exit leaves (0)."""
        from .prompt import make_prompt_session

        prompt = make_prompt_session(self)
        os.environ.setdefault("LESS", "-R -F -X")
        while True:
            try:
                line = prompt.prompt(self.prompt_text)
            except KeyboardInterrupt:
                continue
            except EOFError:
                return ExitCode.OK
            try:
                self.run_line(line, capture=True)
            except _Leave:
                return ExitCode.OK

    def piped(self, stream: Any) -> int:
        """Commands line by line (a JSON value may span lines); the first failure's code."""
        first_failure: int = ExitCode.OK
        pending = ""
        for raw in stream:
            pending += raw
            if not is_complete(pending):
                continue
            line, pending = pending.strip(), ""
            if not line or line.startswith("#"):
                continue
            try:
                code = self.run_line(line, capture=False)
            except _Leave:
                break
            if code and not first_failure:
                first_failure = code
        if pending.strip():
            code = report("the input ended inside an open quote or bracket", ExitCode.USAGE)
            first_failure = first_failure or code
        return first_failure


def _show(text: str) -> None:
    """Print captured output, through a pager when it is taller than the window."""
    if not text:
        return
    rows = shutil.get_terminal_size().lines
    if sys.stdout.isatty() and text.count("\n") >= rows - 1:
        import pydoc

        pydoc.pager(text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def run_shell(session: Session, current: Current) -> int:
    shell = Shell(session, current)
    if sys.stdin.isatty():
        return shell.interactive()
    return shell.piped(sys.stdin)
