"""The line a registry's waiters for one state's Redis lock stand in (turns.py):
first come, first served; a waiter that gives up or is cancelled leaves the line
without blocking it; a turn lasts at most a lease; a forked child starts afresh."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

from qstate._keys import StateKey
from qstate.backends.redis.turns import AsyncTurns, Turn, Turns

KEY = StateKey("Hot")
OTHER = StateKey("Cold")
LONG = 60.0
"""A deadline nobody reaches: a test failing here hangs visibly rather than passes."""


def later() -> float:
    return time.monotonic() + LONG


def test_threads_get_their_turns_in_arrival_order() -> None:
    turns = Turns(LONG)
    first = turns.enter(KEY, later())
    assert first is not None
    served: list[int] = []
    lined_up: list[int] = []

    def waiter(n: int) -> None:
        ticket = turns.enter(KEY, later())
        assert ticket is not None
        served.append(n)
        turns.leave(KEY, ticket)

    threads = []
    for n in range(20):
        thread = threading.Thread(target=waiter, args=(n,))
        thread.start()
        threads.append(thread)
        # Wait until this one stands in line, so that arrival order is known.
        while len(turns._lines[KEY]) < n + 2:
            time.sleep(0.001)
        lined_up.append(n)
    assert served == []  # nobody went while the first held the turn
    turns.leave(KEY, first)
    for thread in threads:
        thread.join(LONG)
    assert served == lined_up
    assert turns._lines == {}


def test_a_thread_past_its_deadline_leaves_the_line_and_the_next_one_goes() -> None:
    turns = Turns(LONG)
    first = turns.enter(KEY, later())
    assert first is not None
    assert turns.enter(KEY, time.monotonic() + 0.05) is None  # the first never left
    assert turns.enter(OTHER, time.monotonic()) is not None  # other states are apart
    got: list[Turn | None] = []
    thread = threading.Thread(target=lambda: got.append(turns.enter(KEY, later())))
    thread.start()
    while len(turns._lines[KEY]) < 2:
        time.sleep(0.001)
    turns.leave(KEY, first)
    thread.join(LONG)
    [ticket] = got
    assert ticket is not None
    turns.leave(KEY, ticket)
    assert list(turns._lines) == [OTHER]


def test_tasks_get_their_turns_in_arrival_order() -> None:
    async def main() -> None:
        turns = AsyncTurns(LONG)
        first = await turns.enter(KEY, later())
        assert first is not None
        served: list[int] = []

        async def waiter(n: int) -> None:
            ticket = await turns.enter(KEY, later())
            assert ticket is not None
            served.append(n)
            await asyncio.sleep(0)  # others run meanwhile: they must keep waiting
            turns.leave(KEY, ticket)

        tasks = [asyncio.create_task(waiter(n)) for n in range(20)]
        await asyncio.sleep(0)  # all of them line up, in creation order
        turns.leave(KEY, first)
        await asyncio.gather(*tasks)
        assert served == list(range(20))
        assert turns._lines == {}

    asyncio.run(main())


def test_a_cancelled_or_late_task_does_not_block_the_line() -> None:
    async def main() -> None:
        turns = AsyncTurns(LONG)
        first = await turns.enter(KEY, later())
        assert first is not None
        cancelled = asyncio.create_task(turns.enter(KEY, later()))
        late = asyncio.create_task(turns.enter(KEY, time.monotonic() + 0.05))
        last = asyncio.create_task(turns.enter(KEY, later()))
        await asyncio.sleep(0)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert await late is None
        turns.leave(KEY, first)
        ticket = await asyncio.wait_for(last, LONG)
        assert ticket is not None
        turns.leave(KEY, ticket)
        assert turns._lines == {}

    asyncio.run(main())


def test_a_task_cancelled_as_its_turn_comes_passes_it_on() -> None:
    async def main() -> None:
        turns = AsyncTurns(LONG)
        first = await turns.enter(KEY, later())
        assert first is not None
        second = asyncio.create_task(turns.enter(KEY, later()))
        third = asyncio.create_task(turns.enter(KEY, later()))
        await asyncio.sleep(0)
        turns.leave(KEY, first)  # sets the second's ticket; it has not run yet
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        ticket = await asyncio.wait_for(third, LONG)
        assert ticket is not None
        turns.leave(KEY, ticket)
        assert turns._lines == {}

    asyncio.run(main())


def test_a_turn_held_past_its_lease_is_taken_over() -> None:
    # A hung transaction (or a turn lost to an interrupt) holds the line up no
    # longer than the Redis lock's lease, which is what other processes wait.
    turns = Turns(lease=0.2)
    started = time.monotonic()
    hung = turns.enter(KEY, later())
    assert hung is not None
    taken = turns.enter(KEY, later())
    assert taken is not None
    assert time.monotonic() - started >= 0.2
    queued: list[Turn | None] = []
    thread = threading.Thread(target=lambda: queued.append(turns.enter(KEY, later())))
    thread.start()
    while len(turns._lines[KEY]) < 2:
        time.sleep(0.001)
    turns.leave(KEY, hung)  # the hung one ends at last: the line is not its any more
    assert turns._lines[KEY][0] is taken
    turns.leave(KEY, taken)
    thread.join(LONG)
    [last] = queued
    assert last is not None
    turns.leave(KEY, last)
    assert turns._lines == {}


def test_a_forked_child_starts_with_no_lines() -> None:
    turns = Turns(LONG)
    held = turns.enter(KEY, later())
    assert held is not None
    pid = os.fork()
    if pid == 0:  # the child: the holder is not here, its turn must not be waited for
        came = turns.enter(KEY, time.monotonic() + 5)
        os._exit(0 if came is not None and turns._lines[KEY][0] is came else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    turns.leave(KEY, held)
    assert turns._lines == {}


def test_a_turn_that_lapses_before_its_holder_runs_lets_it_go_on_without_one() -> None:
    # The turn came while its holder was not running (a busy event loop, a
    # descheduled thread) and lapsed: the holder goes on without a turn, and
    # nobody's turn or the line breaks (found: KeyError, IndexError, a spin).
    turns = Turns(lease=0.2)
    first = turns.enter(KEY, later())
    assert first is not None
    asleep, came = turns._join(KEY)  # in line, but its thread does not run yet
    assert not came
    turns.leave(KEY, first)  # asleep's turn comes; its lease starts
    third = turns.enter(KEY, later())  # takes the lapsed turn over after the lease
    assert third is not None
    assert turns._lines[KEY][0] is third
    assert turns._poll(KEY, asleep) is None, "it does not stand in line again"
    assert not turns._give_up(KEY, asleep)
    turns.leave(KEY, asleep)  # a no-op: the line is third's
    assert turns._lines[KEY][0] is third
    turns.leave(KEY, third)
    assert turns._lines == {}
