"""Threads and processes together on shared states, for a bounded time: exact counters."""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from qstate import StateRegistry

THREADS, PROCESSES, SECONDS = 16, 4, 3.0


def _mixed_work(url: str, worker: str, seconds: float, tallies: Any) -> None:
    """Mixed set/update/incr/modify/delete on shared states; count what succeeded."""
    rng = random.Random(worker)
    done = {"incr": 0, "modify": 0}
    with StateRegistry(url) as registry:
        shared = registry.state("Load", scope="shared")
        scratch = registry.state("Load", scope=f"scratch-{rng.randrange(4)}")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            operation = rng.randrange(6)
            if operation == 0:
                shared.incr("incr")
                done["incr"] += 1
            elif operation == 1:
                shared.modify(lambda d: {**d, "modify": d.get("modify", 0) + 1})
                done["modify"] += 1
            elif operation == 2:
                scratch.set(f"{worker}-{rng.randrange(20)}", {"at": time.time(), "by": worker})
            elif operation == 3:
                scratch.update({f"u{rng.randrange(5)}": worker, "seen": [worker]})
            elif operation == 4:
                scratch.delete(f"{worker}-{rng.randrange(20)}")
            else:
                shared.get_all()
    tallies.put((worker, done))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["file", pytest.param("redis", marks=pytest.mark.redis)])
def test_threads_and_processes_together(backend: str, tmp_path: Path, request: Any) -> None:
    url = (
        f"file:{tmp_path}/state.db" if backend == "file" else request.getfixturevalue("redis_url")
    )
    context = multiprocessing.get_context("spawn")
    tallies = context.Queue()
    processes = [
        context.Process(target=_mixed_work, args=(url, f"p{n}", SECONDS, tallies))
        for n in range(PROCESSES)
    ]
    threads = [
        threading.Thread(target=_mixed_work, args=(url, f"t{n}", SECONDS, tallies))
        for n in range(THREADS)
    ]
    started = time.monotonic()
    for process in processes:
        process.start()
    for thread in threads:
        thread.start()
    results = [tallies.get(timeout=120) for _ in range(THREADS + PROCESSES)]
    for thread in threads:
        thread.join()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0, "a worker process failed (see its traceback above)"
    elapsed = time.monotonic() - started
    expected_incr = sum(done["incr"] for _, done in results)
    expected_modify = sum(done["modify"] for _, done in results)
    with StateRegistry(url) as registry:
        shared = registry.state("Load", scope="shared").get_all()
    assert shared == {"incr": expected_incr, "modify": expected_modify}
    print(
        f"\n{backend}: {THREADS} threads + {PROCESSES} processes for {elapsed:.1f} s: "
        f"{expected_incr} incr and {expected_modify} modify, counters exact"
    )
