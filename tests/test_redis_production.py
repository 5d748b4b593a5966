"""Redis as production runs it: many concurrent calls, a hung server, malformed
URLs with odd passwords, foreign keys under the prefix, a flushed script cache."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from qstate import (
    AsyncStateRegistry,
    BackendUnavailableError,
    ConflictError,
    CorruptDataError,
    StateRegistry,
)
from qstate_cli.main import app
from tests.redis_server import RedisServer, monitored

pytestmark = pytest.mark.redis

QSTATE = str(Path(sys.executable).parent / "qstate")


# -- many concurrent calls on one registry (default URL options) ------------------


def test_1000_concurrent_async_operations_all_succeed(redis_url: str) -> None:
    async def main() -> None:
        async with AsyncStateRegistry(redis_url) as registry:
            counter = registry.state("Counter")

            async def one(i: int) -> None:
                state = registry.state("Task", scope=str(i % 50))
                kind = i % 4
                if kind == 0:
                    await state.set(f"k{i}", i)
                elif kind == 1:
                    await state.get("k0")
                elif kind == 2:
                    await counter.incr("n")
                else:
                    await state.update({f"u{i}": i})

            await asyncio.gather(*(one(i) for i in range(1000)))
            assert await counter.get("n") == 250
            listed = await registry.list_states("Task")
            assert sum(info.keys for info in listed) == 500

    asyncio.run(main())


def test_500_tasks_in_transactions_on_one_hot_state_all_succeed(redis_url: str) -> None:
    # Polling on their own, the longest waiters lost the lock to newcomers until
    # some waited past lock_wait (15 s) while the whole run takes a few seconds.
    async def main() -> None:
        async with AsyncStateRegistry(redis_url) as registry:
            state = registry.state("Hot")

            async def task() -> None:
                for _ in range(5):
                    await state.incr("incr")
                    async with state.transaction() as data:
                        data["tx"] = data.get("tx", 0) + 1

            await asyncio.gather(*(task() for _ in range(500)))
            assert await state.get_all() == {"incr": 2500, "tx": 2500}

    asyncio.run(main())


def test_a_hung_transaction_holds_its_own_registry_up_no_longer_than_its_lease(
    redis_url: str,
) -> None:
    # Waiters of the same registry line up behind the hung transaction; once its
    # lease has run out they go on, as other processes do.
    with StateRegistry(redis_url + "?lease=1&lock_wait=60") as registry:
        state = registry.state("Hung")
        inside, other_done = threading.Event(), threading.Event()
        errors: list[BaseException] = []

        def other() -> None:
            try:
                inside.wait(60)
                with state.transaction() as data:
                    data["other"] = True
            except BaseException as exc:
                errors.append(exc)
            finally:
                other_done.set()

        thread = threading.Thread(target=other)
        thread.start()

        def hang() -> None:
            with state.transaction() as data:
                data["hung"] = True
                inside.set()
                assert other_done.wait(60)

        with pytest.raises(ConflictError, match="lease"):
            hang()
        thread.join(60)
        assert errors == []
        assert state.get_all() == {"other": True}


def test_200_threads_on_one_registry_all_succeed(redis_url: str) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(200)
    with StateRegistry(redis_url) as registry:

        def worker(n: int) -> None:
            try:
                start.wait(timeout=60)
                state = registry.state("Shared")
                for _ in range(5):
                    state.incr("incr")
                    with state.transaction() as data:
                        data["tx"] = data.get("tx", 0) + 1
                registry.state("Own", scope=str(n)).set("n", n)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(200)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        assert registry.state("Shared").get_all() == {"incr": 1000, "tx": 1000}
        assert len(registry.list_states("Own")) == 200


def test_an_exhausted_pool_says_so_and_how_to_raise_it(redis_url: str) -> None:
    with StateRegistry(redis_url + "?max_connections=1&timeout=1") as registry:
        state = registry.state("Pool")
        state.set("a", 1)
        # Hold the pool's only connection, as a long call of another thread would.
        pool = registry.backend._client.connection_pool  # type: ignore[attr-defined]
        held = pool.get_connection()
        try:
            with pytest.raises(BackendUnavailableError) as info:
                state.get("a")
        finally:
            pool.release(held)
        assert "pool was exhausted" in str(info.value)
        assert "max_connections" in str(info.value)
        assert "may not have been applied" not in str(info.value)
        assert state.get("a") == 1


# -- a hung server (SIGSTOP) ------------------------------------------------------


@pytest.fixture
def stoppable(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.process is not None:
        server.process.send_signal(signal.SIGCONT)
    server.stop()


def _sync_calls(registry: StateRegistry) -> list[tuple[str, Callable[[], Any]]]:
    state = registry.state("Hung")

    def transaction() -> None:
        with state.transaction() as data:
            data["tx"] = 1

    return [
        ("get", lambda: state.get("a")),
        ("get_all", state.get_all),
        ("set", lambda: state.set("a", 2)),
        ("update", lambda: state.update(b=2)),
        ("incr", lambda: state.incr("n")),
        ("delete", lambda: state.delete("b")),
        ("clear", lambda: registry.state("Other").clear()),
        ("transaction", transaction),
        ("modify", lambda: state.modify(lambda d: {**d, "m": 1})),
        ("list_states", registry.list_states),
    ]


def test_a_hung_server_bounds_every_call_and_leaves_no_lock(stoppable: RedisServer) -> None:
    assert stoppable.process is not None
    with StateRegistry(f"{stoppable.url}?timeout=1") as registry:
        registry.state("Hung").set("a", 1)
        stoppable.process.send_signal(signal.SIGSTOP)
        slow = {}
        for name, call in _sync_calls(registry):
            started = time.monotonic()
            with pytest.raises(BackendUnavailableError):
                call()
            slow[name] = time.monotonic() - started
        stoppable.process.send_signal(signal.SIGCONT)
        assert {name: t for name, t in slow.items() if t >= 1.5} == {}, slow
        started = time.monotonic()
        registry.state("Hung").set("after", 1)  # gives back what timed-out calls locked
        assert time.monotonic() - started < 1.0
    raw = redis.Redis.from_url(stoppable.url)
    assert raw.keys("*:lock") == [], "no lock left for its lease"
    raw.close()


def test_a_transaction_cancelled_as_it_takes_the_lock_gives_it_back(redis_url: str) -> None:
    # The server took the lock, and the task is cancelled as the reply comes in
    # (asyncio.timeout around a transaction): the registry's next write must give
    # the lock back, not wait out its 30 s lease (with lock_wait 5 s: fail).
    async def main() -> None:
        async with AsyncStateRegistry(f"{redis_url}?lease=30&lock_wait=5") as registry:
            state = registry.state("Cancelled")
            await state.set("n", 0)
            backend: Any = registry.backend
            real_eval = backend._eval

            async def cancelled_as_the_reply_comes(script: Any, *args: Any) -> Any:
                reply = await real_eval(script, *args)
                if script is backend._acquire_script:
                    raise asyncio.CancelledError
                return reply

            backend._eval = cancelled_as_the_reply_comes
            with pytest.raises(asyncio.CancelledError):
                async with state.transaction() as data:
                    data["n"] = -1
            backend._eval = real_eval
            assert await state.incr("n") == 1

    asyncio.run(main())
    raw = redis.Redis.from_url(redis_url)
    assert raw.keys("*Cancelled*:lock") == []
    raw.close()


def test_a_hung_server_bounds_async_transactions(stoppable: RedisServer) -> None:
    assert stoppable.process is not None
    process = stoppable.process

    async def main() -> None:
        async with AsyncStateRegistry(f"{stoppable.url}?timeout=1") as registry:
            state = registry.state("Hung")
            await state.set("a", 1)
            process.send_signal(signal.SIGSTOP)
            for _ in range(2):
                started = time.monotonic()
                with pytest.raises(BackendUnavailableError):
                    async with state.transaction() as data:
                        data["tx"] = 1
                assert time.monotonic() - started < 1.5
            process.send_signal(signal.SIGCONT)
            started = time.monotonic()
            await state.set("after", 1)
            assert time.monotonic() - started < 1.0
            assert await state.get_all() == {"a": 1, "after": 1}

    asyncio.run(main())
    raw = redis.Redis.from_url(stoppable.url)
    assert raw.keys("*:lock") == []
    raw.close()


# -- foreign keys under the prefix ------------------------------------------------


def test_foreign_keys_never_break_list_or_export(redis_url: str) -> None:
    raw = redis.Redis.from_url(redis_url)
    raw.set("qstate:{Plain}", "someone else's string")
    raw.rpush("qstate:{Queue}", "a", "b")
    runner = CliRunner()

    def cli(*args: str) -> Any:
        return runner.invoke(app, ["--url", redis_url, *args])

    assert cli("set", "Good", "k", "1").exit_code == 0
    assert cli("set", "Other", "k", "2", "--scope", "u1").exit_code == 0

    listed = cli("--json", "list")
    assert listed.exit_code == 0, listed.stderr
    assert [(s["state"], s["scope"]) for s in json.loads(listed.stdout)] == [
        ("Good", ""),
        ("Other", "u1"),
    ]
    warning = listed.stderr.strip().splitlines()
    assert len(warning) == 1
    assert warning[0].startswith("qstate: warning:")
    assert "qstate:{Plain}" in warning[0]
    assert "qstate:{Queue}" in warning[0]

    refused = cli("export")
    assert refused.exit_code == 3
    assert refused.stdout == ""
    assert "qstate:{Plain}" in refused.stderr
    assert "--skip-unreadable" in refused.stderr

    skipped = cli("export", "--skip-unreadable")
    assert skipped.exit_code == 0, skipped.stderr
    exported = json.loads(skipped.stdout)["states"]
    assert [(s["state"], s["data"]) for s in exported] == [("Good", {"k": 1}), ("Other", {"k": 2})]

    got = cli("get", "Plain")
    assert got.exit_code == 3
    assert "not a hash" in got.stderr
    with StateRegistry(redis_url) as registry, pytest.raises(CorruptDataError):
        registry.state("Queue").get_all()
    assert raw.get("qstate:{Plain}") == b"someone else's string", "never written"
    assert raw.lrange("qstate:{Queue}", 0, -1) == [b"a", b"b"]
    raw.close()


def test_export_names_a_hash_it_cannot_decode(redis_url: str) -> None:
    raw = redis.Redis.from_url(redis_url)
    raw.hset("qstate:{Broken}", "k", "not json")
    result = CliRunner().invoke(app, ["--url", redis_url, "export"])
    assert result.exit_code == 3
    assert "Broken" in result.stderr
    result = CliRunner().invoke(app, ["--url", redis_url, "export", "--skip-unreadable"])
    assert (result.exit_code, json.loads(result.stdout)["states"]) == (0, [])
    assert raw.hget("qstate:{Broken}", "k") == b"not json"
    raw.close()


# -- a flushed script cache -------------------------------------------------------


def _commands_of(url: str, action: Callable[[], object]) -> list[str]:
    """The commands clients (not scripts) sent while ``action`` ran, per MONITOR."""
    return [
        entry["command"].split()[0].upper()
        for entry in monitored(url, action)
        if entry.get("client_type") != "lua"
    ]


def test_noscript_costs_one_extra_round_trip(redis_url: str) -> None:
    with StateRegistry(redis_url) as registry:
        state = registry.state("Scripted")
        state.set("a", 1)
        state.incr("n")
        redis.Redis.from_url(redis_url).script_flush()
        assert _commands_of(redis_url, lambda: state.set("a", 2)) == ["EVALSHA", "EVAL"]
        assert _commands_of(redis_url, lambda: state.set("a", 3)) == ["EVALSHA"]
        redis.Redis.from_url(redis_url).script_flush()
        assert _commands_of(redis_url, lambda: state.modify(lambda d: {**d, "m": 1})) == [
            "EVALSHA", "EVAL", "EVALSHA", "EVAL",
        ]  # fmt: skip
        assert state.get_all() == {"a": 3, "n": 1, "m": 1}


# -- URLs and passwords -----------------------------------------------------------

_PASSWORD = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from("éж€"),
    min_size=3,
    max_size=12,
).map(lambda text: "Zq" + text)
"""Starts with a pair no message has by chance, so that ``in`` finds only leaks."""

_QUERIES = [
    "", "&socket_timeout=abc", "&max_connections=x", "&foo=1", "&prefix=a:b",
    "&lease=0", "&db=2", "&max_connections=3", "&client_name=",
]  # fmt: skip
_COMMANDS = [["get", "S", "k"], ["list"], ["doctor"], ["set", "S", "k", "1"]]
_FORMS = st.fixed_dictionaries(
    {
        "scheme": st.sampled_from(["redis", "rediss", "redis+cluster", "REDIS", "unix"]),
        "user": st.sampled_from(["", "app", "a%40b"]),
        "encode": st.booleans(),
        "host": st.sampled_from(["127.0.0.1", "localhost", "[::1]", "[::1", "", "a b", "h#"]),
        "port": st.sampled_from([":1", ":99999", ":notaport", ":", ":0", ":1"]),
        "path": st.sampled_from(["", "/0", "/abc", "/0/1", "/", "/-1"]),
        "query": st.sampled_from(
            [
                "",
                "&socket_timeout=abc",
                "&max_connections=x",
                "&foo=1",
                "&prefix=a:b",
                "&lease=0",
                "&db=2",
                "&max_connections=3",
                "&client_name=",
            ]
        ),
        "command": st.sampled_from(
            [["get", "S", "k"], ["list"], ["doctor"], ["set", "S", "k", "1"]]
        ),
        "debug": st.booleans(),
    }
)


def _url(form: dict[str, Any], password: str) -> str:
    secret = quote(password, safe="") if form["encode"] else password
    if form["scheme"] == "unix":
        return f"unix://{form['user']}:{secret}@/nonexistent/redis.sock?timeout=0.5{form['query']}"
    location = form["host"] + form["port"] + form["path"]
    return f"{form['scheme']}://{form['user']}:{secret}@{location}?timeout=0.5{form['query']}"


def _leaks(password: str, text: str) -> bool:
    return password in text or quote(password, safe="") in text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(form=_FORMS, password=_PASSWORD)
def test_no_url_is_an_internal_error_nor_shows_its_password(
    form: dict[str, Any], password: str
) -> None:
    url = _url(form, password)
    args = ["--url", url, *(["--debug"] if form["debug"] else []), *form["command"]]
    result = CliRunner().invoke(app, args)
    output = result.stdout + result.stderr
    assert result.exit_code in (2, 3), (url, output)
    assert not _leaks(password, output), (url, output)
    if result.exit_code == 2:
        assert "error:" in result.stderr


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("redis://:Zqhun#ter2@127.0.0.1:1/0?timeout=0.5", 3),
        ("redis://u:Zqhu/n?te r@2@127.0.0.1:notaport/0", 2),
        ("redis://:Zq%23p%40ss@127.0.0.1:99999/0", 2),
        ("redis+cluster://:Zqsecret@127.0.0.1:1?timeout=0.5", 3),
        ("file://u:Zqhunter2@host/x.db", 2),
    ],
)
def test_real_processes_never_show_the_password(url: str, code: int) -> None:
    for debug in ([], ["--debug"]):
        for command in (["get", "S", "k"], ["doctor"]):
            result = subprocess.run(
                [QSTATE, "--url", url, *debug, *command], capture_output=True, text=True
            )
            expected = 3 if command == ["doctor"] else code  # a doctor reports bad URLs
            assert result.returncode == expected, (url, command, result.stderr)
            assert "Zq" not in result.stdout + result.stderr
            assert "Traceback" not in result.stderr or debug


def test_percent_encoded_passwords_work(tmp_path: Path) -> None:
    password = "p@ss:w/rd#? x%"  # noqa: S105 - a test server's
    server = RedisServer(tmp_path, "--requirepass", password)
    server.start()
    try:
        url = f"redis://:{quote(password, safe='')}@127.0.0.1:{server.port}/0"
        with StateRegistry(url) as registry:
            registry.state("Auth").set("a", 1)
            assert registry.state("Auth").get("a") == 1
            assert password not in registry.url
        raw_url = f"redis://:{password.replace('%', '%25')}@127.0.0.1:{server.port}/0"
        with StateRegistry(raw_url) as registry:
            assert registry.state("Auth").get("a") == 1, "unencoded, but for %"
    finally:
        server.stop()


def test_async_connections_pack_with_hiredis_byte_for_byte_as_redis_py(redis_url: str) -> None:
    """The async pool packs with hiredis (a write script's 18 arguments cost 9 µs
    in redis.asyncio's Python packer); what goes on the wire must not change."""
    from redis.asyncio.connection import Connection
    from redis.exceptions import DataError
    from redis.utils import HIREDIS_AVAILABLE

    assert HIREDIS_AVAILABLE, "qstate[redis] installs hiredis"
    commands: list[tuple[Any, ...]] = [
        ("EVALSHA", "a" * 40, 4, "k1", "k2", "k3", "k4", "", '"Ann"', 30, 2.5, -1),
        ("HSET", b"bytes\r\nkey", "Введите телефон 🙂", memoryview(b"view")),
        ("SET", "big", "x" * 100_000),  # above redis-py's 6,000-byte chunking cutoff
        ("CONFIG GET", "maxmemory"),
    ]

    async def main() -> None:
        registry = AsyncStateRegistry(redis_url)
        try:
            pool = registry.backend._client.connection_pool  # type: ignore[attr-defined]
            ours = await pool.get_connection()
            try:
                python = Connection()
                assert type(ours).pack_command is not Connection.pack_command
                for command in commands:
                    assert b"".join(ours.pack_command(*command)) == b"".join(
                        python.pack_command(*command)
                    )
                for bad in (True, None, object()):
                    with pytest.raises(DataError):
                        ours.pack_command("SET", "k", bad)
            finally:
                await pool.release(ours)
            state = registry.state("Packing")
            await state.update({"text": "Введите 🙂\r\n", "big": "y" * 100_000, "n": 2**62})
            assert await state.get_all() == {
                "text": "Введите 🙂\r\n",
                "big": "y" * 100_000,
                "n": 2**62,
            }
        finally:
            await registry.aclose()

    asyncio.run(main())
