"""A wake-up a writer gives a watcher, in both flavours under the names unasync expects.

The memory backend's async source says ``AsyncWaiter`` and ``await waiter.wait(t)``;
its generated sync twin says ``Waiter`` and ``waiter.wait(t)``. Writers call
``set()`` while holding the state's mutex, which neither flavour's event blocks on.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class AsyncWaiter:
    """An ``asyncio.Event`` with a bounded wait (set from the event loop's thread)."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> None:
        """Return when set or after ``timeout`` seconds, and reset for the next wait."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()


class Waiter:
    """A ``threading.Event`` with a bounded wait."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> None:
        """Return when set or after ``timeout`` seconds, and reset for the next wait."""
        self._event.wait(timeout)
        self._event.clear()
