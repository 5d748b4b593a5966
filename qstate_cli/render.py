"""Values, states and listings turned into text or rich tables (pure: no I/O).

Values from the store are data, never markup or terminal control: tables hold
``rich.text.Text`` objects (never parsed for ``[bold]``), and every control
character a terminal could act on (C0, DEL, C1 such as CSI U+009B, line and
paragraph separators, bidi overrides such as U+202E) is written as an escape:
in JSON as ``\\uXXXX`` (the same data for any JSON parser), in tables and
``key<TAB>value`` lines as ``\\n``, ``\\t`` or ``\\uXXXX``.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum
from itertools import islice
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


# Patterns, not compiled ones: ``re`` compiles each on its first use (these
# character classes take ~0.4 ms each, paid at every start otherwise), and text
# that is printable ASCII, the common case, never needs them.
_CONTROLS = "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
_CONTROLS_JSON_LEAVES = (  # json.dumps escapes C0 inside strings itself
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
    if text.isascii() and text.isprintable():
        return text
    return re.sub(_CONTROLS, _escape, text)


def _escaped_json(text: str) -> str:
    """JSON text with the controls ``json.dumps`` leaves raw escaped as ``\\uXXXX``.

    They only occur inside strings, where the escape means the same character,
    so any JSON parser reads the same document.
    """
    if text.isascii() and "\x7f" not in text:
        return text
    return re.sub(_CONTROLS_JSON_LEAVES, _escape, text)


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


def state_table(name: str, scope: str, data: dict[str, Any], *, rows: int | None = None) -> Table:
    """The state as a key/value table of its first ``rows`` keys (``None``: all).

    Only the rows shown are ever rendered; when keys are left out each row is
    kept to one line, so that the table fits the rows it was sized for (see
    :func:`left_out` for the line that says so).
    """
    from rich.table import Table
    from rich.text import Text

    cut = rows is not None and rows < len(data)
    table = Table(title=Text(state_title(name, scope)), title_justify="left")
    table.add_column("key", style="bold", no_wrap=cut, overflow="ellipsis")
    table.add_column("value", no_wrap=cut, overflow="ellipsis")
    for key, value in islice(data.items(), rows):
        table.add_row(Text(safe_text(key)), Text(compact_json(value)))
    return table


def list_table(infos: list[StateInfo], *, rows: int | None = None) -> Table:
    """The states as a table of the first ``rows`` (``None``: all)."""
    from rich.table import Table
    from rich.text import Text

    table = Table()
    table.add_column("state", style="bold")
    table.add_column("scope")
    table.add_column("keys", justify="right")
    table.add_column("ttl", justify="right")
    for info in islice(infos, rows):
        table.add_row(
            Text(info.name), Text(safe_text(info.scope)), str(info.keys), format_ttl(info.ttl)
        )
    return table


def left_out(total: int, rows: int | None, noun: str, how: str) -> str | None:
    """The line under a table cut to ``rows``: how many of ``noun`` it left out, and how to
    see them (one short line, so that it never wraps on a terminal)."""
    if rows is None or rows >= total:
        return None
    hidden = total - rows
    return f"… {hidden:,} more {noun}{'s' if hidden > 1 else ''}: {how}"


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


# -- streamed output: one document written in pieces, never built whole ---------

BATCH = 2000
"""Items per piece of streamed output: big enough to be fast, small enough to stay light."""

_SCALARS = (str, int, float, bool, type(None))
_json_string = json.encoder.encode_basestring  # json.dumps(text, ensure_ascii=False), in C


FEW = 8
"""Up to this many scalars are encoded one by one: one encoder call costs more."""

_CONSTANTS = {None: "null", True: "true", False: "false"}


def _scalar_json(value: Any) -> str:
    """``json.dumps(value, ensure_ascii=False)`` of a scalar, without an encoder:
    ``json.dumps`` builds a JSONEncoder and that a C encoder on every call, which
    costs more than the few scalars of a typical exported state."""
    kind = type(value)
    if kind is str:
        return _json_string(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    if kind is float:
        return json.dumps(value)
    return _CONSTANTS[value]


def _indented_items(items: list[tuple[str, Any]], pad: str = "") -> str:
    """``"key": value`` lines of an object, exactly as ``json_text`` writes them.

    ``pad`` is the indentation of the object's own braces (``""`` at the top),
    for an object nested in a bigger document. A batch of scalars is encoded by
    one call of a C encoder (an indented dump is pure Python), or scalar by
    scalar when there are ``FEW``; a batch with containers is indented item by
    item.
    """
    if all(type(value) in _SCALARS for _, value in items):
        if len(items) <= FEW:
            return (",\n  " + pad).join(
                f"{_json_string(key)}: {_scalar_json(value)}" for key, value in items
            )
        return _scalars_encoder(pad)(dict(items))[1:-1]
    return (",\n  " + pad).join(
        f"{_json_string(key)}: "
        + json.dumps(value, ensure_ascii=False, indent=2).replace("\n", "\n  " + pad)
        for key, value in items
    )


@functools.cache
def _scalars_encoder(pad: str) -> Callable[[Any], str]:
    """``json.dumps`` of a flat object with its items on lines indented by ``pad`` + 2,
    its JSONEncoder built once (``json.dumps`` builds one per call)."""
    return json.JSONEncoder(ensure_ascii=False, separators=(",\n  " + pad, ": ")).encode


def _batches(items: Iterable[Any]) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, BATCH)):
        yield batch


def state_json_chunks(items: Iterable[tuple[str, Any]], pad: str = "") -> Iterator[str]:
    """The text of ``json_text(dict(items))``, in pieces.

    With ``pad``, the same object as ``json_text`` writes it nested in a
    document at that indentation (the first brace is where the caller is).
    """
    first = True
    for batch in _batches(items):
        lead = "{\n  " + pad if first else ",\n  " + pad
        yield _escaped_json(lead + _indented_items(batch, pad))
        first = False
    yield "{}" if first else "\n" + pad + "}"


def state_plain_chunks(items: Iterable[tuple[str, Any]]) -> Iterator[str]:
    """The lines of :func:`state_plain`, in pieces (each ends with a newline)."""
    for batch in _batches(items):
        yield "".join(f"{safe_text(key)}\t{plain_value(value)}\n" for key, value in batch)


def _list_item(info: StateInfo) -> str:
    dumps = json.dumps
    return (
        f'  {{\n    "state": {dumps(info.name, ensure_ascii=False)},\n'
        f'    "scope": {dumps(info.scope, ensure_ascii=False)},\n'
        f'    "keys": {info.keys},\n    "ttl": {dumps(info.ttl)}\n  }}'
    )


def list_json_chunks(infos: Iterable[StateInfo]) -> Iterator[str]:
    """The text of ``json_text(list_json(infos))``, in pieces."""
    first = True
    for batch in _batches(infos):
        yield _escaped_json(("[\n" if first else ",\n") + ",\n".join(map(_list_item, batch)))
        first = False
    yield "[]" if first else "\n]"


def list_plain_chunks(infos: Iterable[StateInfo]) -> Iterator[str]:
    """The lines of :func:`list_plain`, in pieces (each ends with a newline)."""
    for batch in _batches(infos):
        yield list_plain(batch) + "\n"


# -- an export (see qstate.transfer for the format) -----------------------------


def export_json_chunks(head: dict[str, Any], states: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The text of ``json_text({**head, "states": list(states)})``, in pieces.

    An export holds every state; built whole, its text takes several times
    the data. Here one state is taken at a time (``states`` may read each as
    it is asked for), its dict fields streamed as ``get`` streams a state, so
    only one state is held. Nothing is yielded before the first state is
    read, and the closing bracket only after the last: an export failing at
    its first state writes nothing, one cut short later is not a JSON document.
    """
    remaining = iter(states)
    first = next(remaining, None)
    fields = "".join(_indented_items([item]) + ",\n  " for item in head.items())
    yield _escaped_json("{\n  " + fields + '"states": [')
    if first is None:
        yield "]\n}"
        return
    yield "\n    "
    yield from _nested_object_chunks(first, "    ")
    for state in remaining:
        yield ",\n    "
        yield from _nested_object_chunks(state, "    ")
    yield "\n  ]\n}"


