"""The async twin of the file backend: every SQLite call runs in a worker thread.

Kept apart from ``file.py`` so that sync users (and the CLI) do not import asyncio.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from ..._async.backend import AsyncBackend
from ..._changes import Change
from ..._codec import JSONValue
from ..._keys import StateKey
from ..._model import Document, Modifier, StateInfo, _Missing
from ._sync import POLL_INTERVAL, FileBackend

__all__ = ["AsyncFileBackend"]

_T = TypeVar("_T")


class AsyncFileBackend(AsyncBackend):
    """The async twin: every SQLite call runs in a worker thread, never on the loop."""

    locks_store_in_transaction = True
    keeps_revisions = True

    def __init__(self, sync: FileBackend) -> None:
        self.sync = sync
        self.url = sync.url
        self.history_size = sync.history_size
        # Writers queue here, on the loop, before taking a worker thread: were they
        # to queue in threads, a transaction held across a suspension point could need a
        # thread to commit while every thread waits for that very transaction.
        self._writers = asyncio.Lock()

    def keep_history(self, name: str, size: int) -> None:
        self.sync.keep_history(name, size)  # the sync backend does the writing

    async def _write(self, fn: Callable[..., _T], *args: Any) -> _T:
        async with self._writers:
            return await asyncio.to_thread(fn, *args)

    async def get(self, key: StateKey, field: str) -> JSONValue | _Missing:
        return await asyncio.to_thread(self.sync.get, key, field)

    async def get_all(self, key: StateKey) -> Document:
        return await asyncio.to_thread(self.sync.get_all, key)

    async def set(self, key: StateKey, field: str, value: JSONValue, ttl: float | None) -> None:
        await self._write(self.sync.set, key, field, value, ttl)

    async def update(self, key: StateKey, mapping: Document, ttl: float | None) -> Document:
        return await self._write(self.sync.update, key, mapping, ttl)

    async def replace(self, key: StateKey, data: Document, ttl: float | None) -> None:
        await self._write(self.sync.replace, key, data, ttl)

    async def delete(self, key: StateKey, fields: Sequence[str], ttl: float | None) -> int:
        return await self._write(self.sync.delete, key, fields, ttl)

    async def clear(self, key: StateKey) -> bool:
        return await self._write(self.sync.clear, key)

    async def incr(
        self, key: StateKey, field: str, amount: int | float, ttl: float | None
    ) -> int | float:
        return await self._write(self.sync.incr, key, field, amount, ttl)

    async def modify(self, key: StateKey, fn: Modifier, ttl: float | None) -> Document:
        return await self._write(self.sync.modify, key, fn, ttl)

    async def list_states(self, prefix: str = "") -> list[StateInfo]:
        return await asyncio.to_thread(self.sync.list_states, prefix)

    @asynccontextmanager
    async def transaction(self, key: StateKey, ttl: float | None) -> AsyncIterator[Document]:
        async with self._writers:
            begun = asyncio.ensure_future(asyncio.to_thread(self.sync.begin, key))
            try:
                opened = await asyncio.shield(begun)
            except asyncio.CancelledError:
                # The thread still finishes begin(); end that transaction then.
                begun.add_done_callback(self._abort_when_begun)
                raise
            try:
                yield opened.data
            except BaseException:
                await asyncio.shield(asyncio.to_thread(self.sync.abort, opened.conn))
                raise
            await asyncio.shield(
                asyncio.to_thread(self.sync.commit, opened, key, opened.data, ttl)
            )

    def _abort_when_begun(self, begun: asyncio.Future[Any]) -> None:
        if not begun.cancelled() and begun.exception() is None:
            asyncio.get_running_loop().run_in_executor(None, self.sync.abort, begun.result().conn)

    async def revision(self, key: StateKey) -> int:
        return await asyncio.to_thread(self.sync.revision, key)

    async def snapshot(self, key: StateKey) -> tuple[Document, int]:
        return await asyncio.to_thread(self.sync.snapshot, key)

    async def history(self, key: StateKey, since: int, limit: int | None) -> list[Change]:
        return await asyncio.to_thread(self.sync.history, key, since, limit)

    async def watch(
        self, key: StateKey, since: int | None, timeout: float | None
    ) -> AsyncIterator[Change]:
        follower = await asyncio.to_thread(self.sync.follower, key, since)
        while True:
            changes = await asyncio.to_thread(follower.poll)
            for change in changes:
                yield change
            if not changes:
                if follower.idle(timeout):
                    return
                await asyncio.sleep(POLL_INTERVAL)

    async def health(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.health)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.sync.close)
