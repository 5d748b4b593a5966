"""Values, states and listings turned into text or rich tables (pure: no I/O).

Values from the store are data, never markup or terminal control: tables hold
``rich.text.Text`` objects (never parsed for ``[bold]``), and every control
character a terminal could act on (C0, DEL, C1 such as CSI U+009B, line and
paragraph separators, bidi overrides such as U+202E) is written as an escape:
in JSON as ``\\uXXXX`` (the same data for any JSON parser), in tables and
``key<TAB>value`` lines as ``\\n``, ``\\t`` or ``\\uXXXX``.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from qstate import StateInfo

if TYPE_CHECKING:
    from rich.table import Table


class Mode(StrEnum):
    """``--output`` formats."""

    table = "table"
    json = "json"
    plain = "plain"


def choose_mode(requested: Mode | None, *, terminal: bool, single_value: bool) -> Mode:
    """The output format: as asked, else a table on a terminal, else plain/JSON.

    In a pipe a single value is printed bare (like ``redis-cli --raw``) and
    anything else as one JSON document, for ``jq``.
    """
    if requested is not None:
        return requested
    if terminal:
        return Mode.table
    return Mode.plain if single_value else Mode.json


_CONTROLS = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_CONTROLS_JSON_LEAVES = re.compile(  # json.dumps escapes C0 inside strings itself
    "[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_SHORT_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _SHORT_ESCAPES.get(char) or f"\\u{ord(char):04x}"


def escape_controls(text: str) -> str:
    """``text`` with every terminal control and bidi control written as an escape.

    ``json.dumps`` escapes only C0; C1 controls (U+009B is a CSI on many
    terminals) and bidi overrides (U+202E reverses what follows) pass through it.
    """
    return _CONTROLS.sub(_escape, text) if _CONTROLS.search(text) else text


def _escaped_json(text: str) -> str:
    """JSON text with the controls ``json.dumps`` leaves raw escaped as ``\\uXXXX``.

    They only occur inside strings, where the escape means the same character,
    so any JSON parser reads the same document.
    """
    return _CONTROLS_JSON_LEAVES.sub(_escape, text) if _CONTROLS_JSON_LEAVES.search(text) else text


def json_text(value: Any) -> str:
    """One JSON document (Unicode kept readable, controls escaped)."""
    return _escaped_json(json.dumps(value, ensure_ascii=False, indent=2))


def compact_json(value: Any) -> str:
    return _escaped_json(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def plain_value(value: Any, *, escape: bool = True) -> str:
    """A string as it is (controls escaped unless ``escape`` is off); else compact JSON.

    ``escape=False`` is for a bare value in a pipe (``v=$(qstate get S k)``),
    where the exact bytes matter and no terminal interprets them.
    """
    if isinstance(value, str):
        return escape_controls(value) if escape else value
    return compact_json(value)


def safe_text(text: str) -> str:
    """Text shown in a table or a line of its own: controls escaped."""
    return escape_controls(text)


def format_ttl(ttl: float | None) -> str:
    if ttl is None:
        return "-"
    if ttl < 60:
        return f"{ttl:.1f}s"
    minutes, seconds = divmod(int(ttl), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def state_title(name: str, scope: str) -> str:
    return f"{name} [{safe_text(scope)}]" if scope else name


def state_table(name: str, scope: str, data: dict[str, Any]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(state_title(name, scope)), title_justify="left")
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in data.items():
        table.add_row(Text(safe_text(key)), Text(compact_json(value)))
    return table


def list_table(infos: list[StateInfo]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table()
    table.add_column("state", style="bold")
    table.add_column("scope")
    table.add_column("keys", justify="right")
    table.add_column("ttl", justify="right")
    for info in infos:
        table.add_row(
            Text(info.name), Text(safe_text(info.scope)), str(info.keys), format_ttl(info.ttl)
        )
    return table


def list_json(infos: list[StateInfo]) -> list[dict[str, Any]]:
    return [{"state": i.name, "scope": i.scope, "keys": i.keys, "ttl": i.ttl} for i in infos]


def list_plain(infos: list[StateInfo]) -> str:
    """One line per state: name, scope, key count, TTL, tab-separated."""
    return "\n".join(
        f"{i.name}\t{safe_text(i.scope)}\t{i.keys}\t{'' if i.ttl is None else f'{i.ttl:.3f}'}"
        for i in infos
    )


def state_plain(data: dict[str, Any]) -> str:
    """One line per key: the key, a tab, the value as ``plain_value`` prints it.

    Controls are escaped even in a pipe, so a newline in a key or a value can
    never split one key's line in two.
    """
    return "\n".join(f"{safe_text(key)}\t{plain_value(value)}" for key, value in data.items())
