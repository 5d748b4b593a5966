"""Where output goes: data to stdout in the chosen format, messages to stderr.

rich is imported only when a table or a progress bar is shown, so ``qstate
get`` in a script pays nothing for it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .render import Mode, choose_mode, json_text, plain_value

if TYPE_CHECKING:
    from rich.console import Console


PAGED_ROWS = 1000
"""Most rows of a table shown through a pager; the rest are counted, not rendered."""


@dataclass
class Output:
    """The output settings of one command run."""

    requested: Mode | None = None
    no_color: bool = False
    _console: Console | None = field(default=None, repr=False)

    @property
    def terminal(self) -> bool:
        return sys.stdout.isatty()

    @property
    def interactive(self) -> bool:
        """Whether a person can answer a question (stdin and stderr are terminals)."""
        return sys.stdin.isatty() and sys.stderr.isatty()

    @property
    def color(self) -> bool:
        return not self.no_color and "NO_COLOR" not in os.environ and self.terminal

    @property
    def json_requested(self) -> bool:
        """Whether JSON was asked for: commands with no data print a JSON result then."""
        return self.requested is Mode.json

    def mode(self, *, single_value: bool = False) -> Mode:
        return choose_mode(self.requested, terminal=self.terminal, single_value=single_value)

    def console(self) -> Console:
        """A rich console on the current stdout (the shell swaps stdout per command)."""
        if self._console is None or self._console.file is not sys.stdout:
            from rich.console import Console

            self._console = Console(
                file=sys.stdout,
                no_color=not self.color,
                color_system="auto" if self.color else None,
                markup=False,
                emoji=False,
                highlight=False,
            )
        return self._console

    def data(self, text: str) -> None:
        """Write a result to stdout."""
        sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
        sys.stdout.flush()

    def stream(self, chunks: Iterable[str]) -> None:
        """Write a result to stdout piece by piece, so a big one is never held whole."""
        last = ""
        for chunk in chunks:
            sys.stdout.write(chunk)
            last = chunk or last
        if last and not last.endswith("\n"):
            sys.stdout.write("\n")
        sys.stdout.flush()

    def rows_that_fit(self, frame: int) -> int | None:
        """Table rows to show: those that fit the terminal besides ``frame`` lines.

        None (all) in a pipe. Output captured to be paged (the shell captures a
        command's output in a buffer that acts as a terminal) may be taller than
        the window, up to ``PAGED_ROWS``: the pager scrolls it.
        """
        if not self.terminal:
            return None
        try:
            sys.stdout.fileno()
        except (AttributeError, OSError, ValueError):
            return PAGED_ROWS
        return max(self.console().height - frame, 1)

    def value(self, value: Any) -> None:
        """One value: bare in plain mode, a JSON document otherwise."""
        mode = self.mode(single_value=True)
        if mode is Mode.plain:
            self.data(plain_value(value, escape=self.terminal))
        else:
            self.data(json_text(value))

    def renderable(self, renderable: Any) -> None:
        self.console().print(renderable)

    def note(self, line: str | None) -> None:
        """A line under a table (what it left out), kept with the table on stdout."""
        if line is not None:
            from rich.text import Text

            self.console().print(Text(line, style="dim"))

    def aside(self, renderable: Any) -> None:
        """A table for the person at the terminal, on stderr (what a question is about),
        so that stdout keeps only the result even when it goes to a file."""
        from rich.console import Console

        color = not self.no_color and "NO_COLOR" not in os.environ and sys.stderr.isatty()
        Console(
            file=sys.stderr,
            no_color=not color,
            color_system="auto" if color else None,
            markup=False,
            emoji=False,
            highlight=False,
        ).print(renderable)

    @staticmethod
    def message(text: str) -> None:
        """A note for the person at the terminal (stderr, never mixed with data)."""
        print(text, file=sys.stderr)
