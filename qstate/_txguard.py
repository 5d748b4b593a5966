"""Detects a state being used inside a ``transaction()`` that would block it.

On the memory and file backends a transaction holds a lock, so a ``state.set``
inside the block would wait for itself forever (memory) or until the busy
timeout (file). A context variable remembers what the current thread or task
has open, so such a call fails at once with a clear UsageError instead.

Backends whose transactions lock the whole store (SQLite has one write lock per
database) set ``locks_store_in_transaction``; then any write through that
backend is refused inside the block, while reads of other states still work.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from ._errors import UsageError
from ._keys import StateKey

OPEN_TRANSACTIONS: ContextVar[frozenset[tuple[int, StateKey | None]]] = ContextVar(
    "qstate_open_transactions", default=frozenset()
)

OPEN_COUNT = [0]
"""How many transaction blocks are open in this process, in any thread or task.

Hot paths test ``OPEN_COUNT[0]`` before calling :func:`check_not_blocked`:
reading a list item costs a fifth of ``ContextVar.get()``, which every call
would otherwise pay although a transaction is almost never open. A thread that
opened a block has counted it itself, so it never misses its own."""

_count_lock = threading.Lock()


def _new_count_lock() -> None:
    # A fork while another thread held the lock would leave it held forever
    # in the child. The count itself is kept: at worst the child runs the
    # full check for blocks only its parent's threads had open.
    global _count_lock
    _count_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_count_lock)


def check_not_blocked(backend: object, key: StateKey, *, write: bool) -> None:
    """Raise UsageError if this call would wait on a transaction of this task.

    Callers on hot paths first test ``OPEN_COUNT[0]`` (zero almost always).
    """
    opened = OPEN_TRANSACTIONS.get()
    if (id(backend), key) in opened:
        raise UsageError(
            f"state {key} is inside its own transaction() here; "
            "read and change the dict the transaction yielded instead"
        )
    if write and (id(backend), None) in opened:
        raise UsageError(
            f"cannot write {key} inside a transaction() on {getattr(backend, 'url', '')}: "
            "the backend holds its write lock until the block ends; write after the block"
        )


@contextmanager
def mark_transaction(backend: object, key: StateKey) -> Iterator[None]:
    """Mark the state (and the store, if it is locked whole) open for the block."""
    marks: set[tuple[int, StateKey | None]] = {(id(backend), key)}
    if getattr(backend, "locks_store_in_transaction", False):  # any object in tests
        marks.add((id(backend), None))
    token = OPEN_TRANSACTIONS.set(OPEN_TRANSACTIONS.get() | marks)
    with _count_lock:
        OPEN_COUNT[0] += 1
    try:
        yield
    finally:
        with _count_lock:
            OPEN_COUNT[0] -= 1
        OPEN_TRANSACTIONS.reset(token)
