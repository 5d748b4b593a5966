"""Export and import: states as one plain JSON document, for backups, diffs and moves.

Format (version 1)::

    {"qstate_export": 1,
     "states": [{"state": "MyState", "scope": "", "ttl": null, "data": {...}}, ...]}

``ttl`` is the time the state had left when exported (seconds) or null. Values
are plain JSON, never base64, so an export can be read, diffed and edited, and
it re-imports unchanged on any backend. An export carries the present of each
state, nothing else.

The functions work on a sync :class:`~qstate.StateRegistry`; ``qstate export``
and ``qstate import`` are thin layers over them. :func:`stream_export` reads the
states one at a time as it is iterated, so that an export of any number of
states can be written out holding one state at a time; :func:`export_states`
collects it whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._changes import same
from ._errors import CorruptDataError, InvalidValueError
from ._keys import check_name, check_scope
from ._listing import StateList
from ._model import Document, StateInfo, check_document, check_ttl

if TYPE_CHECKING:
    from ._sync.registry import StateRegistry

__all__ = [
    "FORMAT_KEY",
    "FORMAT_VERSION",
    "Change",
    "Export",
    "ExportStream",
    "ExportedState",
    "apply_import",
    "export_states",
    "plan_import",
    "read_export",
    "stream_export",
]

FORMAT_KEY = "qstate_export"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ExportedState:
    """One state of an export."""

    state: str
    scope: str
    ttl: float | None
    data: Document

    def as_json(self) -> dict[str, Any]:
        return {"state": self.state, "scope": self.scope, "ttl": self.ttl, "data": self.data}


@dataclass
class Export:
    """What :func:`export_states` read, and what it could not read."""

    states: list[ExportedState] = field(default_factory=list)
    unreadable: list[StateInfo | str] = field(default_factory=list)
    """States (or raw storage keys) holding data qstate did not write."""

    def document(self) -> dict[str, Any]:
        """The export as a JSON-ready document."""
        return {FORMAT_KEY: FORMAT_VERSION, "states": [s.as_json() for s in self.states]}


@dataclass(frozen=True)
class Change:
    """What an import does (or would do) to one state: keys added, changed, removed."""

    state: str
    scope: str
    added: list[str]
    changed: list[str]
    removed: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "scope": self.scope,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
        }


def _nothing() -> None:
    return None


class ExportStream:
    """The states of an export, each read from the registry when iteration reaches it.

    Iterating yields each readable, non-empty state once, in the listing's order.
    ``unreadable`` grows as states whose stored data qstate cannot read are met
    (it starts with the listing's own unreadable keys when every state is
    exported), so it is complete once iteration has ended.
    """

    def __init__(
        self,
        registry: StateRegistry,
        names: Iterable[str],
        scope: str | None,
        listed: StateList,
        on_each: Callable[[], None],
    ) -> None:
        self.unreadable: list[StateInfo | str] = []
        """States (or raw storage keys) holding data qstate did not write."""
        wanted = set(names)
        if not wanted and scope is None:
            self.unreadable.extend(listed.unreadable)
        self._states = self._read(registry, wanted, scope, listed, on_each)

    def __iter__(self) -> Iterator[ExportedState]:
        return self

    def __next__(self) -> ExportedState:
        return next(self._states)

    def _read(
        self,
        registry: StateRegistry,
        wanted: set[str],
        scope: str | None,
        listed: StateList,
        on_each: Callable[[], None],
    ) -> Iterator[ExportedState]:
        for info in listed:
            on_each()
            if (wanted and info.name not in wanted) or (scope is not None and info.scope != scope):
                continue
            try:
                data = registry.state(info.name, scope=info.scope or None).get_all()
            except CorruptDataError:
                self.unreadable.append(info)
            else:
                if data:  # empty: expired since it was listed
                    yield ExportedState(info.name, info.scope, info.ttl, data)


def stream_export(
    registry: StateRegistry,
    names: Iterable[str] = (),
    scope: str | None = None,
    *,
    listed: StateList | None = None,
    on_each: Callable[[], None] = _nothing,
) -> ExportStream:
    """The states named (all when none), of one scope or all, read as they are iterated.

    What :func:`export_states` returns, one state at a time: a caller that
    writes each state out before taking the next holds one state, not the
    export. The states are listed now; each is read when iteration reaches it.
    ``listed`` is the registry's ``list_states()`` when the caller already has
    it; ``on_each`` is called after each listed state (for a progress bar).
    """
    listed = registry.list_states() if listed is None else listed
    return ExportStream(registry, names, scope, listed, on_each)


def export_states(
    registry: StateRegistry,
    names: Iterable[str] = (),
    scope: str | None = None,
    *,
    listed: StateList | None = None,
    on_each: Callable[[], None] = _nothing,
) -> Export:
    """Read the states named (all when none), of one scope or all.

    A state whose stored data qstate cannot read is listed in ``unreadable``
    rather than failing the whole export; the caller decides. ``listed`` and
    ``on_each`` are as for :func:`stream_export`, which this collects whole.
    """
    stream = stream_export(registry, names, scope, listed=listed, on_each=on_each)
    return Export(list(stream), stream.unreadable)


def read_export(document: Any, source: str = "export") -> list[ExportedState]:
    """Validate a parsed export, every state of it, before anything is written.

    Raises InvalidValueError naming the place (``dump.json: states[3]: ...``).
    """
    if not isinstance(document, dict) or document.get(FORMAT_KEY) != FORMAT_VERSION:
        raise InvalidValueError(f"{source} is not a qstate export (version {FORMAT_VERSION})")
    states = document.get("states")
    if not isinstance(states, list):
        raise InvalidValueError(f"{source}: 'states' must be a list")
    entries = []
    for index, entry in enumerate(states):
        where = f"{source}: states[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("data"), dict):
            raise InvalidValueError(f"{where} must be an object with 'state' and 'data'")
        try:
            name = check_name(entry.get("state"))
            scope = check_scope(entry.get("scope") or None)
            ttl = check_ttl(entry.get("ttl"))
            data = check_document(entry["data"], where)
        except ValueError as exc:
            raise InvalidValueError(f"{where}: {exc}") from None
        entries.append(ExportedState(name, scope, ttl, data))
    return entries


def plan_import(
    registry: StateRegistry, entries: Iterable[ExportedState], *, replace: bool = False
) -> list[Change]:
    """What importing ``entries`` would change, state by state (writes nothing)."""
    changes = []
    for entry in entries:
        current = registry.state(entry.state, scope=entry.scope or None).get_all()
        data = entry.data
        changes.append(
            Change(
                entry.state,
                entry.scope,
                added=sorted(k for k in data if k not in current),
                changed=sorted(k for k in data if k in current and not same(current[k], data[k])),
                removed=sorted(k for k in current if k not in data) if replace else [],
            )
        )
    return changes


def apply_import(
    registry: StateRegistry,
    entries: Iterable[ExportedState],
    *,
    replace: bool = False,
    on_each: Callable[[], None] = _nothing,
) -> None:
    """Write ``entries``: merged into each state, or (``replace``) each made exactly so.

    Each state is one atomic step; the import as a whole is not. Both are a
    ``modify()``, not an ``update()``: re-importing what a state already holds
    changes nothing, so it logs no change and wakes no watcher.
    """
    for entry in entries:
        state = registry.state(entry.state, scope=entry.scope or None, ttl=entry.ttl)
        state.modify(_replacement(entry.data) if replace else _merge(entry.data))
        on_each()


def _replacement(data: Document) -> Callable[[Document], Document]:
    def replace(_current: Document) -> Document:
        return dict(data)

    return replace


def _merge(data: Document) -> Callable[[Document], Document]:
    def merge(current: Document) -> Document:
        return {**current, **data}

    return merge
