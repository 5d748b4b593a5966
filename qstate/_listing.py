"""What ``list_states`` returns: the states, and the keys found but not readable."""

from __future__ import annotations

from collections.abc import Iterable

from ._model import StateInfo


class StateList(list[StateInfo]):
    """The states a registry lists (a plain sorted list of :class:`StateInfo`).

    ``unreadable`` names the keys that look like states but that qstate did not
    write (on Redis, a key of another type under the prefix). They are left out
    of the list rather than fail it: one foreign key must not hide every state,
    and a tool listing states can still say what it skipped.
    """

    unreadable: tuple[str, ...]

    def __init__(self, states: Iterable[StateInfo] = (), unreadable: Iterable[str] = ()) -> None:
        super().__init__(states)
        self.unreadable = tuple(unreadable)
