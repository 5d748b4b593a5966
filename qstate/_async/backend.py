"""The interface every async backend implements.

A backend stores documents (``dict[str, JSON value]``) addressed by a
:class:`StateKey`. Values reach it already validated and copied by the state
layer; it must make every method atomic and never return expired data. Helpers
with a default implementation (``modify``, ``replace``) are built on
``transaction``; a backend overrides them only to make them faster.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from .._codec import JSONValue
from .._keys import StateKey
from .._model import Document, Modifier, StateInfo, _Missing, apply_modifier


class AsyncBackend(ABC):
    """Storage for state documents; one instance serves one registry."""

    url: str = ""
    """The URL the backend was opened with, password removed (safe to print)."""

    @abstractmethod
    async def get(self, key: StateKey, field: str) -> JSONValue | _Missing:
        """The value of ``field``, or ``MISSING``."""

    @abstractmethod
    async def get_all(self, key: StateKey) -> Document:
        """The whole document (empty if the state does not exist or expired)."""

    @abstractmethod
    async def set(self, key: StateKey, field: str, value: JSONValue, ttl: float | None) -> None:
        """Store one value; a ``ttl`` (seconds) resets the state's expiry."""

    @abstractmethod
    async def update(self, key: StateKey, mapping: Document, ttl: float | None) -> Document:
        """Store several values at once and return the whole updated document."""

    @abstractmethod
    async def delete(self, key: StateKey, fields: Sequence[str], ttl: float | None) -> int:
        """Remove keys; return how many existed."""

    @abstractmethod
    async def clear(self, key: StateKey) -> bool:
        """Remove the whole state; return whether it held any key."""

    @abstractmethod
    async def incr(
        self, key: StateKey, field: str, amount: int | float, ttl: float | None
    ) -> int | float:
        """Add ``amount`` to a number (a missing key counts as 0); return the result."""

    @abstractmethod
    def transaction(
        self, key: StateKey, ttl: float | None
    ) -> AbstractAsyncContextManager[Document]:
        """Yield a private copy of the document; write it back atomically on exit."""

    @abstractmethod
    async def list_states(self, prefix: str = "") -> list[StateInfo]:
        """Every non-empty state whose name starts with ``prefix``, sorted."""

    async def modify(self, key: StateKey, fn: Modifier, ttl: float | None) -> Document:
        """Apply ``fn`` to the document atomically; return the new document."""
        async with self.transaction(key, ttl) as data:
            new = apply_modifier(fn, data, key)
            data.clear()
            data.update(new)
        return new

    async def replace(self, key: StateKey, data: Document, ttl: float | None) -> None:
        """Make the document exactly ``data`` (an empty dict removes the state)."""
        async with self.transaction(key, ttl) as current:
            current.clear()
            current.update(data)

    async def health(self) -> dict[str, Any]:
        """Facts for ``qstate doctor`` (server version, integrity...).

        Raises BackendUnavailableError or CorruptDataError when the store is
        unusable; the default backend has nothing to report.
        """
        return {}

    async def aclose(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Release connections; the default backend holds none."""
