"""What only the Redis backend promises: layout, outages, Cluster, locks, processes."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from qstate import (
    AsyncState,
    AsyncStateRegistry,
    BackendUnavailableError,
    ConfigError,
    ConflictError,
    CorruptDataError,
    InvalidValueError,
    State,
    StateRegistry,
)
from qstate._changes import LINGER
from qstate._keys import StateKey
from qstate.backends.redis.layout import (
    counter_key,
    data_key,
    log_key,
    parse_data_key,
    parse_url,
    scan_pattern,
)
from tests.redis_server import RedisServer, monitored

pytestmark = pytest.mark.redis


QSTATE = str(Path(sys.executable).parent / "qstate")


class MyState(State):
    pass


class MyAsyncState(AsyncState, name="MyState"):
    pass


def raw(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def test_layout_is_one_hash_per_state_readable_by_redis_cli(redis_url: str) -> None:
    with StateRegistry(redis_url + "?prefix=app") as registry:
        MyState(registry).update(state="await_phone", step=1, prompt="Введите телефон")
        MyState(registry, scope="user:42", ttl=60).set("nested", {"a": [1, None]})
    client = raw(redis_url)
    assert sorted(client.keys("*")) == [
        b"app:{MyState:user:42}",
        b"app:{MyState:user:42}:log",
        b"app:{MyState:user:42}:rev",
        b"app:{MyState}",
        b"app:{MyState}:log",
        b"app:{MyState}:rev",
    ]
    assert client.type("app:{MyState}") == b"hash"
    assert client.hgetall("app:{MyState}") == {
        b"state": b'"await_phone"',
        b"step": b"1",
        b"prompt": '"Введите телефон"'.encode(),
    }
    assert client.hget("app:{MyState:user:42}", "nested") == b'{"a":[1,null]}'
    assert 55_000 < client.pttl("app:{MyState:user:42}") <= 60_000
    assert client.pttl("app:{MyState}") == -1
    # the change log: a stream per state, its entry ID <epoch>-<rev>
    assert client.type("app:{MyState}:log") == b"stream"
    entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange("app:{MyState}:log")  # type: ignore[assignment]
    [(entry_id, fields)] = entries
    assert entry_id.endswith(b"-1")
    assert json.loads(fields[b"c"])[2] == {"key": "prompt", "new": "Введите телефон"}
    assert client.pttl("app:{MyState}:log") == -1, "no expiry while the state has none"
    counter: dict[bytes, bytes] = client.hgetall("app:{MyState}:rev")  # type: ignore[assignment]
    assert counter[b"rev"] == b"1"
    assert entry_id == counter[b"epoch"] + b"-1", "the log's ID: <epoch>-<rev>"
    assert client.pttl("app:{MyState}:rev") == -1
    log_ttl = client.pttl("app:{MyState:user:42}:log")
    assert 55_000 < log_ttl <= 60_000, "the log expires with its state"
    counter_ttl = client.pttl("app:{MyState:user:42}:rev")
    assert 55_000 + LINGER * 1000 < counter_ttl <= 60_000 + LINGER * 1000, "the count lingers"
    with StateRegistry(redis_url + "?prefix=app") as registry:
        MyState(registry).clear()
        assert 0 < client.pttl("app:{MyState}:log") <= LINGER * 1000, "LINGER once gone"
        assert 0 < client.pttl("app:{MyState}:rev") <= LINGER * 1000
        MyState(registry).set("again", 1)
        assert client.pttl("app:{MyState}:log") == -1, "a state re-created without a TTL"
        assert client.pttl("app:{MyState}:rev") == -1
        assert MyState(registry).revision() == 3, "the count went on after the clear"


def test_a_state_and_its_lock_share_a_cluster_slot() -> None:
    from redis.crc import key_slot

    for scope in ("", "u1", "chat:-100123", "user@example.org"):
        key = data_key("qstate", StateKey("Checkout", scope))
        assert key_slot(key.encode()) == key_slot((key + ":lock").encode())
        assert key_slot(key.encode()) == key_slot(log_key(key).encode())
        assert key_slot(key.encode()) == key_slot(counter_key(key).encode())
        assert parse_data_key("qstate", log_key(key)) is None
        assert parse_data_key("qstate", counter_key(key)) is None
        assert parse_data_key("qstate", key) == StateKey("Checkout", scope)
    assert parse_data_key("qstate", "qstate:{Checkout}:lock") is None
    assert parse_data_key("qstate", "other:{Checkout}") is None
    assert scan_pattern("qstate", "a*b") == "qstate:{a\\*b*"


@pytest.mark.parametrize(
    ("url", "client_url", "cluster", "prefix"),
    [
        ("redis://h:6379/2", "redis://h:6379/2", False, "qstate"),
        ("rediss://u:p@h:6380/0?prefix=app&ssl_cert_reqs=none",
         "rediss://u:p@h:6380/0?ssl_cert_reqs=none", False, "app"),
        ("redis+cluster://h:7000", "redis://h:7000", True, "qstate"),
        ("unix:///run/redis.sock?db=3&timeout=1.5",
         "unix:///run/redis.sock?db=3", False, "qstate"),
    ],
)  # fmt: skip
def test_url_forms(url: str, client_url: str, cluster: bool, prefix: str) -> None:
    options = parse_url(url)
    assert (options.client_url, options.cluster, options.prefix) == (client_url, cluster, prefix)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://h/0?prefix=a:b", "prefix"),
        ("redis://h/0?timeout=never", "number of seconds"),
        ("redis://h/0?lease=0", "between"),
        ("redis://h/0?lease=0.0005", "between 0.001"),  # Redis expires whole milliseconds
        ("redis://h/0?history=0", "history must be"),
        ("redis://h/0?history=lots", "history must be"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        StateRegistry(url)


def test_foreign_data_is_reported_as_corrupt(redis_url: str) -> None:
    client = raw(redis_url)
    client.set("qstate:{MyState}", "a plain string")
    client.hset("qstate:{Other}", "k", "not json")
    with StateRegistry(redis_url) as registry:
        with pytest.raises(CorruptDataError, match="not a hash"):
            MyState(registry).get("a")
        with pytest.raises(CorruptDataError, match="not JSON text"):
            registry.state("Other").get("k")


@pytest.mark.parametrize(
    ("stored", "reason"),
    [("[" * 10_000 + "]" * 10_000, "nested deeper"), ("1e999", "inf"), (str(2**70), "outside")],
)
def test_values_qstate_would_not_write_are_corrupt_data(
    redis_url: str, stored: str, reason: str
) -> None:
    raw(redis_url).hset("qstate:{MyState}", mapping={"bad": stored, "good": "1"})
    with StateRegistry(redis_url) as registry:
        state = MyState(registry)
        assert state.get("good") == 1
        for read in (lambda: state.get("bad"), state.get_all):
            with pytest.raises(CorruptDataError, match=reason):
                read()
    result = subprocess.run(
        [QSTATE, "--url", redis_url, "get", "MyState", "bad"], capture_output=True, text=True
    )
    assert result.returncode == 3
    assert reason in result.stderr
    assert "Infinity" not in result.stdout + result.stderr


def test_incr_refuses_non_numbers_server_side(redis_url: str) -> None:
    with StateRegistry(redis_url) as registry:
        state = MyState(registry)
        state.update(s="x", b=True, big=2**53 - 1, f=1.5)
        for key, kind in (("s", "str"), ("b", "bool")):
            with pytest.raises(Exception, match=f"holds a {kind}"):
                state.incr(key)
        assert state.incr("big") == 2**53  # HINCRBY is exact over 64 bits
        assert state.incr("f", 1) == 2.5
        assert state.incr("f", 0.5) == 3.0
        assert type(state.get("f")) is float
        assert state.incr("f", 0.1) == 3.1
        assert state.get_all()["f"] == 3.1


def test_incr_is_exact_over_the_signed_64_bit_range(redis_url: str) -> None:
    client = raw(redis_url)
    top = 2**63 - 1
    client.hset("qstate:{MyState}", mapping={"n": str(top - 1), "z": "null", "m": str(-top)})
    with StateRegistry(redis_url) as registry:
        state = MyState(registry)
        assert state.incr("n") == top
        with pytest.raises(InvalidValueError, match="overflow"):
            state.incr("n")
        assert client.hget("qstate:{MyState}", "n") == str(top).encode(), "nothing written"
        with pytest.raises(InvalidValueError, match="overflow"):
            state.incr("m", -1)
        step = 2**53 - 1
        assert state.incr("z", step) == step, "null counts as 0"
        assert state.incr("z", 2) == 2**53 + 1, "exact past 2**53 (no Lua double)"
        assert state.incr("new", -step) == -step
        assert state.incr("new", -2) == -(2**53 + 1)
        client.hset("qstate:{MyState}", "z", "null")
        assert state.incr("z", 2**60 + 1) == 2**60 + 1, "null + amount stays exact"
        assert client.hget("qstate:{MyState}", "m") == str(-top).encode()


def test_password_never_appears_in_errors(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, "--requirepass", "s3cret-pass")
    server.start()
    try:
        good = f"redis://:s3cret-pass@127.0.0.1:{server.port}/0"
        bad = f"redis://:wrong-pass@127.0.0.1:{server.port}/0"
        with StateRegistry(good) as registry:
            MyState(registry).set("a", 1)
            assert "s3cret" not in registry.url
            assert "s3cret" not in repr(MyState(registry))
        with pytest.raises(BackendUnavailableError) as info:
            MyState(StateRegistry(bad)).get("a")
        assert "wrong-pass" not in str(info.value)
        assert "credentials" in str(info.value) or "auth" in str(info.value).lower()
    finally:
        server.stop()


def test_outage_fails_fast_and_recovers_by_itself(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    url = f"{server.url}?timeout=1"
    registry = StateRegistry(url)
    state = MyState(registry)
    state.set("n", 1)
    server.kill()
    for operation in (lambda: state.get("n"), lambda: state.incr("n"), state.get_all):
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError, match="unavailable"):
            operation()
        assert time.monotonic() - started < 3, "an outage costs at most about the timeout"
    server.start()
    assert state.incr("n") == 1, "the registry reconnects by itself (the data was in memory)"
    # A server that hangs instead of refusing: the read timeout bounds each operation.
    assert server.process is not None
    server.process.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError, match="unavailable"):
            state.get("n")
        assert time.monotonic() - started < 3
    finally:
        server.process.send_signal(signal.SIGCONT)
    assert state.incr("n") == 2, "and recovers once the server answers again"
    registry.close()
    server.stop()


def test_async_outage_fails_fast_and_recovers(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()

    async def main() -> None:
        async with AsyncStateRegistry(f"{server.url}?timeout=1") as registry:
            state = MyAsyncState(registry)
            await state.set("n", 1)
            server.kill()
            started = time.monotonic()
            with pytest.raises(BackendUnavailableError):
                await state.get("n")
            assert time.monotonic() - started < 3
            server.start()
            assert await state.incr("n") == 1

    try:
        asyncio.run(main())
    finally:
        server.stop()


def test_unreachable_host_is_bounded_by_the_timeout() -> None:
    """A port that accepts nothing: connect fails fast with a clear error."""
    from tests.redis_server import free_port

    url = f"redis://127.0.0.1:{free_port()}/0?timeout=0.5"
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError, match="unavailable"):
        MyState(StateRegistry(url)).get("a")
    assert time.monotonic() - started < 2


def test_plain_writes_wait_for_a_transaction(redis_url: str) -> None:
    with StateRegistry(redis_url) as registry:
        state = MyState(registry)
        state.set("n", 0)
        entered, done = threading.Event(), threading.Event()
        order: list[str] = []

        def writer() -> None:
            entered.wait()
            MyState(registry).incr("n")  # must wait for the transaction
            order.append("incr")
            done.set()

        thread = threading.Thread(target=writer)
        thread.start()
        with state.transaction() as data:
            entered.set()
            time.sleep(0.3)
            data["n"] = data["n"] + 10
            order.append("transaction")
        done.wait(5)
        thread.join()
        assert order == ["transaction", "incr"]
        assert state.get("n") == 11


def test_an_expired_lease_fails_the_commit_instead_of_losing_a_write(redis_url: str) -> None:
    with StateRegistry(redis_url + "?lease=0.2") as registry:
        state = MyState(registry)
        state.set("n", 0)

        def slow_transaction() -> None:
            with state.transaction() as data:
                time.sleep(0.4)  # the lease runs out; a plain write gets in
                MyState(StateRegistry(redis_url)).set("n", 5)
                data["n"] = 100

        with pytest.raises(ConflictError, match="nothing was written"):
            slow_transaction()
        assert state.get("n") == 5


def test_a_stuck_lock_is_a_conflict_after_lock_wait(redis_url: str) -> None:
    raw(redis_url).set("qstate:{MyState}:lock", "someone-else", px=5000)
    with StateRegistry(redis_url + "?lock_wait=0.3") as registry:
        started = time.monotonic()
        with pytest.raises(ConflictError, match="stayed locked"):
            MyState(registry).set("a", 1)
        assert time.monotonic() - started < 2
        assert MyState(registry).get("a") is None


def _worker(url: str, rounds: int) -> None:
    with StateRegistry(url) as registry:
        state = MyState(registry, scope="shared")
        for _ in range(rounds):
            state.incr("incr")
            state.modify(lambda d: {**d, "modified": d.get("modified", 0) + 1})


@pytest.mark.slow
def test_eight_processes_lose_no_update(redis_url: str) -> None:
    processes, rounds = 8, 100
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(redis_url, rounds)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    with StateRegistry(redis_url) as registry:
        total = processes * rounds
        assert MyState(registry, scope="shared").get_all() == {"incr": total, "modified": total}


def test_cluster_runs_every_operation(redis_cluster: list[RedisServer]) -> None:
    url = f"redis+cluster://127.0.0.1:{redis_cluster[0].port}"
    with StateRegistry(url) as registry:
        states = [MyState(registry, scope=f"user-{i}") for i in range(30)]
        for i, state in enumerate(states):
            state.clear()
            state.set("i", i)
            assert state.update(step=1) == {"i": i, "step": 1}
            assert state.incr("n", 2) == 2
            assert state.modify(lambda d: {**d, "m": True})["m"] is True
            with state.transaction() as data:
                data["tx"] = 1
            assert state.delete("step") is True
            assert state.get_all() == {"i": i, "n": 2, "m": True, "tx": 1}
        listed = [
            info for info in registry.list_states("MyState") if info.scope.startswith("user-")
        ]
        assert len(listed) == 30
        nodes_with_keys = sum(1 for node in redis_cluster if int(node.command("DBSIZE")) > 0)
        assert nodes_with_keys >= 2, "states are spread over the masters"
        for state in states:
            assert state.clear() is True

    async def main() -> None:
        async with AsyncStateRegistry(url) as registry:
            state = MyAsyncState(registry, scope="async")
            await state.set("a", 1)
            assert await state.incr("a") == 2
            async with state.transaction() as data:
                data["b"] = 2
            assert await state.get_all() == {"a": 2, "b": 2}
            assert [i.scope for i in await registry.list_states()] == ["async"]
            await state.clear()

    asyncio.run(main())


def test_redis_is_imported_only_for_redis_urls(tmp_path: Path) -> None:
    code = (
        "import sys; from qstate import StateRegistry, State\n"
        f"r = StateRegistry('file:{tmp_path}/s.db'); r.state('X').set('a', 1)\n"
        "print('redis' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _fields_written(url: str, action: Any) -> int:
    """Fields the server's scripts set or deleted while ``action`` ran, per MONITOR."""
    written = 0
    for entry in monitored(url, action):
        words = entry["command"].split()
        if entry.get("client_type") == "lua" and words[0].upper() == "HSET":
            written += (len(words) - 2) // 2
        elif entry.get("client_type") == "lua" and words[0].upper() == "HDEL":
            written += len(words) - 2
    return written


