"""Where output goes: data to stdout in the chosen format, messages to stderr.

rich is imported only when a table or a progress bar is shown, so ``qstate
get`` in a script pays nothing for it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from .render import Mode, choose_mode, json_text, plain_value

if TYPE_CHECKING:
    from rich.console import Console


PAGED_ROWS = 1000
"""Most rows of a table shown through a pager; the rest are counted, not rendered."""
WRITE_SIZE = 1 << 16
"""Characters gathered into one write of streamed output."""


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
        """Write a result to stdout piece by piece, so a big one is never held whole.

        Pieces are gathered into writes of about ``WRITE_SIZE`` characters: an
        export yields a few small pieces per state, and under ``PYTHONUNBUFFERED``
        each write to stdout is a system call. If the reader goes away
        (``| head``), the rest is not wanted: the pieces are no longer asked
        for and the command ends as it would have.
        """
        pending: list[str] = []
        size, last = 0, ""
        try:
            for chunk in chunks:
                if chunk:
                    pending.append(chunk)
                    size, last = size + len(chunk), chunk
                if size >= WRITE_SIZE:
                    sys.stdout.write("".join(pending))
                    pending, size = [], 0
            if last and not last.endswith("\n"):
                pending.append("\n")
            sys.stdout.write("".join(pending))
            sys.stdout.flush()
        except BrokenPipeError:
            _discard_stdout()

    @contextmanager
    def whole_or_nothing(self) -> Iterator[None]:
        """Take back what was written to stdout inside, if it fails part way, where possible.

        A result built whole reaches stdout only once complete; one streamed
        (``export``) may fail half way. In a file (``> dump.json``, ``>>``, the
        shell's buffer) the output is cut back to where it began, so a failure
        leaves the file as it was. A pipe or a terminal cannot take text back:
        the reader gets a document without its end, and the exit status says so.
        """
        start = _start_of_output(sys.stdout)
        try:
            yield
        except BaseException:
            if start is not None:
                _cut_back(sys.stdout, start)
            raise

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


def _start_of_output(stream: IO[str]) -> int | None:
    """Where what is written to ``stream`` next begins, if it can be cut back there.

    ``None`` for a pipe or a terminal. Under ``>>`` (``O_APPEND``) the position
    means nothing: writes go to the end, so the start is the file's size.
    """
    try:
        if not stream.seekable():
            return None
        stream.flush()
        try:
            fd = stream.fileno()
        except (OSError, ValueError):  # in memory (io.UnsupportedOperation is an OSError)
            return stream.tell()
        import fcntl  # here, not at the top: only a streamed export needs it

        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND:
            return os.fstat(fd).st_size
        return stream.tell()
    except (OSError, ValueError):
        return None


def _cut_back(stream: IO[str], start: int) -> None:
    """Drop what was written to ``stream`` from ``start`` on (best effort: it runs on
    the way out of an error, which must not be hidden by another)."""
    with suppress(OSError, ValueError):
        stream.seek(start)
        stream.truncate()


def _discard_stdout() -> None:
    """Send what is still to be written to stdout, and the flush at exit, to /dev/null.

    A write into a pipe whose reader has gone fails, and so would the flush of
    what is left in the buffer when Python exits (Python's ``signal`` docs give
    this remedy).
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
