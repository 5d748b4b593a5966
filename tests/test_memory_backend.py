"""What only the memory backend promises: no leaked locks, expired states dropped."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from qstate import AsyncState, AsyncStateRegistry, State, StateRegistry


class Session(State):
    pass


class AsyncSession(AsyncState, name="Session"):
    pass


def test_a_million_scopes_leave_no_locks_behind() -> None:
    registry = StateRegistry("memory://")
    backend = registry.backend
    for user in range(1_000_000):
        state = Session(registry, scope=user)
        if user % 10:
            state.get("step")  # a read of a missing state creates nothing
        else:
            state.set("step", 1)
            state.clear()
    assert backend._docs == {}  # type: ignore[attr-defined]
    assert Session(registry, scope="empty").update() == {}
    assert backend._docs == {}, "an empty update creates nothing"  # type: ignore[attr-defined]
    Session(registry, scope="kept").set("a", 1)
    assert len(backend._docs) == 1  # type: ignore[attr-defined]


def test_async_scopes_leave_no_locks_behind() -> None:
    async def main() -> None:
        registry = AsyncStateRegistry("memory://")
        for user in range(20_000):
            state = AsyncSession(registry, scope=user)
            await state.incr("n")
            async with state.transaction() as data:
                data.clear()
        assert registry.backend._docs == {}  # type: ignore[attr-defined]

    asyncio.run(main())


def test_expired_states_are_forgotten_without_being_read() -> None:
    registry = StateRegistry("memory://")
    for user in range(1000):
        Session(registry, scope=user, ttl=0.05).set("step", 1)
    time.sleep(1.1)  # past the sweep interval
    Session(registry, scope="trigger").set("a", 1)  # any write sweeps
    assert list(registry.backend._docs) == [("Session", "trigger")]  # type: ignore[attr-defined]


def test_registries_do_not_share_memory() -> None:
    one, two = StateRegistry("memory://"), StateRegistry("memory://")
    Session(one).set("a", 1)
    assert Session(two).get_all() == {}


def test_a_write_right_after_a_transaction_removed_the_state_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A transaction that empties a state drops its doc, then, as it ends, looks
    at that doc once more. A writer in between starts a new doc, which the end
    of the transaction must not drop (it did: the write was logged, its data lost).
    The doc's mutex is wrapped to let the writer in exactly there."""
    import threading

    from qstate.backends.memory import _sync as memory

    dropped, written = threading.Event(), threading.Event()

    class Gate:
        def __init__(self, doc: Any) -> None:
            self.lock, self.doc = threading.Lock(), doc

        def acquire(self, *args: Any) -> bool:
            return self.lock.acquire(*args)

        def release(self) -> None:
            self.lock.release()

        def __enter__(self) -> None:
            self.lock.acquire()

        def __exit__(self, *exc: object) -> None:
            self.lock.release()
            if self.doc.dead and self.doc.in_transaction and not dropped.is_set():
                dropped.set()
                assert written.wait(30), "the writer never ran"

    built = memory._Doc.__init__

    def gated(doc: Any) -> None:
        built(doc)
        doc.mutex = Gate(doc)

    monkeypatch.setattr(memory._Doc, "__init__", gated)
    registry = StateRegistry("memory://")
    state = registry.state("S")
    state.set("x", 1)

    def writer() -> None:
        assert dropped.wait(30)
        registry.state("S").set("y", 2)
        written.set()

    thread = threading.Thread(target=writer)
    thread.start()
    with state.transaction() as data:
        data.clear()
    thread.join()
    assert state.get_all() == {"y": 2}
    assert [change.changes for change in state.history()][-1] == [{"key": "y", "new": 2}]
