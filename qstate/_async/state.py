"""``AsyncState``: the object a task uses to read and write one state document.

Subclass it to declare a state (``class MyState(AsyncState): pass``); the class
name is the state's name unless ``name=`` is given in the class statement, and
``ttl=`` there sets a default expiry. An instance is bound to a registry and,
optionally, a scope: ``MyState(registry, scope="user-42")`` is a separate
document from ``MyState(registry)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from .._changes import Change, check_history, undo
from .._codec import JSONValue, check_value
from .._errors import InvalidValueError, UsageError
from .._keys import StateKey, check_key, check_name, check_scope
from .._model import (
    MISSING,
    UNSET,
    Document,
    Modifier,
    check_count,
    check_document,
    check_own_document,
    check_ttl,
)
from .._txguard import OPEN_COUNT, check_not_blocked, mark_transaction

if TYPE_CHECKING:
    from .registry import AsyncStateRegistry


_new_key = tuple.__new__
_registry_class: list[type] = [tuple]  # no registry is a tuple: checked until the first one
"""The registry class itself, once a state has been built on one (see ``__init__``)."""


def _check_registry(state: AsyncState, registry: object) -> None:
    """Refuse anything but an AsyncStateRegistry (say, a sync one) with a clear error."""
    from .registry import AsyncStateRegistry

    if not isinstance(registry, AsyncStateRegistry):
        raise TypeError(
            f"{type(state).__name__} needs an AsyncStateRegistry, not {type(registry).__name__}"
        )
    if type(registry) is AsyncStateRegistry:
        _registry_class[0] = AsyncStateRegistry


class AsyncState:
    """A state document; every method is one atomic step on the backend."""

    state_name: ClassVar[str | None] = None
    """The name states of this class are stored under (default: the class name)."""

    state_ttl: ClassVar[float | None] = None
    """Default expiry in seconds, refreshed by every write (``None``: never)."""

    state_history: ClassVar[int | None] = None
    """How many changes of each state of this class to keep (``None``: the URL's ``?history=``)."""

    __slots__ = ("_backend", "_key", "_registry", "_ttl")

    def __init_subclass__(
        cls,
        *,
        name: str | None = None,
        ttl: float | None = None,
        history: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls.state_name = check_name(cls.__name__ if name is None else name)
        if ttl is not None:
            cls.state_ttl = check_ttl(ttl)
        if history is not None:
            cls.state_history = check_history(history, f"class {cls.__name__}")

    def __init__(
        self,
        registry: AsyncStateRegistry,
        *,
        scope: str | int | None = None,
        ttl: float | Any | None = UNSET,
        name: str | None = None,
    ) -> None:
        # Integrations (aiogram's storage) build a state on every event, so this
        # stays cheap: the registry's exact class is compared by identity, and a
        # class's own name was checked once, by __init_subclass__.
        if type(registry) is not _registry_class[0]:
            _check_registry(self, registry)
        state_name = type(self).state_name if name is None else check_name(name)
        if state_name is None:
            raise UsageError(
                f"{type(self).__name__} has no state name: subclass it or pass name=..."
            )
        self._registry = registry
        self._backend = registry.backend
        history = type(self).state_history
        if history is not None:
            self._backend.keep_history(state_name, history)
        # tuple.__new__ skips NamedTuple's Python-level __new__ (half the cost).
        self._key = _new_key(StateKey, (state_name, check_scope(scope)))
        self._ttl: float | None = type(self).state_ttl if ttl is UNSET else check_ttl(ttl)

    def __repr__(self) -> str:
        scope = f" scope={self._key.scope!r}" if self._key.scope else ""
        return f"<{type(self).__name__} {self._key.name!r}{scope} on {self._backend.url}>"

    @property
    def name(self) -> str:
        """The state's name."""
        return self._key.name

    @property
    def scope(self) -> str:
        """The state's scope (``""`` when unscoped)."""
        return self._key.scope

    @property
    def ttl(self) -> float | None:
        """The expiry every write of this object sets, in seconds."""
        return self._ttl

    @property
    def registry(self) -> AsyncStateRegistry:
        """The registry this state is bound to."""
        return self._registry

    def _guard(self, write: bool) -> None:
        """Refuse a call that would wait on a transaction() of this very task.

        Almost no transaction is ever open, so the count is tested first: it is
        five times cheaper than the context variable the full check reads.
        """
        if OPEN_COUNT[0]:
            check_not_blocked(self._backend, self._key, write=write)

    async def get(self, key: str | None = None, default: JSONValue = None) -> JSONValue:
        """The value of ``key`` (``default`` if absent); without a key, the whole state."""
        if key is None:
            return await self.get_all()
        self._guard(False)
        value = await self._backend.get(self._key, check_key(key))
        return default if value is MISSING else value

    async def get_all(self) -> Document:
        """The whole state as a new dict (empty if it does not exist)."""
        self._guard(False)
        return await self._backend.get_all(self._key)

    async def set(self, key: str, value: JSONValue) -> None:
        """Store ``value`` under ``key``."""
        self._guard(True)
        await self._backend.set(self._key, check_key(key), check_value(value), self._ttl)

    async def update(
        self, mapping: Mapping[str, JSONValue] | None = None, /, **kwargs: JSONValue
    ) -> Document:
        """Store several values in one atomic step; return the whole updated state."""
        self._guard(True)
        # kwargs is a new dict of our own, so it is checked (and copied) in place.
        if mapping is not None:
            kwargs = {**mapping, **kwargs}
        document = check_own_document(kwargs, "update")
        return await self._backend.update(self._key, document, self._ttl)

    async def replace(self, mapping: Mapping[str, JSONValue]) -> None:
        """Make the state exactly ``mapping`` in one atomic step (``{}`` removes it).

        Unlike ``clear()`` then ``update()``, no reader ever sees the state empty
        or half written, and unlike a ``transaction()`` it takes no lock: it is
        one write, like ``update``. A write without a TTL keeps the state's expiry.
        """
        self._guard(True)
        if not isinstance(mapping, Mapping):
            raise InvalidValueError(
                f"replace() takes a mapping of keys to values, not {type(mapping).__name__}"
            )
        document = check_own_document(dict(mapping), "replace")
        await self._backend.replace(self._key, document, self._ttl)

    async def delete(self, key: str) -> bool:
        """Remove ``key``; return whether it existed."""
        return await self.delete_many([key]) == 1

    async def delete_many(self, keys: list[str]) -> int:
        """Remove several keys in one atomic step; return how many existed."""
        self._guard(True)
        fields = [check_key(k) for k in keys]
        return await self._backend.delete(self._key, fields, self._ttl)

    async def clear(self) -> bool:
        """Remove every key (the state ceases to exist); return whether it had any."""
        self._guard(True)
        return await self._backend.clear(self._key)

    async def incr(self, key: str, amount: int | float = 1) -> int | float:
        """Add ``amount`` to the number at ``key`` (missing counts as 0) atomically."""
        self._guard(True)
        return await self._backend.incr(self._key, check_key(key), amount, self._ttl)

    async def modify(self, fn: Modifier) -> Document:
        """Atomically replace the state by ``fn(copy_of_state)``; return the new state.

        ``fn`` is a plain function. It may return a new dict, or change its
        argument and return ``None``. It runs once, under the state's lock, so
        it should be quick; raising discards the change.
        """
        self._guard(True)
        return await self._backend.modify(self._key, fn, self._ttl)

    async def revision(self) -> int:
        """The state's latest revision: every change numbers it 1, 2, 3... (0: none yet).

        Compare it with a change's ``rev``, or pass it to ``watch(since=...)``
        to follow the state from exactly this point.
        """
        self._guard(False)
        return await self._backend.revision(self._key)

    def watch(
        self, since: int | None = None, *, timeout: float | None = None
    ) -> AsyncIterator[Change]:
        """Iterate over every change of the state, in revision order, as it happens.

        Without ``since`` it starts after the revision current when iteration
        begins; ``since=REV`` resumes after REV (``0``: from the oldest change
        still kept), so passing a ``revision()`` read earlier misses nothing in
        between. It never skips or repeats a change: when the
        changes it needs are no longer kept (it fell more than the log's size
        behind) it raises ChangesLostError. Iteration waits for the next
        change; with ``timeout`` it ends after that many seconds without one
        (as kafka-python's ``consumer_timeout_ms`` does), so a caller can keep
        a deadline of its own.
        """
        if since is not None:
            check_count("since", since)
        if timeout is not None and (type(timeout) not in (int, float) or not timeout > 0):
            raise InvalidValueError(f"timeout must be a number of seconds > 0, not {timeout!r}")
        return self._backend.watch(self._key, since, timeout)

    async def history(self, *, since: int = 0, limit: int | None = None) -> list[Change]:
        """The state's changes still kept after revision ``since``, oldest first.

        What a watcher would have seen, after the fact: every change keeps
        its time, who made it (``origin``) and each key's old and new value.
        The log keeps a state's latest changes (about 1,000, or the
        ``history=`` of its class or URL), so older ones may be gone; ``limit``
        returns only the last ``limit``.
        """
        check_count("since", since)
        if limit is not None:
            check_count("limit", limit)
        self._guard(False)
        return await self._backend.history(self._key, since, limit)

    async def as_of(self, rev: int) -> Document:
        """The state as it was at revision ``rev`` (read only; ``0``: before its first change).

        Worked out from the present, read together with its revision, and the
        log from ``rev`` on, of which only the changes up to that revision are
        undone: writes that come meanwhile change nothing. ChangesLostError when
        the log no longer holds change ``rev`` (it was trimmed, or the state
        expired since).
        """
        check_count("rev", rev)
        self._guard(False)
        data, latest = await self._backend.snapshot(self._key)
        kept = await self._backend.history(self._key, max(rev - 1, 0), None)
        undo(data, [c for c in kept if c.rev <= latest], rev, latest, self._key)
        return data

    async def restore(self, to: int) -> Document:
        """Make the state what it was at revision ``to``; return that document.

        One atomic step, under the state's lock: the present with every later
        change undone, from the old values the log kept. When that differs from
        the present it is a new revision (the past is never rewritten, so a
        restore can be undone too). ``to`` must be within the log's reach, or
        ChangesLostError says how far back it goes; ``0`` is the state before
        its first change (restoring it removes the state).
        """
        check_count("to", to)
        self._guard(True)
        async with self._backend.transaction(self._key, self._ttl) as data:
            latest = await self._backend.revision(self._key)
            kept = await self._backend.history(self._key, max(to - 1, 0), None)
            undo(data, kept, to, latest, self._key)
            restored = dict(data)
        return restored

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Document]:
        """Yield the state as a mutable dict; write it back atomically on exit.

        An exception inside the block discards the changes. Keep the block short:
        on the memory and file backends it holds the state's lock.
        """
        self._guard(True)
        async with self._backend.transaction(self._key, self._ttl) as data:
            with mark_transaction(self._backend, self._key):
                yield data
            # Validated here, once for every backend: what the block left in the
            # dict must be a document, or the backend discards it.
            check_document(data, f"transaction({self._key})")
