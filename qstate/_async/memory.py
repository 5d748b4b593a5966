"""The in-process backend: the QTasks behaviour, with isolation and no leaks.

Each state is a ``_Doc`` holding its data and its own lock, so a transaction on
one state never blocks another. A doc exists only while the state holds data
(or while someone holds its lock): emptied docs are removed, so a million
short-lived scopes do not leave a million locks behind. A writer that waited on
the lock of a doc removed meanwhile sees ``dead`` and retries on the new doc.

Readers take no lock. Stored values are never mutated in place (writers store
fresh copies and swap whole entries), and ``dict(d)`` / ``d.update(x)`` with str
keys are single atomic steps for the interpreter, so a reader always sees one
committed version of a document.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from .._codec import JSONValue, copy_value
from .._keys import StateKey
from .._model import MISSING, Document, StateInfo, _Missing, add, check_document
from .backend import AsyncBackend

_SWEEP_INTERVAL = 1.0
"""At most this often (seconds) a write also drops every expired state."""


class _Doc:
    __slots__ = ("data", "dead", "expires", "lock")

    def __init__(self) -> None:
        self.data: Document = {}
        self.lock = asyncio.Lock()
        self.expires: float | None = None
        self.dead = False

    def live_data(self) -> Document:
        """The data, or an empty dict once the state has expired."""
        expires = self.expires
        if expires is not None and expires <= time.monotonic():
            return {}
        return self.data


class AsyncMemoryBackend(AsyncBackend):
    """States in this process's memory, private to one registry."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._docs: dict[StateKey, _Doc] = {}
        self._expiring: dict[StateKey, _Doc] = {}
        self._next_sweep = 0.0

    # -- locking -----------------------------------------------------------

    async def _acquire(self, key: StateKey) -> _Doc:
        """Lock the live doc of ``key``, creating it; expired data is dropped first."""
        while True:
            doc = self._docs.get(key)
            if doc is None:
                doc = self._docs.setdefault(key, _Doc())
            await doc.lock.acquire()
            if not doc.dead:
                break
            doc.lock.release()
        if doc.expires is not None and doc.expires <= time.monotonic():
            doc.data = {}
            doc.expires = None
            self._expiring.pop(key, None)
        return doc

    def _release(self, key: StateKey, doc: _Doc, ttl: float | None) -> None:
        """Apply the TTL refresh rule, drop the doc if empty, unlock."""
        now = time.monotonic()
        if not doc.data:
            doc.dead = True
            doc.expires = None
            self._docs.pop(key, None)
            self._expiring.pop(key, None)
        elif ttl is not None:
            doc.expires = now + ttl
            self._expiring[key] = doc
        doc.lock.release()
        if self._expiring and now >= self._next_sweep:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        """Forget expired states that nobody reads or writes any more."""
        self._next_sweep = now + _SWEEP_INTERVAL
        for key, doc in list(self._expiring.items()):
            expires = doc.expires
            if expires is not None and expires <= now and not doc.lock.locked():
                doc.dead = True
                doc.data = {}
                self._docs.pop(key, None)
                self._expiring.pop(key, None)

    # -- reads -------------------------------------------------------------

    async def get(self, key: StateKey, field: str) -> JSONValue | _Missing:
        doc = self._docs.get(key)
        if doc is None:
            return MISSING
        value = doc.live_data().get(field, MISSING)
        return copy_value(value)

    async def get_all(self, key: StateKey) -> Document:
        doc = self._docs.get(key)
        if doc is None:
            return {}
        return {k: copy_value(v) for k, v in dict(doc.live_data()).items()}

    async def list_states(self, prefix: str = "") -> list[StateInfo]:
        now = time.monotonic()
        found = []
        for key, doc in list(self._docs.items()):
            data, expires = doc.live_data(), doc.expires
            if data and key.name.startswith(prefix):
                ttl = None if expires is None else max(expires - now, 0.0)
                found.append(StateInfo(key.name, key.scope, len(data), ttl))
        return sorted(found)

    # -- writes ------------------------------------------------------------

    async def set(self, key: StateKey, field: str, value: JSONValue, ttl: float | None) -> None:
        doc = await self._acquire(key)
        doc.data[field] = value
        self._release(key, doc, ttl)

    async def update(self, key: StateKey, mapping: Document, ttl: float | None) -> Document:
        doc = await self._acquire(key)
        doc.data.update(mapping)
        result = {k: copy_value(v) for k, v in doc.data.items()}
        self._release(key, doc, ttl)
        return result

    async def delete(self, key: StateKey, fields: Sequence[str], ttl: float | None) -> int:
        if key not in self._docs:
            return 0
        doc = await self._acquire(key)
        removed = sum(doc.data.pop(field, MISSING) is not MISSING for field in fields)
        self._release(key, doc, ttl if removed else None)
        return removed

    async def clear(self, key: StateKey) -> bool:
        if key not in self._docs:
            return False
        doc = await self._acquire(key)
        existed = bool(doc.data)
        doc.data = {}
        self._release(key, doc, None)
        return existed

    async def incr(
        self, key: StateKey, field: str, amount: int | float, ttl: float | None
    ) -> int | float:
        doc = await self._acquire(key)
        try:
            result = add(doc.data.get(field, MISSING), amount, field)
        except BaseException:
            self._release(key, doc, None)
            raise
        doc.data[field] = result
        self._release(key, doc, ttl)
        return result

    @asynccontextmanager
    async def transaction(self, key: StateKey, ttl: float | None) -> AsyncIterator[Document]:
        doc = await self._acquire(key)
        written = None
        try:
            working = {k: copy_value(v) for k, v in doc.data.items()}
            yield working
            doc.data = check_document(working)
            written = ttl
        finally:
            self._release(key, doc, written)
