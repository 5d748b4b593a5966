"""Breaking things on purpose: killed writers, a Redis restart, a full disk, no permission.

Each test is bounded in time and prints its figures (run with -s to see them).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from qstate import BackendUnavailableError, StateRegistry
from tests.redis_server import RedisServer

QSTATE = str(Path(sys.executable).parent / "qstate")

KILL_ROUNDS, WRITERS = 50, 4  # 200 writers killed with SIGKILL


def _writer(registry: StateRegistry, scope: str, acks: int) -> None:
    """Write keys k0, k1, ... with every kind of write; report each acknowledged one."""
    state = registry.state("Killed", scope=scope)
    i = 0
    while True:
        kind = i % 4
        if kind == 0:
            state.set(f"k{i}", i)
        elif kind == 1:
            state.update({f"k{i}": i, "last": i})
        elif kind == 2:
            state.modify(_adding(f"k{i}", i))
        else:
            with state.transaction() as data:
                data[f"k{i}"] = i
        os.write(acks, f"{i}\n".encode())  # only after the write returned
        i += 1


def _adding(key: str, value: int) -> Any:
    def modify(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, key: value}

    return modify


def _drain(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode()


@pytest.mark.slow
def test_sigkilled_writers_never_break_the_file_nor_lose_acknowledged_writes(
    tmp_path: Path,
) -> None:
    db = tmp_path / "state.db"
    registry = StateRegistry(f"file:{db}")
    registry.state("Killed", scope="parent").set("before", "fork")  # children inherit this
    context = multiprocessing.get_context("fork")
    acknowledged: dict[str, int] = {}
    rng = random.Random(1234)
    started = time.monotonic()
    for round_ in range(KILL_ROUNDS):
        children = []
        for writer in range(WRITERS):
            read_end, write_end = os.pipe()
            scope = f"r{round_}w{writer}"
            child = context.Process(target=_writer, args=(registry, scope, write_end))
            child.start()
            os.close(write_end)
            children.append((child, scope, read_end))
        for child, _, _ in children:
            time.sleep(rng.uniform(0.0, 0.05))  # a random instant in each writer's life
            os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        for child, scope, read_end in children:
            child.join()
            assert child.exitcode == -signal.SIGKILL
            lines = _drain(read_end).split()
            os.close(read_end)
            acknowledged[scope] = int(lines[-1]) + 1 if lines else 0
    registry.close()
    elapsed = time.monotonic() - started

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()
    verified = 0
    with StateRegistry(f"file:{db}") as reopened:
        assert reopened.state("Killed", scope="parent").get_all() == {"before": "fork"}
        for scope, count in acknowledged.items():
            data = reopened.state("Killed", scope=scope).get_all()
            for i in range(count):
                assert data.get(f"k{i}") == i, f"{scope}: acknowledged write k{i} is missing"
                verified += 1
    kills = KILL_ROUNDS * WRITERS
    print(f"\nfile: {kills} writers SIGKILLed in {elapsed:.1f} s; {verified} acknowledged writes")
    assert kills >= 200
    assert verified > kills, "the writers did get writes acknowledged before dying"


def _redis_load(
    registry: StateRegistry, stop: threading.Event, log: dict[str, Any], name: str
) -> None:
    state = registry.state("Load", scope=name)
    counter = registry.state("Load", scope="counter")
    i = 0
    while not stop.is_set():
        started = time.monotonic()
        try:
            if i % 2:
                state.set(f"k{i}", i)
                log["acked_keys"].append((name, i))
            else:
                counter.incr("n")
                log["acked_incr"] += 1
            log["ok_at"].append(time.monotonic())
        except BackendUnavailableError as error:
            log["failures"].append((time.monotonic() - started, str(error)))
            if i % 2 == 0:
                log["unknown_incr"] += 1  # may or may not have been applied
            time.sleep(0.02)
        except Exception as error:  # anything else is a bug: the test fails on it
            log["unexpected"].append(repr(error))
        i += 1


@pytest.mark.slow
@pytest.mark.redis
def test_redis_restart_mid_load_fails_fast_recovers_and_keeps_acknowledged_writes(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path, "--appendonly", "yes", "--appendfsync", "always")
    server.start()
    timeout = 1.0
    registry = StateRegistry(f"{server.url}?timeout={timeout}")
    log: dict[str, Any] = {
        "acked_keys": [], "acked_incr": 0, "unknown_incr": 0,
        "failures": [], "unexpected": [], "ok_at": [],
    }  # fmt: skip
    stop = threading.Event()
    threads = [
        threading.Thread(target=_redis_load, args=(registry, stop, log, f"t{n}")) for n in range(4)
    ]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        server.kill()  # SIGKILL, mid-load
        down_at = time.monotonic()
        time.sleep(1.5)
        server.start()  # same port, same AOF
        up_at = time.monotonic()
        time.sleep(1.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert log["unexpected"] == []
    assert log["failures"], "operations during the outage failed"
    slowest = max(duration for duration, _ in log["failures"])
    assert slowest < timeout + 1.0, f"a failing operation hung for {slowest:.2f} s"
    assert all("unavailable" in message for _, message in log["failures"])
    assert any(t > up_at for t in log["ok_at"]), "work resumed by itself after the restart"
    counter = registry.state("Load", scope="counter").get("n")
    assert log["acked_incr"] <= counter <= log["acked_incr"] + log["unknown_incr"]
    for name, i in log["acked_keys"]:
        assert registry.state("Load", scope=name).get(f"k{i}") == i, f"lost {name}/k{i}"
    registry.close()
    server.stop()
    print(
        f"\nredis: outage {up_at - down_at:.2f} s; {len(log['failures'])} operations failed "
        f"fast (slowest {slowest:.2f} s, timeout {timeout} s) with BackendUnavailableError; "
        f"{len(log['acked_keys'])} acknowledged keys and {log['acked_incr']} acknowledged "
        f"incr verified after the restart (counter {counter})"
    )


def _limit_file_size(limit: int) -> Any:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_full_disk_is_a_clear_error_and_keeps_the_data(tmp_path: Path) -> None:
    """A process may not grow files past 64 KiB: the disk is full, as far as it knows."""
    url = f"file:{tmp_path}/state.db"
    subprocess.run([QSTATE, "--url", url, "set", "Doc", "small", "kept"], check=True)
    huge = "x" * 2_000_000
    result = subprocess.run(
        [QSTATE, "--url", url, "set", "Doc", "huge", "-"], input=huge, capture_output=True,
        text=True, preexec_fn=_limit_file_size(64 * 1024),
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "full" in result.stderr or "cannot use" in result.stderr
    kept = subprocess.run(
        [QSTATE, "--url", url, "get", "Doc"], capture_output=True, text=True, check=True
    )
    assert kept.stdout.strip().startswith("{")
    assert "huge" not in kept.stdout
    conn = sqlite3.connect(tmp_path / "state.db")
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_unwritable_directory_is_a_clear_error_and_keeps_the_data(
    shared_directory: Path, as_nobody: list[str]
) -> None:
    url = f"file:{shared_directory}/data/state.db"
    subprocess.run([QSTATE, "--url", url, "set", "Doc", "k", "kept"], check=True)
    (shared_directory / "data").chmod(0o755)  # qstate made it 0700: let nobody in, read-only
    for file in (shared_directory / "data").iterdir():
        file.chmod(0o644)
    result = subprocess.run(
        [*as_nobody, QSTATE, "--url", url, "set", "Doc", "k", "changed"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith("qstate: error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    kept = subprocess.run(
        [QSTATE, "--url", url, "get", "Doc", "k"], capture_output=True, text=True
    )
    assert kept.stdout == "kept\n"
