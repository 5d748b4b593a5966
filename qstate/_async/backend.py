"""The interface every async backend implements: a small core, everything else defaulted.

A backend stores documents (``dict[str, JSON value]``) addressed by a
:class:`StateKey`. Values reach it already validated and copied by the state
layer; it must make every method atomic and never return expired data.

Three methods are the whole contract a new backend must write: ``get_all``,
``transaction`` and ``list_states``. Every other operation has a correct
default built on them (a read on ``get_all``, every write as one
``transaction``), so a third-party backend of a few dozen lines is complete
(``tests/example_backend.py`` is one, and passes the contract suite). The
built-in backends override the defaults to make them one round trip.

Revisions and ``watch`` are not defaulted: a correct default would need the
revision stored with the document, and the core has nowhere but the document
itself to keep it (a reserved key every reader would see and every writer could
clobber), and a watcher would have to poll whole documents, which is exactly
what ``watch`` exists to avoid. So a backend says whether it keeps revisions
(``keeps_revisions``); one that does not refuses ``revision()`` and ``watch()``
with a UsageError naming the backend (the contract suite checks both sides),
and one that does implements both, appending each change to a log in the same
atomic step as the write (see ``qstate._changes`` for the rules).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from types import MappingProxyType
from typing import Any

from .._changes import Change
from .._codec import JSONValue
from .._errors import ConflictError, UsageError
from .._keys import StateKey
from .._model import MISSING, Document, Modifier, StateInfo, _Missing, add, apply_modifier


class AsyncBackend(ABC):
    """Storage for state documents; one instance serves one registry."""

    url: str = ""
    """The URL the backend was opened with, password removed (safe to print)."""

    locks_store_in_transaction: bool = False
    """Whether a ``transaction()`` locks the whole store, not just its state.

    SQLite has one write lock per database: a write to any state inside a
    transaction would wait for the block itself, so the state layer refuses it
    at once with UsageError when this is true.
    """

    keeps_revisions: bool = False
    """Whether this backend numbers changes and can ``watch`` them (see the module)."""

    history_size: int | None = None
    """The URL's ``?history=N``: how many changes of each state the log keeps.

    ``None``: as many as the state's log was last told to keep by a writer
    that knew (a class's ``history=``, another process's URL), else
    ``LOG_SIZE``. Backends that share a log between processes store that
    number with it, so one writer without the setting never trims another's
    history to the default.
    """

    _history_sizes: Mapping[str, int] = MappingProxyType({})
    """State name → its class's ``history=N``, replaced (never changed) when one is added."""

    def keep_history(self, name: str, size: int) -> None:
        """Keep the last ``size`` changes of states called ``name`` (a class's ``history=``)."""
        if self._history_sizes.get(name) != size:
            self._history_sizes = {**self._history_sizes, name: size}

    def history_size_of(self, key: StateKey) -> int | None:
        """How many changes of ``key`` this registry asks its log to keep (None: no say)."""
        return self._history_sizes.get(key.name, self.history_size)

    # -- the core: what every backend implements -----------------------------

    @abstractmethod
    async def get_all(self, key: StateKey) -> Document:
        """The whole document (empty if the state does not exist or expired)."""

    @abstractmethod
    def transaction(
        self, key: StateKey, ttl: float | None
    ) -> AbstractAsyncContextManager[Document]:
        """Yield a private copy of the document; write it back atomically on exit.

        An exception in the block discards the changes. Writing back an empty
        document removes the state; a ``ttl`` (seconds) resets its expiry,
        and without one the state keeps it.

        When the state expires while the block runs, the commit comes after the
        expiry, so it is as a ``set`` would be then: a block that changed what
        it read writes its whole document (the keys it left alone expired with
        the state), with no expiry unless a ``ttl`` is given, its change listing
        every key. A block that changed nothing writes nothing: what expired
        stays expired rather than come back from a read.
        """

    @abstractmethod
    async def list_states(self, prefix: str = "") -> list[StateInfo]:
        """Every non-empty state whose name starts with ``prefix``, sorted."""

    # -- defaults on the core; backends override them for speed --------------

    async def get(self, key: StateKey, field: str) -> JSONValue | _Missing:
        """The value of ``field``, or ``MISSING``."""
        return (await self.get_all(key)).get(field, MISSING)

    async def set(self, key: StateKey, field: str, value: JSONValue, ttl: float | None) -> None:
        """Store one value; a ``ttl`` (seconds) resets the state's expiry."""
        async with self.transaction(key, ttl) as data:
            data[field] = value

    async def update(self, key: StateKey, mapping: Document, ttl: float | None) -> Document:
        """Store several values at once and return the whole updated document."""
        async with self.transaction(key, ttl) as data:
            data.update(mapping)
            result = dict(data)
        return result

    async def delete(self, key: StateKey, fields: Sequence[str], ttl: float | None) -> int:
        """Remove keys; return how many existed."""
        async with self.transaction(key, ttl) as data:
            return sum(data.pop(field, MISSING) is not MISSING for field in set(fields))

    async def clear(self, key: StateKey) -> bool:
        """Remove the whole state; return whether it held any key."""
        async with self.transaction(key, None) as data:
            existed = bool(data)
            data.clear()
        return existed

    async def incr(
        self, key: StateKey, field: str, amount: int | float, ttl: float | None
    ) -> int | float:
        """Add ``amount`` to a number (a missing key counts as 0); return the result."""
        async with self.transaction(key, ttl) as data:
            result = data[field] = add(data.get(field, MISSING), amount, field)
        return result

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

    # -- revisions: refused unless the backend keeps them ---------------------

    async def revision(self, key: StateKey) -> int:
        """The state's latest revision (0 if it has none)."""
        raise self._no_revisions()

    def watch(
        self, key: StateKey, since: int | None, timeout: float | None
    ) -> AsyncIterator[Change]:
        """Every change after revision ``since`` (default: the latest), in order.

        Ends when no change came for ``timeout`` seconds (never if ``None``).
        Raises ChangesLostError when the log no longer holds the next change.
        """
        raise self._no_revisions()

    async def snapshot(self, key: StateKey) -> tuple[Document, int]:
        """The document and the revision it is at, read together.

        This default reads the revision on both sides of ``get_all`` and tries
        again if a write came between; a backend that can read both in one
        step (the built-in ones do) overrides it.
        """
        for _ in range(10):
            latest = await self.revision(key)
            data = await self.get_all(key)
            if await self.revision(key) == latest:
                return data, latest
        raise ConflictError(f"{key} changed during each of 10 reads; try again")

    async def history(self, key: StateKey, since: int, limit: int | None) -> list[Change]:
        """The changes still kept after revision ``since``, oldest first.

        With ``limit``, only the last ``limit`` of them. A state's log keeps
        its latest changes (see ``qstate._changes``), so this reads what a
        watcher could still catch up on, after the fact.
        """
        raise self._no_revisions()

    def _no_revisions(self) -> UsageError:
        return UsageError(
            f"the backend {self.url or type(self).__name__} keeps no revisions, "
            "so it cannot number or watch changes; use memory://, file: or redis://"
        )

    async def health(self) -> dict[str, Any]:
        """Facts for ``qstate doctor`` (server version, integrity...).

        Raises BackendUnavailableError or CorruptDataError when the store is
        unusable; a backend with nothing to report returns ``{}``.
        """
        return {}

    async def aclose(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Release connections; a backend that holds none need not override it."""
