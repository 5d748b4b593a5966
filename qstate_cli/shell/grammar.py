"""What a shell line means (pure): the CLI's grammar, plus a current state.

A line is a ``qstate`` command without the word ``qstate``. When a state is
selected (``use MyState``), the commands that take a STATE get it implicitly:
``get step`` runs ``qstate get MyState step``. The shell's own commands are
``use``, ``help`` and ``exit``/``quit``; everything else goes to the CLI app.
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass

from ..render import state_title


class LineError(ValueError):
    """A line the shell cannot even split into words (an unclosed quote)."""


@dataclass(frozen=True)
class Current:
    """The state the shell is on (``use``)."""

    name: str | None = None
    scope: str | None = None

    def label(self) -> str:
        return "" if self.name is None else state_title(self.name, self.scope or "")


def split(line: str) -> list[str]:
    """Split a line into words like a shell, keeping JSON values whole.

    Words split at whitespace; '...' and "..." quote as in a shell. A word that
    starts with [ or { (or a KEY= followed by one) is JSON, taken verbatim up to
    its closing bracket, quotes and line breaks included: ``set tags ["a", "b"]``
    and ``update cart={"items": [1, 2]}`` need no shell quoting.
    """
    words: list[str] = []
    i, n = 0, len(line)
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        word: list[str] = []
        quoted = False
        while i < n and not line[i].isspace():
            char = line[i]
            if char in "[{" and not quoted and (not word or word[-1] == "="):
                end = _json_end(line, i)
                word.append(line[i:end])
                i = end
            elif char in "'\"":
                end = line.find(char, i + 1) if char == "'" else _double_quote_end(line, i)
                if end < 0:
                    raise LineError("cannot read the line: no closing quotation")
                text = line[i + 1 : end]
                word.append(text if char == "'" else re.sub(r'\\(["\\$`])', r"\1", text))
                quoted = True
                i = end + 1
            elif char == "\\" and i + 1 < n:
                word.append(line[i + 1])
                i += 2
            else:
                word.append(char)
                i += 1
        words.append("".join(word))
    return words


def _double_quote_end(line: str, start: int) -> int:
    i = start + 1
    while i < len(line):
        if line[i] == "\\":
            i += 2
        elif line[i] == '"':
            return i
        else:
            i += 1
    return -1


def _json_end(line: str, start: int) -> int:
    """Index just past the bracket closing the JSON value starting at ``start``."""
    depth, i, n = 0, start, len(line)
    while i < n:
        char = line[i]
        if char == '"':
            end = _double_quote_end(line, i)
            if end < 0:
                raise LineError("cannot read the line: a JSON string is not closed")
            i = end
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise LineError("cannot read the line: a JSON value is not closed")


def command_index(words: list[str], value_options: Container[str]) -> int:
    """Where the command word is: after the global options typed first
    (``--json get step``); ``value_options`` are those that take a value."""
    i = 0
    while i < len(words) and words[i].startswith("-") and words[i] != "-":
        i += 2 if words[i] in value_options else 1
    return i


def to_cli_args(
    words: list[str], current: Current, takes_state: Container[str], at: int = 0
) -> list[str]:
    """The CLI arguments for a command line, with the current state filled in.

    ``takes_state`` names the commands whose first argument is a STATE; ``at``
    is where the command word is (see :func:`command_index`).
    """
    if at >= len(words) or words[at] not in takes_state or current.name is None:
        return words
    options, command, rest = words[:at], words[at], words[at + 1 :]
    scope = [] if current.scope is None or _has_scope(rest) else ["--scope", current.scope]
    return [*options, command, *scope, current.name, *rest]


def _has_scope(words: list[str]) -> bool:
    for word in words:
        if word == "--":
            return False
        if word in ("--scope", "-s") or word.startswith("--scope="):
            return True
    return False


def parse_use(words: list[str]) -> Current:
    """``use STATE [--scope S]``; ``use`` alone leaves the current state."""
    names, scope = [], None
    rest = iter(words[1:])
    for word in rest:
        if word in ("--scope", "-s"):
            scope = next(rest, None)
            if scope is None:
                raise LineError("--scope needs a value")
        elif word.startswith("--scope="):
            scope = word.partition("=")[2]
        else:
            names.append(word)
    if len(names) > 1 or (scope is not None and not names):
        raise LineError("usage: use STATE [--scope SCOPE]")
    return Current(names[0], scope) if names else Current()


def is_complete(text: str) -> bool:
    """Whether a line can run now: no open quote, no open [ or { (a JSON value).

    Enter on an incomplete line starts a new line instead, so a JSON document
    can be typed over several lines.
    """
    depth = 0
    quote: str | None = None
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote is not None:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
    return quote is None and depth <= 0
