#!/usr/bin/env python3
"""aiogram's FSM storage: ``QStateStorage`` against aiogram's own storages, per operation.

In one run, on one event loop:

* Redis: ``QStateStorage`` and aiogram's ``RedisStorage`` on the same private
  redis-server over loopback. Target: at least 0.9× RedisStorage's
  throughput for every operation, although qstate validates every value, checks
  the transaction lock in every write script and makes ``update_data`` atomic
  (one script) where RedisStorage does a GET then a SET. The reads meet it; the
  writes miss it (about 0.75×, exit status 1) because each one is also logged,
  which the next rows show.
* Memory: ``QStateStorage("memory://")`` and aiogram's ``MemoryStorage``
  (a plain dict, shallow copies, no validation): ratios printed, no target.
* Where a write's time goes, without qstate's Python: raw redis-py EVALSHA of a
  script that only checks the transaction lock and writes, then of qstate's own
  script, which also logs the change (every write is a revision that ``history``
  and ``watch`` show; ``RedisStorage`` logs nothing). Shown for context.
* Building a state object (the storage keeps those of recent keys): target ≤ 1 µs.

The data is a typical dialog's: a few short strings and numbers.
Usage: python bench/bench_aiogram.py [--quick] [--url redis://...]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
import sys
import timeit
from collections.abc import Awaitable, Callable

import redis.asyncio
from _timing import Row, acompare, report
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.fsm.storage.redis import RedisStorage
from bench_redis import private_server

from qstate import AsyncState, AsyncStateRegistry
from qstate._keys import StateKey
from qstate.backends.redis import layout
from qstate.integrations.aiogram import QStateStorage

REDIS_TARGET = 0.9
CONSTRUCTION_TARGET_US = 1.0
KEY = StorageKey(bot_id=42, chat_id=-100123, user_id=7)
DATA = {"name": "Ann", "age": 30, "phone": "+7 900 000-00-00", "step": 2}
Op = Callable[[], Awaitable[object]]


def operations(storage: BaseStorage) -> list[tuple[str, Op]]:
    # set_data alternates two documents, as a dialog's steps do: writing the same
    # one again would change nothing, which qstate logs as no change.
    documents = itertools.cycle([DATA, {**DATA, "step": 3}])
    return [
        ("set_state", lambda: storage.set_state(KEY, "Signup:age")),
        ("get_state", lambda: storage.get_state(KEY)),
        ("set_data", lambda: storage.set_data(KEY, next(documents))),
        ("get_data", lambda: storage.get_data(KEY)),
        ("update_data", lambda: storage.update_data(KEY, {"step": 3})),
        ("get_value", lambda: storage.get_value(KEY, "name")),
    ]


async def compare_storages(
    group: str,
    ours: BaseStorage,
    baseline_name: str,
    theirs: BaseStorage,
    run: dict[str, int],
    target: float | None,
) -> list[Row]:
    for storage in (ours, theirs):
        await storage.set_state(KEY, "Signup:name")
        await storage.set_data(KEY, DATA)
    rows = []
    for (name, mine), (_, base) in zip(operations(ours), operations(theirs), strict=True):
        rows.append(await acompare(group, name, mine, baseline_name, base, **run, target=target))
    return rows


NO_LOG_SET = """
if redis.call('EXISTS', KEYS[2]) == 1 then return redis.error_reply('QSTATE_LOCKED') end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 0
"""
"""qstate's SET script without its change log: the lock check and the write."""


async def write_cost_rows(url: str, theirs: RedisStorage, run: dict[str, int]) -> list[Row]:
    """Where set_state's time goes, in raw redis-py calls (no qstate code): a
    script that only checks the transaction lock, then qstate's own script,
    which also appends the change to the state's log."""
    client = redis.asyncio.Redis.from_url(url)
    data = layout.data_key("qstate", StateKey("aiogram.state", "42:-100123:7:default"))
    keys = [data, layout.lock_key(data), layout.log_key(data), layout.counter_key(data)]
    origin = json.dumps({"host": "bench", "pid": 1})
    rows = []
    for name, source in [("raw: lock check + HSET", NO_LOG_SET), ("raw: + the log", layout.SET)]:
        sha = await client.script_load(source)

        def call(sha: str = sha) -> Awaitable[object]:
            return client.evalsha(sha, 4, *keys, "state", '"Signup:age"', "", origin)

        def baseline() -> Awaitable[object]:
            return theirs.set_state(KEY, "Signup:age")

        rows.append(
            await acompare("redis", name, call, "RedisStorage", baseline, **run, target=None)
        )
    await client.aclose()
    return rows


async def all_rows(url: str, run: dict[str, int]) -> list[Row]:
    ours = QStateStorage(url)
    theirs = RedisStorage.from_url(url)
    rows = await compare_storages("redis", ours, "RedisStorage", theirs, run, REDIS_TARGET)
    rows += await write_cost_rows(url, theirs, run)
    await ours.close()
    await theirs.close()
    memory = QStateStorage("memory://")
    rows += await compare_storages("memory", memory, "MemoryStorage", MemoryStorage(), run, None)
    await memory.close()
    return rows


def construction_us() -> dict[str, float]:
    """Median-free minimum of repeats: what building a state costs, load aside."""

    class Data(AsyncState, name="aiogram.data"):
        pass

    registry = AsyncStateRegistry("memory://")
    storage = QStateStorage(registry)
    scope = "42:-100123:7:default"
    storage.data_of(KEY)
    again = dataclasses.replace(KEY)  # equal, not the same object
    cases = {
        "Data(registry, scope=...)": lambda: Data(registry, scope=scope),
        "Data(registry)": lambda: Data(registry),
        "registry.state(name, scope=...)": lambda: registry.state("aiogram.data", scope=scope),
        "QStateStorage.data_of(key), an equal new key as events bring": lambda: storage.data_of(
            again
        ),
    }
    n = 100_000
    return {
        name: min(timeit.repeat(fn, number=n, repeat=7)) / n * 1e6 for name, fn in cases.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="QStateStorage vs aiogram's storages")
    parser.add_argument("--quick", action="store_true", help="fewer operations (noisier)")
    parser.add_argument("--url", help="use this Redis instead of a private redis-server")
    args = parser.parse_args()
    run = {"n": 100, "repeats": 25} if args.quick else {"n": 300, "repeats": 101}
    if args.url:
        rows = asyncio.run(all_rows(args.url, run))
    else:
        with private_server() as url:
            rows = asyncio.run(all_rows(url, run))
    ok = report("QStateStorage vs aiogram's RedisStorage / MemoryStorage (median)", rows)
    print("\nbuilding a state object (minimum of 7 repeats of 100,000):")
    costs = construction_us()
    for name, us in costs.items():
        print(f"  {name:62s} {us:6.3f} µs")
    met = costs["Data(registry, scope=...)"] <= CONSTRUCTION_TARGET_US
    verdict = "met" if met else "MISSED"
    print(f"  target: ≤ {CONSTRUCTION_TARGET_US} µs for a state with a scope: {verdict}")
    return 0 if ok and met else 1


if __name__ == "__main__":
    sys.exit(main())
