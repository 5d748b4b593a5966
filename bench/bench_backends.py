#!/usr/bin/env python3
"""Throughput of the memory and file backends against their raw baselines.

Baselines, doing the same work in the same run:
* memory: QTasks' own registry (PyPI ``qtasks``, the behaviour qstate replaces)
  through its State objects doing the copies qstate does (``copy.deepcopy`` of
  what goes in and what comes out: the peer the issue-12 decision names, since
  validation and copies are the product), and, for context, the same registry
  without copies and a bare dict behind a ``threading.Lock``;
* file: raw ``sqlite3`` executing the statements qstate executes, with the same
  ``synchronous`` level and a commit per write.

Throughput is the median of several runs. Targets: memory ≥ 1.0× QTasks with
copies, file set/get ≥ 0.8× raw sqlite3. Exit status 1 when a target is missed.
Usage: python bench/bench_backends.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import itertools
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _timing import Row, acompare, compare, report
from qtasks.plugins.states import AsyncState as QTasksAsyncState
from qtasks.plugins.states import SyncState as QTasksState
from qtasks.plugins.states.registry import AsyncStateRegistry as QTasksAsyncRegistry
from qtasks.plugins.states.registry import SyncStateRegistry as QTasksRegistry

from qstate import AsyncState, AsyncStateRegistry, State, StateRegistry
from qstate.backends.file import layout as sql

PROMPT = "Введите телефон"


class Bench(State):
    pass


class AsyncBench(AsyncState, name="Bench"):
    pass


class QBench(QTasksState):  # type: ignore[misc]
    pass


class QAsyncBench(QTasksAsyncState):  # type: ignore[misc]
    pass


def memory_rows(run: dict[str, int]) -> list[Row]:
    ours = Bench(StateRegistry("memory://"))
    theirs = QBench(QTasksRegistry(), QBench)
    lock, raw = threading.Lock(), dict[str, Any]()

    def raw_set() -> None:
        with lock:
            raw["step"] = 1

    def raw_get() -> Any:
        with lock:
            return raw.get("step")

    def raw_update() -> dict[str, Any]:
        with lock:
            raw.update(step=2, prompt=PROMPT)
            return dict(raw)

    for state in (ours, theirs):
        state.update(**{f"k{i}": i for i in range(8)})
    deep = copy.deepcopy
    ops = {
        "set": (
            lambda: ours.set("step", 1),
            lambda: theirs.set("step", deep(1)),
            lambda: theirs.set("step", 1),
            raw_set,
        ),
        "get": (
            lambda: ours.get("step"),
            lambda: deep(theirs.get("step")),
            lambda: theirs.get("step"),
            raw_get,
        ),
        "get_all (10 keys)": (
            ours.get_all,
            lambda: deep(theirs.get_all()),
            theirs.get_all,
            lambda: dict(raw),
        ),
        "update (2 keys)": (
            lambda: ours.update(step=2, prompt=PROMPT),
            lambda: deep(theirs.update(**deep({"step": 2, "prompt": PROMPT}))),
            lambda: theirs.update(step=2, prompt=PROMPT),
            raw_update,
        ),
    }
    rows = []
    for name, (mine, copied, qtasks, bare) in ops.items():
        rows.append(compare("memory", name, mine, COPIED, copied, **run, target=1.0))
        rows.append(compare("memory", name, mine, "QTasks registry", qtasks, **run, target=None))
        rows.append(compare("memory", name, mine, "dict + Lock", bare, **run, target=None))
    return rows


COPIED = "QTasks + deepcopy in/out"


def async_memory_rows(run: dict[str, int]) -> list[Row]:
    ours = AsyncBench(AsyncStateRegistry("memory://"))
    theirs = QAsyncBench(QTasksAsyncRegistry(), QAsyncBench)
    deep = copy.deepcopy

    async def copied_get() -> object:
        return deep(await theirs.get("step"))

    async def copied_update() -> object:
        return deep(await theirs.update(**deep({"step": 2, "prompt": PROMPT})))

    ops: dict[str, tuple[Callable[[], Awaitable[object]], ...]] = {
        "set": (
            lambda: ours.set("step", 1),
            lambda: theirs.set("step", deep(1)),
            lambda: theirs.set("step", 1),
        ),
        "get": (lambda: ours.get("step"), copied_get, lambda: theirs.get("step")),
        "update (2 keys)": (
            lambda: ours.update(step=2, prompt=PROMPT),
            copied_update,
            lambda: theirs.update(step=2, prompt=PROMPT),
        ),
    }
    rows = []
    for name, (mine, copied, qtasks) in ops.items():
        rows.append(
            asyncio.run(acompare("memory async", name, mine, COPIED, copied, **run, target=1.0))
        )
        rows.append(
            asyncio.run(
                acompare("memory async", name, mine, "QTasks registry", qtasks, **run, target=None)
            )
        )
    return rows


def file_rows(directory: Path, run: dict[str, int]) -> list[Row]:
    return [row for level in ("normal", "full") for row in _file_rows(directory, level, run)]


def _file_rows(directory: Path, level: str, run: dict[str, int]) -> list[Row]:
    """qstate's set/get against sqlite3 executing the very statements qstate executes."""
    registry = StateRegistry(f"file:{directory}/qstate-{level}.db?synchronous={level}")
    ours = Bench(registry)
    ours.set("step", 0)
    raw = sqlite3.connect(directory / f"raw-{level}.db", isolation_level=None)
    raw.execute("PRAGMA journal_mode = WAL")
    raw.execute(f"PRAGMA synchronous = {level.upper()}")
    for statement in sql.SCHEMA:
        raw.execute(statement)

    # Both sides write a new value each time: SQLite commits an upsert of the
    # value already stored without writing a page, let alone syncing one.
    values = itertools.count()

    def raw_set() -> None:
        raw.execute("BEGIN IMMEDIATE")
        raw.execute(
            sql.UPSERT_KEEPING_EXPIRY, ("Bench", "", "step", time.time(), str(next(values)))
        )
        raw.execute("COMMIT")

    def raw_get() -> Any:
        return raw.execute(sql.GET, ("Bench", "", "step", time.time())).fetchone()

    raw_set()
    group = f"file ({level})"
    writes = {"n": run["n"] // 4, "repeats": run["repeats"]}
    rows = [
        compare(
            group,
            "set",
            lambda: ours.set("step", next(values)),
            "sqlite3 same upsert+commit",
            raw_set,
            **writes,
            target=0.8,
        ),
        compare(
            group,
            "get",
            lambda: ours.get("step"),
            "sqlite3 same SELECT",
            raw_get,
            **run,
            target=0.8,
        ),
    ]
    registry.close()
    raw.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description="qstate backends vs raw baselines")
    parser.add_argument("--quick", action="store_true", help="fewer operations (noisier)")
    args = parser.parse_args()
    run = {"n": 1_000, "repeats": 25} if args.quick else {"n": 3_000, "repeats": 101}
    rows = memory_rows(run) + async_memory_rows(run)
    with tempfile.TemporaryDirectory() as directory:
        rows += file_rows(Path(directory), {"n": run["n"] // 4, "repeats": run["repeats"]})
    ok = report("qstate vs raw baselines (median throughput)", rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
