#!/usr/bin/env python3
"""Each Redis operation of qstate against raw redis-py doing the equivalent commands.

Baselines, in the same run, on the same private redis-server over loopback:

| qstate              | raw redis-py                                                   |
| ------------------- | -------------------------------------------------------------- |
| set                 | HSET                                                           |
| get                 | HGET                                                           |
| get_all             | HGETALL                                                        |
| update (2 keys)     | MULTI, HSET, HGETALL, EXEC (the update step, returning state)  |
| incr                | HINCRBY                                                        |
| modify              | WATCH, HGETALL, MULTI, HSET, EXEC (optimistic read-modify-write)|

qstate adds JSON validation, its lock check (every write is a script that
checks the state's lock) and decoding. A context row times raw redis-py sending
qstate's own set script: the gap between it and HSET is the price of the lock
check (a server-side script), the gap between it and qstate is qstate's own work.
Since revisions, that script also appends the change to the state's log.
The async flavour is then timed the same way against raw ``redis.asyncio``
(set, get, get_all, incr), on one event loop, then with 100 calls in flight at
once (a row's unit is one batch of 100), raw redis.asyncio using a blocking pool
of the same size as qstate's default (50 connections).
Targets (the decision on issue 12: the lock check in every write script stays):
at most 1.2× raw time for every operation, single ones and modify alike; as a
throughput ratio, at least 0.83. Exit status 1 when a target is missed.
Usage: python bench/bench_redis.py [--quick] [--url redis://...]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
import redis.asyncio
from _timing import Row, acompare, compare, report

from qstate import AsyncState, AsyncStateRegistry, State, StateRegistry
from qstate._origin import origin_text
from qstate.backends.redis import layout

SINGLE = MODIFY = 1 / 1.2
CONCURRENT = 100
"""Calls in flight at once in the concurrent rows (more than the pool holds)."""


class Bench(State):
    pass


class AsyncBench(AsyncState, name="Bench"):
    pass


RAW_KEY = "raw:{Bench}"
AsyncOp = Callable[[], Awaitable[object]]


@contextmanager
def private_server() -> Iterator[str]:
    """A throwaway redis-server on a free loopback port."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed; pass --url")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", directory],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            client = redis.Redis(port=port)
            for _ in range(100):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait()


def rows(url: str, run: dict[str, int]) -> list[Row]:
    registry = StateRegistry(url)
    ours = Bench(registry)
    ours.clear()
    ours.update({f"k{i}": i for i in range(8)})
    client = redis.Redis.from_url(url)
    key = RAW_KEY
    client.delete(key)
    client.hset(key, mapping={f"k{i}": i for i in range(8)})

    def raw_update() -> Any:
        pipe = client.pipeline(transaction=True)
        pipe.hset(key, mapping={"step": "2", "prompt": '"Введите телефон"'})
        pipe.hgetall(key)
        return pipe.execute()[-1]

    def raw_modify() -> Any:
        with client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    current = pipe.hgetall(key)
                    pipe.multi()
                    pipe.hset(key, "n", int(current.get(b"n", 0)) + 1)
                    return pipe.execute()
                except redis.WatchError:
                    continue

    lock_checked_set = client.script_load(layout.SET)

    def raw_script_set() -> Any:
        # the same EVALSHA qstate sends: shows what the script costs vs qstate's own work
        keys = (key, layout.lock_key(key), layout.log_key(key), layout.counter_key(key))
        # ARGV ends with the writer's history size ("": the log's own) and the origin
        return client.evalsha(lock_checked_set, 4, *keys, "step", "1", "", origin_text())

    def bump(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "n": data.get("n", 0) + 1}

    cases: list[tuple[str, Callable[[], object], str, Callable[[], object], float | None]] = [
        ("set", lambda: ours.set("step", 1), "HSET", lambda: client.hset(key, "step", 1), SINGLE),
        ("set", lambda: ours.set("step", 1), "EVALSHA of qstate's set script",
         raw_script_set, None),
        ("get", lambda: ours.get("step"), "HGET", lambda: client.hget(key, "step"), SINGLE),
        ("get_all (10 keys)", ours.get_all, "HGETALL", lambda: client.hgetall(key), SINGLE),
        ("update (2 keys)", lambda: ours.update(step=2, prompt="Введите телефон"),
         "MULTI HSET HGETALL EXEC", raw_update, SINGLE),
        ("incr", lambda: ours.incr("n"), "HINCRBY", lambda: client.hincrby(key, "c", 1), SINGLE),
        ("modify", lambda: ours.modify(bump), "WATCH HGETALL MULTI HSET EXEC", raw_modify, MODIFY),
    ]  # fmt: skip
    result = [
        compare("redis", name, mine, base_name, base, **run, target=target)
        for name, mine, base_name, base, target in cases
    ]
    registry.close()
    client.close()
    return result