def _nested_object_chunks(fields: dict[str, Any], pad: str) -> Iterator[str]:
    """``fields`` as ``json_text`` writes an object whose braces are indented by ``pad``.

    A dict value of more than one batch is streamed (:func:`state_json_chunks`);
    the fields around it are written a run at a time (:func:`_fields_text`), so
    an object without a big dict, such as most states of an export, is one piece.
    """
    if not fields:
        yield "{}"
        return
    lead, run = "{\n  " + pad, []
    for field, value in fields.items():
        if type(value) is not dict or len(value) <= BATCH:
            run.append((field, value))
            continue
        if run:
            yield _escaped_json(lead + _fields_text(run, pad))
            lead, run = ",\n  " + pad, []
        yield _escaped_json(f"{lead}{_json_string(field)}: ")
        yield from state_json_chunks(value.items(), pad + "  ")
        lead = ",\n  " + pad
    end = "\n" + pad + "}"
    yield _escaped_json(lead + _fields_text(run, pad) + end) if run else end


def _fields_text(items: list[tuple[str, Any]], pad: str) -> str:
    """``"key": value`` lines of an object at ``pad`` (see :func:`_indented_items`), its
    dict values of scalars encoded in C as well (an indented dump is pure Python)."""
    parts, run = [], []
    for field, value in items:
        if type(value) is not dict or not value:
            run.append((field, value))
            continue
        if run:
            parts.append(_indented_items(run, pad))
            run = []
        inner = pad + "  "
        body = _indented_items(list(value.items()), inner)
        parts.append(f"{_json_string(field)}: {{\n  {inner}{body}\n{inner}}}")
    if run:
        parts.append(_indented_items(run, pad))
    return (",\n  " + pad).join(parts)