def test_a_one_key_modify_writes_one_field(redis_url: str) -> None:
    with StateRegistry(redis_url) as registry:
        big = registry.state("BigOne")
        big.update({f"k{i}": i for i in range(1000)})
        assert _fields_written(redis_url, lambda: big.modify(lambda d: {**d, "k5": -5})) == 1
        gone = {k: v for k, v in big.get_all().items() if k != "k7"}
        assert _fields_written(redis_url, lambda: big.modify(lambda d: gone)) == 1
        data = big.get_all()
        assert (len(data), data["k5"], "k7" in data) == (999, -5, False)
        big.clear()


def test_replace_of_the_same_keys_writes_only_the_changed_values(redis_url: str) -> None:
    """A dialog's next step rewrites one field, not the hash; a big hash (no
    order kept) takes the same keys in any order, a small one only in its own."""
    with StateRegistry(redis_url) as registry:
        small = registry.state("SmallOne")
        small.replace({"name": "Ann", "step": 1})
        assert _fields_written(redis_url, lambda: small.replace({"name": "Ann", "step": 2})) == 1
        assert _fields_written(redis_url, lambda: small.replace({"step": 3, "name": "Ann"})) == 2
        assert list(small.get_all()) == ["step", "name"], "written anew: the new order"
        big = registry.state("BigReplace")  # a value over 64 bytes: a hashtable
        document = {"long": "x" * 100, **{f"k{i}": i for i in range(20)}}
        big.replace(document)
        shuffled = dict(reversed(document.items()))
        shuffled["k5"] = -5
        assert _fields_written(redis_url, lambda: big.replace(shuffled)) == 1
        assert big.get_all() == {**document, "k5": -5}
        [change] = big.history(limit=1)
        assert change.changes == [{"key": "k5", "old": 5, "new": -5}]
        small.clear()
        big.clear()
