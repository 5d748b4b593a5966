"""A complete third-party backend in a few dozen lines: the contract's three methods.

It keeps documents in this process (like ``memory://``, but shared by every
registry that opens ``example://``) and implements only ``get_all``,
``transaction`` and ``list_states``; every other operation is the base class's
default. ``conftest.py`` registers it in the ``qstate.backends`` entry-point
group, the way another package would, and the contract suite runs over it.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from qstate import StateInfo
from qstate.backends.base import AsyncBackend, Backend, Document, StateKey

_Entry = tuple[Document, float | None]  # the document and when it expires


class _Documents:
    """The storage both flavours share: live documents, copies in and out."""

    def __init__(self) -> None:
        self.entries: dict[StateKey, _Entry] = {}

    def read(self, key: StateKey) -> tuple[Document, float | None]:
        data, expires = self.entries.get(key, ({}, None))
        if expires is not None and expires <= time.time():
            return {}, None
        return copy.deepcopy(data), expires

    def write(
        self,
        key: StateKey,
        data: Document,
        read: Document,
        expires: float | None,
        ttl: float | None,
    ) -> None:
        now = time.time()
        lapsed = expires is not None and expires <= now  # while the block ran
        if not data or (lapsed and data == read):  # a block that changed nothing
            self.entries.pop(key, None)
        else:
            if ttl is not None:
                expires = now + ttl
            elif lapsed:
                expires = None  # this write comes after the expiry
            self.entries[key] = (copy.deepcopy(data), expires)

    def list(self, prefix: str) -> list[StateInfo]:
        now = time.time()
        return sorted(
            StateInfo(key.name, key.scope, len(data), None if exp is None else exp - now)
            for key, (data, exp) in list(self.entries.items())
            if key.name.startswith(prefix) and (exp is None or exp > now)
        )


_STORE = _Documents()
_LOCK = threading.Lock()


class ExampleBackend(Backend):
    url = "example://"
    locks_store_in_transaction = True  # one lock for every state: simple, and correct

    def get_all(self, key: StateKey) -> Document:
        return _STORE.read(key)[0]

    @contextmanager
    def transaction(self, key: StateKey, ttl: float | None) -> Iterator[Document]:
        with _LOCK:
            data, expires = _STORE.read(key)
            read = copy.deepcopy(data)
            yield data
            _STORE.write(key, data, read, expires, ttl)

    def list_states(self, prefix: str = "") -> list[StateInfo]:
        return _STORE.list(prefix)


class AsyncExampleBackend(AsyncBackend):
    url = "example://"
    locks_store_in_transaction = True

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def get_all(self, key: StateKey) -> Document:
        return _STORE.read(key)[0]

    @asynccontextmanager
    async def transaction(self, key: StateKey, ttl: float | None) -> AsyncIterator[Document]:
        async with self._lock:
            data, expires = _STORE.read(key)
            read = copy.deepcopy(data)
            yield data
            _STORE.write(key, data, read, expires, ttl)

    async def list_states(self, prefix: str = "") -> list[StateInfo]:
        return _STORE.list(prefix)


def open_sync(url: str) -> Backend:
    return ExampleBackend()


def open_async(url: str) -> AsyncBackend:
    return AsyncExampleBackend()


def forget_everything() -> None:
    """A fresh store for the next test."""
    _STORE.entries.clear()