def async_rows(url: str, run: dict[str, int]) -> list[Row]:
    """The async flavour against raw ``redis.asyncio``, all on one event loop."""
    return asyncio.run(_async_rows(url, run))


async def _async_rows(url: str, run: dict[str, int]) -> list[Row]:
    registry = AsyncStateRegistry(url)
    ours = AsyncBench(registry)
    await ours.clear()
    await ours.update({f"k{i}": i for i in range(8)})
    client = redis.asyncio.Redis.from_url(url)
    await client.delete(RAW_KEY)
    await client.hset(RAW_KEY, mapping={f"k{i}": i for i in range(8)})
    cases: list[tuple[str, AsyncOp, str, AsyncOp]] = [
        ("set", lambda: ours.set("step", 1), "HSET", lambda: client.hset(RAW_KEY, "step", 1)),
        ("get", lambda: ours.get("step"), "HGET", lambda: client.hget(RAW_KEY, "step")),
        ("get_all (10 keys)", ours.get_all, "HGETALL", lambda: client.hgetall(RAW_KEY)),
        ("incr", lambda: ours.incr("n"), "HINCRBY", lambda: client.hincrby(RAW_KEY, "c", 1)),
    ]  # fmt: skip
    result = [
        await acompare("redis async", name, mine, base_name, base, **run, target=SINGLE)
        for name, mine, base_name, base in cases
    ]
    # 100 calls at once: both sides queue for the same number of pooled connections.
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url, max_connections=layout.DEFAULT_MAX_CONNECTIONS, timeout=5
    )
    pooled = redis.asyncio.Redis(connection_pool=pool)

    def at_once(call: AsyncOp) -> AsyncOp:
        async def hundred() -> object:
            return await asyncio.gather(*(call() for _ in range(CONCURRENT)))

        return hundred

    concurrent: list[tuple[str, AsyncOp, str, AsyncOp]] = [
        ("100 × get at once", at_once(lambda: ours.get("step")),
         "100 × HGET at once", at_once(lambda: pooled.hget(RAW_KEY, "step"))),
        ("100 × set at once", at_once(lambda: ours.set("step", 1)),
         "100 × HSET at once", at_once(lambda: pooled.hset(RAW_KEY, "step", 1))),
        ("100 × incr at once", at_once(lambda: ours.incr("n")),
         "100 × HINCRBY at once", at_once(lambda: pooled.hincrby(RAW_KEY, "c", 1))),
    ]  # fmt: skip
    batches = {"n": max(run["n"] // 20, 5), "repeats": run["repeats"]}
    result += [
        await acompare("redis async", name, mine, base_name, base, **batches, target=SINGLE)
        for name, mine, base_name, base in concurrent
    ]
    await registry.aclose()
    await client.aclose()
    await pooled.aclose()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description="qstate on Redis vs raw redis-py")
    parser.add_argument("--quick", action="store_true", help="fewer operations (noisier)")
    parser.add_argument("--url", help="use this Redis instead of a private redis-server")
    args = parser.parse_args()
    run = {"n": 100, "repeats": 25} if args.quick else {"n": 300, "repeats": 101}
    if args.url:
        table = rows(args.url, run) + async_rows(args.url, run)
    else:
        with private_server() as url:
            table = rows(url, run) + async_rows(url, run)
    ok = report("qstate on Redis vs raw redis-py (median throughput)", table)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
