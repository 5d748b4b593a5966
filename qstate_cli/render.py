"""Values, states and listings turned into text or rich tables (pure: no I/O).

Values from the store are data, never markup or terminal control: tables hold
``rich.text.Text`` objects (never parsed for ``[bold]``), values appear as JSON
text, and keys with control characters are shown escaped.
"""

from __future__ import annotations

import json
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


def json_text(value: Any) -> str:
    """One JSON document (Unicode kept readable)."""
    return json.dumps(value, ensure_ascii=False, indent=2)


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def plain_value(value: Any) -> str:
    """A string as it is; anything else as compact JSON."""
    return value if isinstance(value, str) else compact_json(value)


def safe_text(text: str) -> str:
    """Text shown in a table: control characters escaped as in JSON."""
    return text if text.isprintable() else json.dumps(text, ensure_ascii=False)[1:-1]


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
        f"{i.name}\t{i.scope}\t{i.keys}\t{'' if i.ttl is None else f'{i.ttl:.3f}'}" for i in infos
    )


def state_plain(data: dict[str, Any]) -> str:
    """One line per key: the key, a tab, the value as ``plain_value`` prints it."""
    return "\n".join(f"{key}\t{plain_value(value)}" for key, value in data.items())
