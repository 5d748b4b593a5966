#!/usr/bin/env python3
"""qstate at scale: a state of 100,000 keys and 100,000 states, on file and Redis.

Each CLI figure is a whole ``qstate`` process (start-up included), its wall
time and its peak memory (``/usr/bin/time``'s maximum resident set size), median of a few runs:

* ``get Big`` as a table on a pty (24 x 100): target ≤ 2 s and ≤ 100 MB;
* ``get Big`` as JSON into a pipe: target ≤ 1.5× a process doing the library's
  ``get_all`` plus ``json.dumps`` of it (the raw floor of printing the state);
* ``list`` (table on a pty, JSON into a pipe) with 100,000 + 1 states;
* ``export Big`` and ``export`` of everything;
* a one-key ``modify`` of the big state through the library, in process:
  target ≤ 1.5× a ``get_all`` (the copy ``fn`` receives) plus a ``set``.

The states are written through the library (the big one) and, for the
100,000 small ones, straight into the documented layout (an SQLite
``executemany``, a Redis pipeline) to keep the set-up short. Redis is a
private redis-server on a free loopback port. Exit status 1 when a target
is missed.
Usage: python bench/bench_scale.py [--keys N] [--states N] [--runs N]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import platform
import shutil
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from qstate import StateRegistry

QSTATE = str(Path(sys.executable).parent / "qstate")
TABLE_SECONDS, TABLE_MB, JSON_RATIO, MODIFY_RATIO = 2.0, 100.0, 1.5, 1.5


@dataclass
class Figure:
    backend: str
    operation: str
    seconds: float
    peak_mb: float | None = None
    baseline: str = ""
    baseline_seconds: float | None = None
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline_seconds is None:
            return None
        return self.seconds / self.baseline_seconds


TIME = shutil.which("time", path="/usr/bin:/bin")


def run_process(command: list[str], env: dict[str, str], *, tty: bool) -> tuple[float, float]:
    """Wall seconds and peak MB of one process, stdout to a pty (24 x 100) or a pipe.

    The peak comes from ``/usr/bin/time`` when there is one: Linux carries a
    process's peak across ``execve``, so a child forked straight from this big
    bench process would report the bench's own peak. ``wait4`` is the fallback.
    """
    peak_file = tempfile.NamedTemporaryFile(suffix=".maxrss")  # noqa: SIM115
    if TIME:
        command = [TIME, "-f", "%M", "-o", peak_file.name, *command]
    if tty:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        out: int = slave
    else:
        read_end, out = os.pipe()
        master = read_end
    drained = threading.Thread(target=_drain, args=(master,), daemon=True)
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    os.close(out)
    drained.start()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    drained.join(timeout=30)
    os.close(master)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{command} failed with status {process.returncode}")
    with peak_file:
        recorded = Path(peak_file.name).read_text().split()
    peak_kb = int(recorded[-1]) if TIME and recorded else usage.ru_maxrss
    return seconds, peak_kb / 1024


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 1 << 16):
            pass
    except OSError:  # a pty's reading end reports EIO once the writer is gone
        pass


def median_process(
    command: list[str], env: dict[str, str], runs: int, *, tty: bool = False
) -> tuple[float, float]:
    results = [run_process(command, env, tty=tty) for _ in range(runs)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def median_call(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def populate(url: str, keys: int, states: int) -> None:
    with StateRegistry(url) as registry:
        registry.state("Big").update({f"key{i:06d}": f"value number {i}" for i in range(keys)})
    names = [f"S{i:06d}" for i in range(states)]
    if url.startswith("file:"):
        conn = sqlite3.connect(url.removeprefix("file:"))
        with conn:
            conn.executemany(
                "INSERT INTO qstate_values (state, scope, key, value, expires_at) "
                "VALUES (?, '', 'step', '1', NULL)",
                [(name,) for name in names],
            )
        conn.close()
    else:
        import redis

        client = redis.Redis.from_url(url)
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.hset(f"qstate:{{{name}}}", "step", "1")
        pipe.execute()
        client.close()


def measure(backend: str, url: str, runs: int) -> list[Figure]:
    env = {**os.environ, "QSTATE_URL": url, "NO_COLOR": "1"}
    figures = []

    seconds, peak = median_process([QSTATE, "get", "Big"], env, runs, tty=True)
    figures.append(
        Figure(
            backend, "get Big (table, pty)", seconds, peak,
            target=f"≤ {TABLE_SECONDS:g} s, ≤ {TABLE_MB:g} MB",
            met=seconds <= TABLE_SECONDS and peak <= TABLE_MB,
        )
    )  # fmt: skip

    floor = [
        sys.executable, "-c",
        "import json, sys; from qstate import StateRegistry; "
        f"r = StateRegistry({url!r}); sys.stdout.write(json.dumps(r.state('Big').get_all()))",
    ]  # fmt: skip
    seconds, peak = median_process([QSTATE, "get", "Big", "--json"], env, runs)
    base_seconds, _ = median_process(floor, env, runs)
    figures.append(
        Figure(
            backend, "get Big --json (pipe)", seconds, peak,
            "get_all + json.dumps, a process", base_seconds,
            f"≤ {JSON_RATIO:g}×", seconds / base_seconds <= JSON_RATIO,
        )
    )  # fmt: skip

    floor_app = [sys.executable, str(Path(__file__).with_name("floor_app.py")), "get", "B"]
    seconds, peak = median_process(floor_app, env, runs)
    figures.append(Figure(backend, "Typer floor app (start-up alone)", seconds, peak))

    for operation, command, tty in [
        ("list (table, pty)", [QSTATE, "list"], True),
        ("list --json (pipe)", [QSTATE, "list", "--json"], False),
        ("export Big (pipe)", [QSTATE, "export", "Big"], False),
        ("export, every state (pipe)", [QSTATE, "export"], False),
    ]:
        count = 1 if operation.startswith("export, every") else runs
        seconds, peak = median_process(command, env, count, tty=tty)
        figures.append(Figure(backend, operation, seconds, peak))

    with StateRegistry(url) as registry:
        big = registry.state("Big")
        counter = iter(range(10**9))

        def one_key_modify() -> None:
            n = next(counter)
            big.modify(lambda data: {**data, "key000001": n})

        def get_all_and_set() -> None:
            big.get_all()
            big.set("key000001", next(counter))

        modify = median_call(one_key_modify, runs + 2)
        baseline = median_call(get_all_and_set, runs + 2)
    figures.append(
        Figure(
            backend, "modify one key (library)", modify, None,
            "get_all + set", baseline, f"≤ {MODIFY_RATIO:g}×", modify / baseline <= MODIFY_RATIO,
        )
    )  # fmt: skip
    return figures


def report(figures: list[Figure], keys: int, states: int, runs: int) -> bool:
    table = Table(title=f"qstate at scale: {keys:,} keys in one state, {states:,} states")
    for column in ("backend", "operation", "seconds", "peak MB", "baseline", "ratio", "target"):
        justify = "right" if column in ("seconds", "peak MB", "ratio") else "left"
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    ok = True
    for f in figures:
        ok &= f.met is not False
        colour = "" if f.met is None else ("green" if f.met else "red")
        baseline = f"{f.baseline} {f.baseline_seconds:.2f} s" if f.baseline_seconds else ""
        table.add_row(
            f.backend,
            f.operation,
            f"{f.seconds:.2f}",
            "" if f.peak_mb is None else f"{f.peak_mb:.0f}",
            baseline,
            "" if f.ratio is None else f"{f.ratio:.2f}×",
            f"[{colour}]{f.target}[/]" if colour else f.target,
        )
    Console(width=140).print(table)
    print(
        f"medians of {runs} runs (export of every state: 1 run); peak MB: maximum resident "
        "set size of the qstate process (/usr/bin/time -f %M); machine: "
        f"{platform.platform()}, {os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description="qstate with big states and many states")
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--states", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-redis", action="store_true")
    args = parser.parse_args()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as directory:
        url = f"file:{directory}/state.db"
        populate(url, args.keys, args.states)
        figures += measure("file", url, args.runs)
        if not args.skip_redis and shutil.which("redis-server"):
            from bench_redis import private_server

            with private_server() as redis_url:
                populate(redis_url, args.keys, args.states)
                figures += measure("redis", redis_url, args.runs)
    return 0 if report(figures, args.keys, args.states, args.runs) else 1


if __name__ == "__main__":
    sys.exit(main())
