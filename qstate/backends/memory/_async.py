"""The in-process backend: the QTasks behaviour, with isolation and no leaks.

Each state is a ``_Doc``. Its ``mutex`` (always a ``threading.Lock``) guards
every read and change of its data and is never held across a suspension point or user
code: plain operations (``set``, ``update``, ``incr``...) are one short critical
section on it, so they cost about what QTasks' single lock costs, and readers
never wait for a transaction. Its ``lock`` (``asyncio.Lock`` in the async
flavour, ``threading.Lock`` in the sync one) is held for the whole body of a
``transaction()`` / ``modify()``; while ``in_transaction`` is set, plain writers
wait on that lock, so no write slips in between a transaction's read and its
commit. A transaction on one state never blocks another state.

A doc exists only while the state holds data or a transaction is open on it:
emptied docs are removed, so a million short-lived scopes leave no locks
behind. Whoever finds a doc ``dead`` (removed meanwhile) retries on a new one.

Every change is recorded, under the same mutex as the write, in the state's
``_Log``: its revision counter and a bounded deque of ``(rev, time, raw
changes)``. Logs live apart from docs, so a counter outlives its state by
``LINGER`` seconds, and a log with a watcher attached is never dropped (so a
watched state never restarts its count). A writer wakes the log's watchers.

Stored values are private copies. ``nested`` names the keys holding a list or
dict, the only values a reader must copy; scalars are immutable and returned as
they are, which keeps reads close to the speed of a bare dict.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from ..._async.backend import AsyncBackend
from ..._changes import LINGER, LOG_SIZE, Change, Raw, diff, entry, iso_time
from ..._codec import JSONValue, copy_value
from ..._errors import ChangesLostError, UsageError
from ..._keys import StateKey
from ..._model import MISSING, Document, StateInfo, _Missing, add, check_document
from ..._origin import current_task, origin
from ..._waiters import AsyncWaiter

_CONTAINERS = (dict, list)
_SWEEP_INTERVAL = 1.0
"""At most this often (seconds) a write also drops every expired state."""


class _Doc:
    __slots__ = ("data", "dead", "expires", "in_transaction", "lock", "mutex", "nested")

    def __init__(self) -> None:
        self.data: Document = {}
        self.nested: set[str] = set()
        self.mutex = threading.Lock()
        self.lock = asyncio.Lock()
        self.in_transaction = False
        self.expires: float | None = None
        self.dead = False

    def put(self, field: str, value: JSONValue) -> None:
        """Store a private value."""
        self.data[field] = value
        if type(value) in _CONTAINERS:
            self.nested.add(field)
        elif self.nested:
            self.nested.discard(field)

    def replace(self, data: Document) -> None:
        """Make ``data`` (private) the whole document."""
        self.data = data
        self.nested = {k for k, v in data.items() if type(v) in _CONTAINERS}

    def expired(self) -> bool:
        expires = self.expires
        return expires is not None and expires <= time.monotonic()

    def snapshot(self) -> Document:
        """A private copy of the document (caller holds ``mutex``)."""
        data = dict(self.data)
        for field in self.nested:
            data[field] = copy_value(data[field])
        return data


class _Log:
    """A state's revision counter and its last LOG_SIZE changes."""

    __slots__ = ("entries", "rev", "touched", "waiters")

    def __init__(self, size: int = LOG_SIZE) -> None:
        self.rev = 0
        self.entries: deque[tuple[int, float, tuple[Raw, ...] | list[Raw], str | None]] = deque(
            maxlen=size
        )
        """(rev, time, changed keys, task name): the host and pid are this process's."""
        self.waiters: set[AsyncWaiter] = set()
        self.touched = time.time()
        """When the state last changed or was found expired (for LINGER)."""


def _change(rev: int, when: float, raw: tuple[Raw, ...] | list[Raw], task: str | None) -> Change:
    """A logged change as watchers get it: entries built now, values copied out."""
    return Change(
        rev,
        iso_time(when),
        [
            entry(k, copy_value(old) if type(old) in _CONTAINERS else old,
                  copy_value(new) if type(new) in _CONTAINERS else new)
            for k, old, new in raw
        ],
        origin(task),
    )  # fmt: skip


