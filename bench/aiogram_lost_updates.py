#!/usr/bin/env python3
"""How many ``update_data`` calls each storage loses when processes update one chat at once.

5 processes × 10 ``update_data`` calls, each adding a distinct key to the data
of one ``StorageKey``, started together. aiogram's ``RedisStorage`` inherits
``BaseStorage.update_data`` (GET, merge in Python, SET), so concurrent calls
overwrite each other; ``QStateStorage`` merges in one atomic step. The tests
check qstate's 0 (``tests/test_aiogram_e2e.py``); this prints everyone's count.
Usage: python bench/aiogram_lost_updates.py [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
from typing import Any

from aiogram.fsm.storage.base import BaseStorage, StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from bench_redis import private_server

from qstate.integrations.aiogram import QStateStorage

PROCESSES, CALLS = 5, 10
KEY = StorageKey(bot_id=42, chat_id=-100123, user_id=7)


def open_storage(kind: str, url: str) -> BaseStorage:
    return RedisStorage.from_url(url) if kind == "RedisStorage" else QStateStorage(url)


def worker(kind: str, url: str, number: int, start: Any) -> None:
    async def main() -> None:
        storage = open_storage(kind, url)
        start.wait()  # every process connected and ready: all go at once
        for call in range(CALLS):
            await storage.update_data(KEY, {f"w{number}-{call}": call})
        await storage.close()

    asyncio.run(main())


def lost(kind: str, url: str) -> int:
    async def clear() -> None:
        storage = open_storage(kind, url)
        await storage.set_data(KEY, {})
        await storage.close()

    async def count() -> int:
        storage = open_storage(kind, url)
        data = await storage.get_data(KEY)
        await storage.close()
        return PROCESSES * CALLS - len(data)

    asyncio.run(clear())
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    processes = [
        context.Process(target=worker, args=(kind, url, n, start)) for n in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    return asyncio.run(count())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with private_server() as redis_url, tempfile.TemporaryDirectory() as directory:
        cases = [
            ("RedisStorage", redis_url),
            ("QStateStorage", redis_url),
            ("QStateStorage", f"file:{directory}/bot.db"),
        ]
        print(f"{PROCESSES} processes × {CALLS} update_data calls, distinct keys, one chat:")
        for kind, url in cases:
            counts = [lost(kind, url) for _ in range(args.rounds)]
            where = "redis" if url.startswith("redis") else "file"
            print(f"  {kind:14s} on {where:5s}: lost {counts} of {PROCESSES * CALLS} per round")
    return 0


if __name__ == "__main__":
    sys.exit(main())
