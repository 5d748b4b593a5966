"""Revisions and change objects: what every backend's change log speaks (pure).

Every write that changes a state gets the next **revision** of that state
(1, 2, 3, ...), assigned atomically with the write, and appends a
:class:`Change` to the state's change log. Watchers read that log in revision
order, so they see every change exactly once while it is retained.

The rules, the same on every backend:

* ``set``, ``update`` and ``incr`` always make a revision listing every key they
  wrote (with ``old`` even when the value did not change: it was a write);
* ``delete`` and ``clear`` make one only when they removed something, listing
  the removed keys; a clear is one change listing every key;
* ``replace``, ``transaction()``, ``modify()`` and imports make one only when
  the document differs, listing only the keys that differ.

Retention: a log keeps the last :data:`LOG_SIZE` changes of a state, or the
``history=N`` its URL or its state class asks for (1 to :data:`MAX_HISTORY`),
which the file and Redis logs store for writers that do not say. The log is
also the state's history (``history()``, ``as_of()``, ``restore()``), so it
expires with the state; its counter lingers :data:`LINGER` seconds more, so
the next write continues the count (the file log keeps no count apart from
its changes: there the next write begins a new life, as below). When a write
removes a state (a clear, a delete of its last key) its counter and log are
both kept ``LINGER`` seconds longer, so a watcher sees the removal. A state
re-created after that starts a new life at revision 1; a connected watcher
follows it into the new life (its next change is rev 1).
A watcher that falls more than the retained log behind gets
:class:`~qstate.ChangesLostError`, never a silent gap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ._codec import JSONValue, refuse_constant
from ._errors import ChangesLostError, ConfigError, UsageError
from ._model import MISSING, Document

LOG_SIZE = 1000
"""Changes of one state a log keeps unless ``history=`` says otherwise (Redis trims
approximately above 100, the file log in steps)."""

MAX_HISTORY = 100_000
"""The most changes of one state a log may be asked to keep (``history=``)."""

LINGER = 300.0
"""Seconds a removed state's counter and log, and an expired state's counter, outlive it."""

Entry = dict[str, Any]
"""One changed key: ``{"key": k, "old": v, "new": v}``, ``old``/``new`` absent as the case is."""


@dataclass(frozen=True, slots=True)
class Change:
    """One revision of a state: which keys changed, from what, to what, and when.

    ``time`` is ISO 8601 in UTC with milliseconds (``2026-11-30T05:42:21.123Z``):
    a string, so that it prints and serializes the same everywhere (the CLI's
    JSON lines carry it as is). ``changes`` lists ``{"key", "old", "new"}``
    dicts: ``old`` is absent for a key the change created, ``new`` for a key it
    removed. ``origin`` says who made it: ``{"host", "pid"}`` of the writing
    process and, when the write came from an injected task (or
    :func:`qstate.acting_as`), its ``"task"`` name; ``None`` for a change an
    older qstate logged.
    """

    rev: int
    time: str
    changes: list[Entry]
    origin: dict[str, Any] | None = field(default=None)

    def as_dict(self) -> dict[str, Any]:
        """The change as plain JSON data (what ``qstate watch`` prints)."""
        found: dict[str, Any] = {"rev": self.rev, "time": self.time, "changes": self.changes}
        if self.origin is not None:
            found["origin"] = self.origin
        return found


def iso_time(seconds: float) -> str:
    """Unix time as ISO 8601 UTC with milliseconds."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def entry(key: str, old: Any, new: Any) -> Entry:
    """One changed key; ``MISSING`` leaves ``old`` or ``new`` out."""
    found: Entry = {"key": key}
    if old is not MISSING:
        found["old"] = old
    if new is not MISSING:
        found["new"] = new
    return found


def same(a: JSONValue, b: JSONValue) -> bool:
    """Whether two JSON values are the same value (``1``, ``1.0`` and ``True`` differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


Raw = tuple[str, Any, Any]
"""A changed key as ``(key, old, new)``, ``MISSING`` for an absent side: what
logs hold, turned into an :data:`Entry` only when a watcher reads it."""


def diff(before: Document, after: Document) -> list[Raw]:
    """The changed keys that turn ``before`` into ``after`` (none when they are the same)."""
    found = [
        (k, before.get(k, MISSING), v)
        for k, v in after.items()
        if k not in before or not same(before[k], v)
    ]
    found += [(k, v, MISSING) for k, v in before.items() if k not in after]
    return found


def decode_changes(body: str | bytes) -> list[Entry]:
    """A stored change list (JSON text, as the file and Redis logs keep it)."""
    changes: list[Entry] = json.loads(body, parse_constant=refuse_constant)
    return changes


def _as_json(stored: str) -> str:
    """A stored value's text, or, when another tool left text that is not JSON
    there, that text as a JSON string: the log must stay readable JSON."""
    try:
        json.loads(stored, parse_constant=refuse_constant)
    except (ValueError, RecursionError):
        return json.dumps(stored, ensure_ascii=False)
    return stored


def text_entry(key: str, old: str | None, new: str | None) -> str:
    """One changed key as JSON text, from the stored JSON texts of its values."""
    text = '{"key":' + json.dumps(key, ensure_ascii=False)
    if old is not None:
        text += ',"old":' + _as_json(old)
    if new is not None:
        text += ',"new":' + new
    return text + "}"


def check_history(value: object, where: str) -> int:
    """A ``history=`` setting checked: how many changes a log keeps (an int, 1 to MAX_HISTORY)."""
    if type(value) is not int or not 1 <= value <= MAX_HISTORY:
        raise ConfigError(
            f"history must be a number of changes from 1 to {MAX_HISTORY}, not {value!r} "
            f"({where}); every change is kept for watchers, so it cannot be 0"
        )
    return value


def history_option(options: dict[str, str], url: str) -> int | None:
    """Take a URL's ``?history=N`` out of its ``options`` (``None`` when absent): every
    built-in backend reads it alike."""
    if "history" not in options:
        return None
    text = options.pop("history")
    try:
        value: object = int(text)
    except ValueError:
        value = text
    return check_history(value, url)


def undo(data: Document, kept: list[Change], to: int, latest: int, key: object) -> None:
    """Turn ``data``, the state ``key`` at revision ``latest``, into the state at ``to``.

    ``kept`` must be the log from revision ``to`` itself (from 1 for ``to``
    0) up to ``latest``: each change keeps the old value of every key it
    touched, so undoing the ones after ``to`` newest first walks the state
    back. Change ``to`` must be there too: an expiry is not a change, and a
    log that lost ``to`` may have lost one between it and the next.
    Refuses a ``to`` ahead of ``latest`` (UsageError) or beyond the log's
    reach (ChangesLostError).
    """
    if to > latest:
        raise UsageError(f"revision {to} of {key} is ahead of its latest, {latest}")
    if to == latest:
        return
    if not kept or kept[0].rev != max(to, 1) or kept[-1].rev != latest:
        oldest = kept[0].rev if kept else latest
        raise ChangesLostError(
            f"revision {to} of {key} is no longer kept: its log reaches back "
            f"to revision {oldest}; choose {oldest} or later"
        )
    for change in reversed(kept):
        if change.rev <= to:
            break
        for item in change.changes:
            if "old" in item:
                data[item["key"]] = item["old"]
            else:
                data.pop(item["key"], None)
