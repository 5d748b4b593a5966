"""Waiting in line, within one process, for a state's Redis lock.

The lock itself lives in Redis and is polled: a waiter cannot be woken by the
server. Left to poll on their own, 200 threads or tasks of one registry waiting
for one hot state flood the server and the GIL with retries, slow the holder
down, and win the lock in no order: backing off, the longest waiters poll least
often, so some waited past ``lock_wait`` while later ones came and went.
Here they line up first, in arrival order, and only the one at the front polls
the lock; so a wait is bounded by the work queued before it in this process.

``AsyncTurns`` serves the tasks of one event loop, ``Turns`` the threads of a
process (each flavour of the Redis backend holds one).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from typing import Generic, Protocol, TypeVar

from ..._keys import StateKey


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0)


class _Ticket(Protocol):
    def set(self) -> None: ...
    def is_set(self) -> bool: ...


T = TypeVar("T", bound=_Ticket)

AsyncTurn = asyncio.Event
"""A turn of ``AsyncTurns``: set once it has come."""
Turn = threading.Event
"""A turn of ``Turns``: set once it has come."""


class _Lines(Generic[T]):
    """A line of tickets per state; the front ticket is set: its holder's turn."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()  # uncontended in the async flavour
        self._lines: dict[StateKey, deque[T]] = {}

    def _join(self, key: StateKey, ticket: T) -> bool:
        """Queue ``ticket``; True if it is the front one (its turn has come)."""
        with self._mutex:
            line = self._lines.setdefault(key, deque())
            line.append(ticket)
            if len(line) > 1:
                return False
            ticket.set()
            return True

    def _give_up(self, key: StateKey, ticket: T) -> bool:
        """Leave the line unserved; True if the turn came meanwhile (then it is ours)."""
        with self._mutex:
            if ticket.is_set():
                return True
            self._lines[key].remove(ticket)
            return False

    def leave(self, key: StateKey, ticket: T) -> None:
        """End the turn ``enter`` gave: the next in line (if any) goes."""
        with self._mutex:
            line = self._lines[key]
            line.remove(ticket)
            if line:
                line[0].set()
            else:
                del self._lines[key]


class AsyncTurns(_Lines[asyncio.Event]):
    """First come, first served, per state, for the tasks of one event loop."""

    async def enter(self, key: StateKey, deadline: float) -> asyncio.Event | None:
        """Wait for this task's turn on ``key``: its ticket (give it to ``leave``),
        or None once ``time.monotonic()`` passes ``deadline``."""
        ticket = asyncio.Event()
        if self._join(key, ticket):
            return ticket
        try:
            async with asyncio.timeout(_left(deadline)):
                await ticket.wait()
        except TimeoutError:
            return ticket if self._give_up(key, ticket) else None
        except BaseException:  # cancelled while in line
            if self._give_up(key, ticket):
                self.leave(key, ticket)
            raise
        return ticket


class Turns(_Lines[threading.Event]):
    """First come, first served, per state, for the threads of one process."""

    def enter(self, key: StateKey, deadline: float) -> threading.Event | None:
        """Wait for this thread's turn on ``key``: its ticket (give it to ``leave``),
        or None once ``time.monotonic()`` passes ``deadline``."""
        ticket = threading.Event()
        if self._join(key, ticket):
            return ticket
        try:
            came = ticket.wait(_left(deadline))
        except BaseException:  # interrupted while in line
            if self._give_up(key, ticket):
                self.leave(key, ticket)
            raise
        if came or self._give_up(key, ticket):
            return ticket
        return None
