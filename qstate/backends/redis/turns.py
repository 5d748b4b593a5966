"""Waiting in line, within one process, for a state's Redis lock.

The lock itself lives in Redis and is polled: a waiter cannot be woken by the
server. Left to poll on their own, 200 threads or tasks of one registry waiting
for one hot state flood the server and the GIL with retries, slow the holder
down, and win the lock in no order: backing off, the longest waiters poll least
often, so some waited past ``lock_wait`` while later ones came and went.
Here they line up first, in arrival order, and only the one at the front polls
the lock; so a wait is bounded by the work queued before it in this process.

A turn is held as long as the Redis lock it leads to (a transaction's body
included), and lasts at most the lock's lease, as the lock does: a waiter
behind a turn older than that takes it over. So a hung transaction, or a turn
lost to a KeyboardInterrupt between two bytecodes, holds up this process's
waiters no longer than it holds up the other processes. After ``fork()`` the
child starts with no lines: the threads that stood in them are not there.

``AsyncTurns`` serves the tasks of one event loop, ``Turns`` the threads of a
process (each flavour of the Redis backend holds one).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import weakref
from collections import deque
from contextlib import suppress
from typing import Any, Generic, Protocol, TypeVar

from ..._keys import StateKey


class _Event(Protocol):
    def set(self) -> None: ...


E = TypeVar("E", bound=_Event)


class _Turn(Generic[E]):
    """A place in a state's line; its ``event`` is set when its turn comes."""

    __slots__ = ("event", "lapsed", "since")

    def __init__(self, event: E | None) -> None:
        self.event = event  # None for a turn that came at once: nobody to wake
        self.since = 0.0  # when its turn came (time.monotonic())
        self.lapsed = False  # taken over after its lease: out of the line


AsyncTurn = _Turn[asyncio.Event]
"""A turn of ``AsyncTurns``."""
Turn = _Turn[threading.Event]
"""A turn of ``Turns``."""


class _Lines(Generic[E]):
    """A line of turns per state; the front one is the turn being held."""

    def __init__(self, lease: float) -> None:
        self._lease = lease
        self._mutex = threading.Lock()  # uncontended in the async flavour
        self._lines: dict[StateKey, deque[_Turn[E]]] = {}
        _EVERY.add(self)

    def _new_event(self) -> E:
        raise NotImplementedError

    def _join(self, key: StateKey) -> tuple[_Turn[E], bool]:
        """A new turn in ``key``'s line, and whether it came at once (an empty line)."""
        with self._mutex:
            line = self._lines.get(key)
            if line is None:
                turn: _Turn[E] = _Turn(None)
                turn.since = time.monotonic()
                self._lines[key] = deque([turn])
                return turn, True
            turn = _Turn(self._new_event())
            line.append(turn)
            return turn, False

    def _poll(self, key: StateKey, turn: _Turn[E]) -> float | None:
        """None if ``turn`` has come, else when the front turn's lease ends (a
        front turn past its lease is taken over first).

        A turn that came while its holder was not running (a busy event loop,
        a descheduled thread) may lapse before the holder sees it: the holder
        then goes on without a turn, polling the lock as every waiter did
        before lines existed, rather than stand in a line it is no longer in.
        """
        with self._mutex:
            if turn.lapsed:
                return None
            line = self._lines[key]  # holds ``turn``: only lapsing or leaving removes one
            now = time.monotonic()
            while line[0] is not turn and line[0].since + self._lease <= now:
                line.popleft().lapsed = True
                self._next(line, now)
            return None if line[0] is turn else line[0].since + self._lease

    @staticmethod
    def _next(line: deque[_Turn[E]], now: float) -> None:
        front = line[0]
        front.since = now
        if front.event is not None:
            front.event.set()

    def _pause(self, key: StateKey, turn: _Turn[E], deadline: float) -> float | None:
        """Seconds to wait before looking again, or None: waiting is over (see ``_outcome``)."""
        lease_end = self._poll(key, turn)
        now = time.monotonic()
        if lease_end is None or now >= deadline:
            return None
        return min(deadline, lease_end) - now

    def _outcome(self, key: StateKey, turn: _Turn[E]) -> _Turn[E] | None:
        """When waiting is over: ``turn`` if it came, else None (it left the line)."""
        came = self._poll(key, turn) is None or self._give_up(key, turn)
        return turn if came else None

    def _abandon(self, key: StateKey, turn: _Turn[E]) -> None:
        """Leave the line on an exception, passing the turn on if it had come."""
        if self._give_up(key, turn):
            self.leave(key, turn)

    def _give_up(self, key: StateKey, turn: _Turn[E]) -> bool:
        """Leave the line unserved; True if the turn came meanwhile (then it is ours)."""
        with self._mutex:
            if turn.lapsed:
                return False
            line = self._lines[key]
            if line[0] is turn:
                return True
            line.remove(turn)
            return False

    def leave(self, key: StateKey, turn: _Turn[E]) -> None:
        """End a turn ``enter`` gave: the next in line (if any) goes. A turn
        taken over after its lease (or lost in a fork) is already gone."""
        with self._mutex:
            line = self._lines.get(key)
            if line is None or line[0] is not turn:
                return
            line.popleft()
            if line:
                self._next(line, time.monotonic())
            else:
                del self._lines[key]

    def _forget(self) -> None:
        self._mutex = threading.Lock()  # another thread may have held it at the fork
        self._lines = {}


_EVERY: weakref.WeakSet[_Lines[Any]] = weakref.WeakSet()
"""Every line keeper of this process, for the child of a fork to empty."""


def _after_fork() -> None:
    for lines in list(_EVERY):
        lines._forget()


os.register_at_fork(after_in_child=_after_fork)


class AsyncTurns(_Lines[asyncio.Event]):
    """First come, first served, per state, for the tasks of one event loop."""

    def _new_event(self) -> asyncio.Event:
        return asyncio.Event()

    async def enter(self, key: StateKey, deadline: float) -> AsyncTurn | None:
        """Wait for this task's turn on ``key`` (give it to ``leave``), or None
        once ``time.monotonic()`` passes ``deadline``."""
        turn, came = self._join(key)
        if came:
            return turn
        assert turn.event is not None
        try:
            while (pause := self._pause(key, turn, deadline)) is not None:
                with suppress(TimeoutError):
                    async with asyncio.timeout(pause):
                        await turn.event.wait()
        except BaseException:  # cancelled while in line
            self._abandon(key, turn)
            raise
        return self._outcome(key, turn)


class Turns(_Lines[threading.Event]):
    """First come, first served, per state, for the threads of one process."""

    def _new_event(self) -> threading.Event:
        return threading.Event()

    def enter(self, key: StateKey, deadline: float) -> Turn | None:
        """Wait for this thread's turn on ``key`` (give it to ``leave``), or None
        once ``time.monotonic()`` passes ``deadline``."""
        turn, came = self._join(key)
        if came:
            return turn
        assert turn.event is not None
        try:
            while (pause := self._pause(key, turn, deadline)) is not None:
                turn.event.wait(pause)
        except BaseException:  # interrupted while in line
            self._abandon(key, turn)
            raise
        return self._outcome(key, turn)