# -- change history ---------------------------------------------------------------

ABSENT_BEFORE = "(none)"
"""Shown for the old value of a key a change created (not JSON, so never a stored value)."""
ABSENT_AFTER = "(removed)"
"""Shown for the new value of a key a change removed."""


def origin_label(origin: dict[str, Any] | None) -> str:
    """Who made a change, compactly: ``task@host:pid``, ``host:pid``, or ``""`` when unknown.

    An origin with none of those fields (another writer's own idea of one) is
    shown as compact JSON rather than hidden.
    """
    if not origin:
        return ""
    host, pid, task = origin.get("host"), origin.get("pid"), origin.get("task")
    if host is None and pid is None and task is None:
        return compact_json(origin)
    where = ":".join(str(part) for part in (host, pid) if part is not None)
    label = f"{task}@{where}" if task is not None and where else str(task or where)
    return safe_text(label)


def change_text(entry: dict[str, Any]) -> str:
    """One changed key's ``old → new``, an absent side named as such."""
    old = compact_json(entry["old"]) if "old" in entry else ABSENT_BEFORE
    new = compact_json(entry["new"]) if "new" in entry else ABSENT_AFTER
    return f"{old} → {new}"


def history_table(name: str, scope: str, changes: Iterable[Any]) -> Table:
    """Changes (``qstate.Change``) as a table, one row per changed key.

    The revision, time and origin head the first row of each change only, so
    a clear that removed many keys reads as one block. The origin column is
    left out when no change says who made it.
    """
    from rich.table import Table
    from rich.text import Text

    changes = list(changes)
    with_origin = any(change.origin for change in changes)
    table = Table(title=Text(f"{state_title(name, scope)}: history"), title_justify="left")
    table.add_column("rev", justify="right", style="bold")
    table.add_column("time")
    if with_origin:
        table.add_column("origin")
    table.add_column("key", style="bold")
    table.add_column("old → new")
    for change in changes:
        head = [str(change.rev), change.time.replace("T", " ")]
        if with_origin:
            head.append(origin_label(change.origin))
        for index, entry in enumerate(change.changes):
            shown = head if index == 0 else [""] * len(head)
            table.add_row(
                *(Text(cell) for cell in shown),
                Text(safe_text(entry["key"])),
                Text(change_text(entry)),
                end_section=index == len(change.changes) - 1,
            )
    return table


def differences_table(
    name: str, scope: str, to: int, rows: list[tuple[str, Any, Any]], absent: object
) -> Table:
    """What a restore changes: each key's value now and at revision ``to`` (``absent``
    marks a side where the key does not exist)."""
    from rich.table import Table
    from rich.text import Text

    def shown(value: Any) -> Text:
        return Text("(absent)", style="dim") if value is absent else Text(compact_json(value))

    table = Table(
        title=Text(f"{state_title(name, scope)}: now → at revision {to}"), title_justify="left"
    )
    table.add_column("key", style="bold")
    table.add_column("now")
    table.add_column(f"at revision {to}")
    for key, now, then in rows:
        table.add_row(Text(safe_text(key)), shown(now), shown(then))
    return table