class AsyncMemoryBackend(AsyncBackend):
    """States in this process's memory, private to one registry."""

    keeps_revisions = True

    def __init__(self, url: str = "memory://", history: int | None = None) -> None:
        self.url = url
        self.history_size = history
        self._docs: dict[StateKey, _Doc] = {}
        self._expiring: dict[StateKey, _Doc] = {}
        self._next_sweep = 0.0
        self._logs: dict[StateKey, _Log] = {}
        self._next_log_sweep = 0.0

    # -- locking -----------------------------------------------------------

    async def _lock_for_write(self, key: StateKey) -> _Doc:
        """The live doc of ``key`` with its mutex held and no transaction open on it."""
        while True:
            doc = self._docs.get(key)
            if doc is None:
                doc = self._docs.setdefault(key, _Doc())
            doc.mutex.acquire()
            if not (doc.dead or doc.in_transaction):
                if doc.expires is not None and doc.expired():
                    self._purge(key, doc)
                return doc
            doc.mutex.release()
            if doc.in_transaction:
                async with doc.lock:  # wait for the transaction to end, then retry
                    pass

    async def _lock_for_transaction(self, key: StateKey) -> _Doc:
        """The live doc of ``key`` with its lock held and ``in_transaction`` set."""
        while True:
            doc = self._docs.get(key)
            if doc is None:
                doc = self._docs.setdefault(key, _Doc())
            await doc.lock.acquire()
            with doc.mutex:
                if not doc.dead:
                    doc.in_transaction = True
                    if doc.expires is not None and doc.expired():
                        self._purge(key, doc)
                    return doc
            doc.lock.release()

    def _purge(self, key: StateKey, doc: _Doc) -> None:
        doc.replace({})
        doc.expires = None
        self._no_longer_expiring(key, doc)
        self._expired_log(key)

    def _expired_log(self, key: StateKey) -> None:
        """An expired state's history goes with it; its count lingers (expiry is no change)."""
        log = self._logs.get(key)
        if log is not None:
            log.entries.clear()
            log.touched = time.time()

    def _record(self, key: StateKey, raw: tuple[Raw, ...] | list[Raw]) -> None:
        """Give a change the state's next revision and wake its watchers (mutex held)."""
        log = self._logs.get(key)
        if log is None:
            log = self._logs[key] = _Log(self.history_size_of(key) or LOG_SIZE)
        log.rev += 1
        log.touched = now = time.time()
        log.entries.append((log.rev, now, raw, current_task()))
        if log.waiters:
            for waiter in log.waiters:
                waiter.set()

    def _finish(self, key: StateKey, doc: _Doc, ttl: float | None) -> None:
        """Apply the TTL refresh rule and drop the doc if empty (mutex held)."""
        if not doc.data:
            doc.dead = True
            doc.expires = None
            self._forget(key, doc)
        elif ttl is not None:
            doc.expires = time.monotonic() + ttl
            self._expiring[key] = doc

    def _forget(self, key: StateKey, doc: _Doc) -> None:
        """Drop the dead ``doc`` (its mutex held) unless ``key`` names a newer doc
        already: once ``doc`` was dropped, a writer may have begun one."""
        if self._docs.get(key) is doc:
            del self._docs[key]
        self._no_longer_expiring(key, doc)

    def _no_longer_expiring(self, key: StateKey, doc: _Doc) -> None:
        if self._expiring.get(key) is doc:
            del self._expiring[key]

    def _unlock(self, doc: _Doc) -> None:
        doc.mutex.release()
        if self._expiring:
            self._maybe_sweep()
        if len(self._logs) > len(self._docs):
            self._maybe_sweep_logs()

    def _maybe_sweep_logs(self) -> None:
        """Drop the logs of states gone for LINGER seconds and not watched (at most every 1 s)."""
        now = time.time()
        if now < self._next_log_sweep:
            return
        self._next_log_sweep = now + _SWEEP_INTERVAL
        for key, log in list(self._logs.items()):
            if key not in self._docs and not log.waiters and log.touched < now - LINGER:
                self._logs.pop(key, None)

    def _maybe_sweep(self) -> None:
        """Forget expired states that nobody reads or writes any more (at most every 1 s)."""
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_INTERVAL
        for key, doc in list(self._expiring.items()):
            with doc.mutex:
                expires = doc.expires
                if expires is not None and expires <= now and not doc.in_transaction:
                    doc.dead = True
                    self._forget(key, doc)
                    self._expired_log(key)

    async def health(self) -> dict[str, Any]:
        return {"states": len(self._docs), "note": "in this process only"}

    # -- reads -------------------------------------------------------------

    async def get(self, key: StateKey, field: str) -> JSONValue | _Missing:
        doc = self._docs.get(key)
        if doc is None or (doc.expires is not None and doc.expired()):
            return MISSING
        # No mutex: a dict lookup is atomic, and a stored value is never changed
        # in place (writers store new objects), so copying it outside is safe.
        value = doc.data.get(field, MISSING)
        return copy_value(value) if type(value) in _CONTAINERS else value

    async def get_all(self, key: StateKey) -> Document:
        doc = self._docs.get(key)
        if doc is None or (doc.expires is not None and doc.expired()):
            return {}
        # No with-block: on this hot path it cost more than the copy it guards,
        # and copying validated values cannot raise.
        doc.mutex.acquire()
        data = doc.snapshot()
        doc.mutex.release()
        return data

    async def list_states(self, prefix: str = "") -> list[StateInfo]:
        now = time.monotonic()
        found = []
        for key, doc in list(self._docs.items()):
            expires = doc.expires
            if not key.name.startswith(prefix) or (expires is not None and expires <= now):
                continue
            count = len(doc.data)
            if count:
                ttl = None if expires is None else max(expires - now, 0.0)
                found.append(StateInfo(key.name, key.scope, count, ttl))
        return sorted(found)

    # -- writes ------------------------------------------------------------

    def _plain_doc(self, key: StateKey) -> _Doc | None:
        """The doc with its mutex held in the common case (live, no transaction, no
        expiry), else None: set and update then need no ``_lock_for_write`` call."""
        doc = self._docs.get(key)
        if doc is not None:
            doc.mutex.acquire()
            if not (doc.dead or doc.in_transaction or doc.expires is not None):
                return doc
            doc.mutex.release()
        return None

    async def set(self, key: StateKey, field: str, value: JSONValue, ttl: float | None) -> None:
        doc = self._plain_doc(key) or await self._lock_for_write(key)
        self._record(key, ((field, doc.data.get(field, MISSING), value),))
        doc.put(field, value)
        if ttl is not None:
            self._finish(key, doc, ttl)
        self._unlock(doc)

    async def update(self, key: StateKey, mapping: Document, ttl: float | None) -> Document:
        doc = self._plain_doc(key) or await self._lock_for_write(key)
        if mapping:
            data = doc.data
            self._record(key, [(f, data.get(f, MISSING), v) for f, v in mapping.items()])
        for field, value in mapping.items():
            doc.put(field, value)
        if ttl is not None or not doc.data:
            self._finish(key, doc, ttl)
        result = doc.snapshot()
        self._unlock(doc)
        return result

    async def delete(self, key: StateKey, fields: Sequence[str], ttl: float | None) -> int:
        if key not in self._docs:
            return 0
        doc = await self._lock_for_write(key)
        removed: list[Raw] = []
        for field in fields:
            old = doc.data.pop(field, MISSING)
            if old is not MISSING:
                doc.nested.discard(field)
                removed.append((field, old, MISSING))
        if removed:
            self._record(key, removed)
        self._finish(key, doc, ttl if removed else None)
        self._unlock(doc)
        return len(removed)

    async def clear(self, key: StateKey) -> bool:
        if key not in self._docs:
            return False
        doc = await self._lock_for_write(key)
        existed = bool(doc.data)
        if existed:
            self._record(key, [(k, v, MISSING) for k, v in doc.data.items()])
        doc.replace({})
        self._finish(key, doc, None)
        self._unlock(doc)
        return existed

    async def incr(
        self, key: StateKey, field: str, amount: int | float, ttl: float | None
    ) -> int | float:
        doc = await self._lock_for_write(key)
        try:
            result = add(doc.data.get(field, MISSING), amount, field)
        except BaseException:
            self._finish(key, doc, None)
            self._unlock(doc)
            raise
        self._record(key, ((field, doc.data.get(field, MISSING), result),))
        doc.put(field, result)
        self._finish(key, doc, ttl)
        self._unlock(doc)
        return result

    async def replace(self, key: StateKey, data: Document, ttl: float | None) -> None:
        # One critical section on the doc's mutex, like update(): no lock taken,
        # yet never interleaved with a transaction (_lock_for_write waits for it).
        if not data and key not in self._docs:
            return
        doc = await self._lock_for_write(key)
        changed = diff(doc.data, data)
        if changed:
            self._record(key, changed)
        doc.replace(data)
        self._finish(key, doc, ttl)
        self._unlock(doc)

    @asynccontextmanager
    async def transaction(self, key: StateKey, ttl: float | None) -> AsyncIterator[Document]:
        doc = await self._lock_for_transaction(key)
        try:
            with doc.mutex:
                working = doc.snapshot()
            yield working
            document = check_document(working)
            with doc.mutex:
                changed = diff(doc.data, document)
                if doc.expires is not None and doc.expired():  # while the block ran
                    self._purge(key, doc)  # so the commit is a write after the expiry,
                    if changed:  # of the whole document
                        changed = diff({}, document)
                    else:  # or nothing at all: what expired stays expired
                        document = {}
                if changed:
                    self._record(key, changed)
                doc.replace(document)
                self._finish(key, doc, ttl)
        finally:
            with doc.mutex:
                doc.in_transaction = False
                if not doc.data:
                    self._finish(key, doc, None)
            doc.lock.release()

    # -- revisions ---------------------------------------------------------

    async def revision(self, key: StateKey) -> int:
        log = self._logs.get(key)
        return 0 if log is None else log.rev

    def keep_history(self, name: str, size: int) -> None:
        super().keep_history(name, size)
        for key, log in list(self._logs.items()):  # a class met after its first write
            if key.name == name and log.entries.maxlen != size:
                log.entries = deque(log.entries, maxlen=size)

    async def snapshot(self, key: StateKey) -> tuple[Document, int]:
        while True:
            doc = self._docs.get(key)
            if doc is None:
                log = self._logs.get(key)
                rev = 0 if log is None else log.rev
                if self._docs.get(key) is None and (log is None or log.rev == rev):
                    return {}, rev
                continue  # a write began meanwhile
            with doc.mutex:  # every change's revision is taken under it
                if doc.dead:
                    continue
                log = self._logs.get(key)
                data = {} if doc.expired() else doc.snapshot()
                return data, 0 if log is None else log.rev

    async def history(self, key: StateKey, since: int, limit: int | None) -> list[Change]:
        log = self._logs.get(key)
        doc = self._docs.get(key)
        if log is None or (doc is not None and doc.expired()):  # expired, not yet swept
            return []
        kept = [item for item in list(log.entries) if item[0] > since]  # list(): one C call
        if limit is not None:
            kept = kept[max(len(kept) - limit, 0) :]
        return [_change(*item) for item in kept]

    async def watch(
        self, key: StateKey, since: int | None, timeout: float | None
    ) -> AsyncIterator[Change]:
        log = self._logs.get(key)
        if log is None:  # a log to wait on; the first write will use it
            log = self._logs.setdefault(key, _Log(self.history_size_of(key) or LOG_SIZE))
        position = log.rev if since is None else since
        if position > log.rev:
            raise UsageError(f"revision {position} of {key} is ahead of its latest, {log.rev}")
        waiter = AsyncWaiter()
        log.waiters.add(waiter)  # pins the log: its count cannot restart while watched
        idle_until = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                kept = list(log.entries)  # one C call: never torn by a writer
                doc = self._docs.get(key)
                if kept and doc is not None and doc.expires is not None and doc.expired():
                    kept = []  # expired, not yet swept: its history went with it
                if kept and kept[-1][0] > position:
                    oldest = kept[0][0]
                    if oldest > position + 1:
                        raise ChangesLostError(
                            f"changes {position + 1}..{oldest - 1} of {key} are no longer "
                            f"kept (the log holds the last {log.entries.maxlen}); "
                            "read the state anew"
                        )
                    for item in kept[position + 1 - oldest :]:
                        position = item[0]
                        yield _change(*item)
                    if timeout is not None:
                        idle_until = time.monotonic() + timeout
                    continue
                if idle_until is None:
                    await waiter.wait(1.0)
                else:
                    left = idle_until - time.monotonic()
                    if left <= 0:
                        return
                    await waiter.wait(min(left, 1.0))
        finally:
            log.waiters.discard(waiter)
