"""No lost update: concurrent incr / modify / transaction end with exact totals."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from typing import Any

import pytest

from qstate import AsyncState, AsyncStateRegistry, State, StateRegistry


class Counter(State):
    pass


class AsyncCounter(AsyncState, name="Counter"):
    pass


def _bump(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "modified": data.get("modified", 0) + 1}


def _hammer(state: State, rounds: int) -> None:
    for _ in range(rounds):
        state.incr("incr")
        state.modify(_bump)
        with state.transaction() as data:
            data["tx"] = data.get("tx", 0) + 1


def test_threads_lose_no_update(backend_url: str) -> None:
    threads, rounds = 8, 60
    registry = StateRegistry(backend_url)
    state = Counter(registry)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            _hammer(Counter(registry), rounds)
        except BaseException as exc:  # surfaced below with the real traceback
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    total = threads * rounds
    assert state.get_all() == {"incr": total, "modified": total, "tx": total}
    registry.close()


def test_asyncio_tasks_lose_no_update(backend_url: str) -> None:
    tasks, rounds = 12, 40

    async def work(registry: AsyncStateRegistry) -> None:
        state = AsyncCounter(registry)
        for _ in range(rounds):
            await state.incr("incr")
            await state.modify(_bump)
            async with state.transaction() as data:
                current = data.get("tx", 0)
                await asyncio.sleep(0)  # let other tasks run inside the block
                data["tx"] = current + 1

    async def main() -> dict[str, Any]:
        async with AsyncStateRegistry(backend_url) as registry:
            await asyncio.gather(*(work(registry) for _ in range(tasks)))
            return await AsyncCounter(registry).get_all()

    total = tasks * rounds
    assert asyncio.run(main()) == {"incr": total, "modified": total, "tx": total}


def _process_worker(registry: StateRegistry, rounds: int, scope: str) -> None:
    _hammer(Counter(registry, scope=scope), rounds)


@pytest.mark.slow
def test_processes_lose_no_update_on_file(tmp_path: Any) -> None:
    """4+ forked processes share one SQLite file (and the parent's registry object)."""
    processes, rounds = 5, 200
    registry = StateRegistry(f"file:{tmp_path}/state.db")
    Counter(registry, scope="shared").set("before", "fork")  # the parent has open connections
    context = multiprocessing.get_context("fork")
    children = [
        context.Process(target=_process_worker, args=(registry, rounds, "shared"))
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    _hammer(Counter(registry, scope="shared"), rounds)  # the parent works at the same time
    for child in children:
        child.join(timeout=120)
        assert child.exitcode == 0
    total = (processes + 1) * rounds
    assert Counter(registry, scope="shared").get_all() == {
        "before": "fork",
        "incr": total,
        "modified": total,
        "tx": total,
    }
    registry.close()


def test_the_past_read_and_restored_while_others_write(backend_url: str) -> None:
    """Each incr makes one revision, so at revision r the counter was r: ``as_of``
    and ``restore`` must show exactly that however writes interleave with them."""
    with StateRegistry(backend_url) as registry:
        state = Counter(registry, scope="past")
        if not registry.backend.keeps_revisions:
            pytest.skip("the backend keeps no revisions")
        state.incr("n")
        errors: list[BaseException] = []

        def write() -> None:
            try:
                for _ in range(100):
                    state.incr("n")
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        writers = [threading.Thread(target=write) for _ in range(3)]
        for thread in writers:
            thread.start()
        while True:  # at least once; as long as the writers write
            writing = any(thread.is_alive() for thread in writers)
            latest = state.revision()
            for rev in {1, latest // 2 or 1, latest}:
                assert state.as_of(rev) == {"n": rev}
            if not writing:
                break
        for thread in writers:
            thread.join()
        assert not errors, errors
        latest = state.revision()
        assert latest == 301
        assert state.restore(100) == {"n": 100}
        assert state.incr("n") == 101
        assert state.as_of(latest) == {"n": 301}
        assert state.as_of(latest + 1) == {"n": 100}
        state.clear()
