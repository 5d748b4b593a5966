"""What only the SQLite file backend promises: layout, permissions, safety."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from qstate import (
    AsyncState,
    AsyncStateRegistry,
    BackendUnavailableError,
    ConfigError,
    CorruptDataError,
    InvalidNameError,
    InvalidValueError,
    State,
    StateRegistry,
)
from qstate._keys import StateKey
from qstate._model import check_changes
from qstate.backends.file import parse_url


class MyState(State):
    pass


class MyAsyncState(AsyncState, name="MyState"):
    pass


def test_directory_and_database_are_private(tmp_path: Path) -> None:
    db = tmp_path / "new" / "nested" / "state.db"
    with StateRegistry(f"file:{db}") as registry:
        MyState(registry).set("a", 1)
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    for sidecar in db.parent.glob("state.db-*"):
        assert stat.S_IMODE(sidecar.stat().st_mode) == 0o600


def test_layout_is_readable_by_sqlite3(tmp_path: Path) -> None:
    """The documented layout: one row per key, JSON text, WAL mode."""
    db = tmp_path / "state.db"
    with StateRegistry(f"file:{db}") as registry:
        MyState(registry).update(state="await_phone", step=1)
        MyState(registry, scope="u1", ttl=60).set("nested", {"a": [1, None]})
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT state, scope, key, value, expires_at IS NOT NULL FROM qstate_values ORDER BY rowid"
    ).fetchall()
    assert rows == [
        ("MyState", "", "state", '"await_phone"', 0),
        ("MyState", "", "step", "1", 0),
        ("MyState", "u1", "nested", '{"a":[1,null]}', 1),
    ]
    [(expires_at,)] = conn.execute(
        "SELECT expires_at FROM qstate_values WHERE scope = 'u1'"
    ).fetchall()
    assert time.time() + 50 < expires_at <= time.time() + 60
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA user_version").fetchone() == (4,)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_scope_is_data_never_a_path(tmp_path: Path) -> None:
    db = tmp_path / "d" / "state.db"
    with StateRegistry(f"file:{db}") as registry:
        evil = MyState(registry, scope="../../../etc/passwd")
        evil.set("x", 1)
        assert evil.get("x") == 1
        files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert files[0] == "d"
    assert all(f.startswith("d/state.db") for f in files[1:]), files


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file:state.db", (Path("state.db"), "NORMAL", 10.0, None)),
        ("file:///abs/s.db", (Path("/abs/s.db"), "NORMAL", 10.0, None)),
        ("file://localhost/abs/s.db", (Path("/abs/s.db"), "NORMAL", 10.0, None)),
        (
            "file:/abs/s.db?synchronous=full&timeout=2.5&history=50",
            (Path("/abs/s.db"), "FULL", 2.5, 50),
        ),
        ("file:a%20b.db", (Path("a b.db"), "NORMAL", 10.0, None)),
    ],
)
def test_url_forms(url: str, expected: tuple[Path, str, float, int | None]) -> None:
    assert parse_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:", "needs a database file path"),
        ("file:dir/", "needs a database file path"),
        ("file://remote/x.db", "local path"),
        ("file:x.db?synchronous=off", "normal or full"),
        ("file:x.db?timeout=soon", "number of seconds"),
        ("file:x.db?timeout=0", "between"),
        ("file:x.db?cache=shared", "unknown file URL option"),
    ],
)
def test_bad_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        StateRegistry(url)


def _pragma(registry: StateRegistry, name: str) -> Any:
    """A PRAGMA as seen by the backend's own pooled write connection."""
    backend = registry.backend
    return backend._write(  # type: ignore[attr-defined]
        StateKey("Probe", ""), lambda conn, now: conn.execute(f"PRAGMA {name}").fetchone()[0]
    )


def test_synchronous_full_is_applied(tmp_path: Path) -> None:
    with StateRegistry(f"file:{tmp_path}/s.db?synchronous=full") as registry:
        MyState(registry).set("a", 1)
        assert _pragma(registry, "synchronous") == 2  # FULL
    with StateRegistry(f"file:{tmp_path}/s.db") as registry:
        assert _pragma(registry, "synchronous") == 1  # NORMAL
        assert _pragma(registry, "journal_mode") == "wal"


def test_value_written_by_another_tool_is_reported_as_corrupt(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    with StateRegistry(f"file:{db}") as registry:
        MyState(registry).update(good=1, bad=2)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE qstate_values SET value = 'not json' WHERE key = 'bad'")
    conn.commit()
    with StateRegistry(f"file:{db}") as registry:
        assert MyState(registry).get("good") == 1
        with pytest.raises(CorruptDataError, match="not JSON text"):
            MyState(registry).get("bad")
        with pytest.raises(CorruptDataError):
            MyState(registry).get_all()


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    db.write_bytes(b"this is not a database at all, just text" * 100)
    with pytest.raises(CorruptDataError, match="not an SQLite database"):
        MyState(StateRegistry(f"file:{db}")).get("a")
    assert db.read_bytes().startswith(b"this is not a database"), "left untouched"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_unwritable_directory(tmp_path: Path) -> None:
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o500)
    with pytest.raises(BackendUnavailableError):
        MyState(StateRegistry(f"file:{locked}/state.db")).set("a", 1)


def test_path_under_a_regular_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    with pytest.raises(BackendUnavailableError, match="cannot use"):
        MyState(StateRegistry(f"file:{tmp_path}/plain/state.db")).set("a", 1)


def test_writer_blocked_past_timeout_gets_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    with StateRegistry(f"file:{db}?timeout=0.2") as registry:
        MyState(registry).set("a", 1)
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(BackendUnavailableError, match="locked by another writer"):
            MyState(registry).set("a", 2)
        assert MyState(registry).get("a") == 1, "reads go on during a write (WAL)"
        other.execute("ROLLBACK")
        MyState(registry).set("a", 3)
        assert MyState(registry).get("a") == 3


def test_cancelled_async_transaction_releases_the_lock(tmp_path: Path) -> None:
    async def main() -> None:
        async with AsyncStateRegistry(f"file:{tmp_path}/state.db?timeout=2") as registry:
            state = MyAsyncState(registry)
            await state.set("n", 0)
            entered = asyncio.Event()

            async def slow() -> None:
                async with state.transaction() as data:
                    entered.set()
                    data["n"] = 100
                    await asyncio.sleep(10)

            task = asyncio.create_task(slow())
            await entered.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # A transaction cancelled while still starting must not hold the lock either.
            starting = asyncio.create_task(state.modify(lambda d: {"n": 1}))
            async with state.transaction() as data:
                data["n"] = data["n"] + 1
                starting.cancel()
            assert await asyncio.wait_for(state.incr("n"), 5) in (2, 3)

    asyncio.run(main())


def test_expired_rows_are_invisible_then_deleted(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    with StateRegistry(f"file:{db}") as registry:
        MyState(registry, scope="old", ttl=0.2).update(a=1, b=2)
        MyState(registry, scope="kept").set("a", 1)
        time.sleep(0.3)
        assert MyState(registry, scope="old").get_all() == {}
        # A write without TTL to the expired state starts afresh: no resurrection.
        MyState(registry, scope="old").set("c", 3)
        assert MyState(registry, scope="old").get_all() == {"c": 3}
        assert [i.ttl for i in registry.list_states()] == [None, None]
        registry.backend._next_purge = 0  # type: ignore[attr-defined]
        MyState(registry, scope="kept").set("b", 2)  # a write purges expired rows
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT scope, key FROM qstate_values ORDER BY rowid").fetchall() == [
        ("kept", "a"),
        ("old", "c"),
        ("kept", "b"),
    ]


def test_a_commit_never_brings_expired_rows_back(tmp_path: Path) -> None:
    """A state that expired and was written again keeps its expired rows until a
    purge: a transaction must neither show them again (a TTL refreshes every
    row) nor put a key written anew in an expired row's place."""
    with StateRegistry(f"file:{tmp_path}/s.db") as registry:
        for scope in ("plain", "new-key", "ttl"):
            MyState(registry, scope=scope, ttl=0.2).update(a=1, b=2)
        time.sleep(0.3)
        for scope in ("plain", "new-key", "ttl"):
            MyState(registry, scope=scope).set("c", 3)  # a and b are still there, unseen
        plain = MyState(registry, scope="plain")
        plain.modify(lambda d: {**d, "c": 4})
        assert list(plain.get_all().items()) == [("c", 4)]
        new_key = MyState(registry, scope="new-key")
        new_key.modify(lambda d: {**d, "a": 10})
        assert list(new_key.get_all().items()) == [("c", 3), ("a", 10)], "a new key reads last"
        MyState(registry, scope="ttl", ttl=60).modify(lambda d: {**d, "c": 5})
        assert MyState(registry, scope="ttl").get_all() == {"c": 5}


def test_write_without_ttl_keeps_the_state_expiry(tmp_path: Path) -> None:
    with StateRegistry(f"file:{tmp_path}/s.db") as registry:
        MyState(registry, ttl=60).set("a", 1)
        MyState(registry).update(b=2, c=3)
        MyState(registry).incr("n")
        [info] = registry.list_states()
        assert info.ttl is not None
        assert 55 < info.ttl <= 60
    conn = sqlite3.connect(tmp_path / "s.db")
    expiries = {e for (e,) in conn.execute("SELECT expires_at FROM qstate_values")}
    assert len(expiries) == 1, "every live row of a state shares one expiry"


def _rows_changed(registry: StateRegistry, action: Any) -> int:
    """Value rows ``action`` inserted, updated or deleted, per SQLite's ``total_changes``.

    The count is per connection: a single-threaded registry reuses its one
    pooled connection, which the identity check makes sure of. Each change
    also appends one row to the change log (revisions); those are not counted.
    """

    def probe(conn: sqlite3.Connection, now: float) -> tuple[sqlite3.Connection, int, int]:
        logged = conn.execute("SELECT count(*) FROM qstate_changes").fetchone()[0]
        return conn, conn.total_changes, logged

    conn, before, logged_before = registry.backend._write(StateKey("Probe", ""), probe)  # type: ignore[attr-defined]
    action()
    same, after, logged_after = registry.backend._write(StateKey("Probe", ""), probe)  # type: ignore[attr-defined]
    assert same is conn, "one pooled connection saw the whole action"
    assert logged_after - logged_before <= 1, "one change-log row per change at most"
    return int(after - before - (logged_after - logged_before))


def test_a_one_key_modify_writes_one_row(tmp_path: Path) -> None:
    with StateRegistry(f"file:{tmp_path}/s.db") as registry:
        big = MyState(registry)
        big.update({f"k{i}": i for i in range(1000)})
        assert _rows_changed(registry, lambda: big.modify(lambda d: {**d, "k5": -5})) == 1
        assert _rows_changed(registry, lambda: big.modify(lambda d: {**d, "new": 1})) == 1
        gone = {k: v for k, v in big.get_all().items() if k != "k7"}
        assert _rows_changed(registry, lambda: big.modify(lambda d: gone)) == 1
        assert _rows_changed(registry, lambda: big.modify(lambda d: d)) == 0

        def in_transaction() -> None:
            with big.transaction() as data:
                data["k9"] = "nine"

        assert _rows_changed(registry, in_transaction) == 1
        data = big.get_all()
        assert (data["k5"], data["new"], data["k9"], "k7" in data) == (-5, 1, "nine", False)
        assert list(data)[-1] == "new", "a new key reads back last, as in a dict"


def test_a_value_changed_in_place_is_written(tmp_path: Path) -> None:
    """Unchanged values are not encoded again, but a container changed in place
    (the very object read) still is, at any depth, in a transaction or a modify."""
    with StateRegistry(f"file:{tmp_path}/s.db") as registry:
        state = MyState(registry)
        state.update(
            tags=["a"], deep={"a": {"b": [1]}}, s="x", n=1, f=1.0, t=True, none=None, other=0
        )

        def append_in_place() -> None:
            with state.transaction() as data:
                data["tags"].append("b")
                data["deep"]["a"]["b"].append(2)
                data["s"] = data["s"]  # the same object: unchanged

        assert _rows_changed(registry, append_in_place) == 2
        assert _rows_changed(registry, lambda: state.modify(_set_nested)) == 1
        assert _rows_changed(registry, lambda: state.modify(lambda d: {**d, "n": 1.0})) == 1
        assert _rows_changed(registry, lambda: state.modify(lambda d: {**d, "n": True})) == 1
        assert _rows_changed(registry, lambda: state.modify(lambda d: {**d, "t": 1})) == 1
        assert _rows_changed(registry, lambda: state.modify(lambda d: {**d, "f": 1})) == 1
        assert _rows_changed(registry, lambda: state.modify(lambda d: {**d, "none": 0})) == 1
        equal_copies = "".join(["x"]), int("0"), float("1")  # equal values, other objects
        assert (
            _rows_changed(registry, lambda: state.modify(lambda d: {**d, "s": equal_copies[0]}))
            == 0
        )
        assert (
            _rows_changed(
                registry, lambda: state.modify(lambda d: {**d, "other": equal_copies[1]})
            )
            == 0
        )
        data = state.get_all()
        assert data == {
            "tags": ["a", "b"],
            "deep": {"a": {"b": [1, 2], "c": "new"}},
            "s": "x",
            "n": True,
            "f": 1,
            "t": 1,
            "none": 0,
            "other": 0,
        }
        assert [type(data[k]) for k in ("n", "f", "t")] == [bool, int, int]
        [*_, nested, n_float, n_true, t_int, f_int, none_zero] = state.history()
        assert [entry["key"] for entry in nested.changes] == ["deep"]
        assert [change.changes[0]["new"] for change in (n_float, n_true, t_int, f_int)] == [
            1.0,
            True,
            1,
            1,
        ]
        assert none_zero.changes == [{"key": "none", "old": None, "new": 0}]


def test_what_a_commit_checks_and_compares() -> None:
    """A container is checked and compared even when it is the very object read (it
    may have been changed in place); a scalar only when it is another object."""
    before: dict[str, Any] = {"lst": [1], "d": {"a": [1]}, "s": "x", "n": 1, "t": True}
    document = dict(before)
    document["lst"].append(2)
    document["n"], document["t"] = True, 1
    checked, changed = check_changes(document, before)
    assert changed == ["lst", "d", "n", "t"]
    assert checked == document
    assert checked["lst"] is not document["lst"], "a private copy, as check_document makes"
    assert check_changes({**before, "new": None}, before)[1] == ["lst", "d", "new"]
    with pytest.raises(InvalidValueError, match=r"modify\(x\)\['bad'\]"):
        check_changes({**before, "bad": (1,)}, before, "modify(x)")
    with pytest.raises(InvalidNameError):
        check_changes({**before, "": 1}, before)


def test_a_key_qstate_would_refuse_blocks_only_a_change_of_it(tmp_path: Path) -> None:
    """Another program wrote a key qstate refuses (empty): a modify that leaves it
    alone neither checks nor rewrites it; one that changes it is refused.
    (``State.transaction`` checks the whole dict itself, before the backend.)"""
    db = tmp_path / "s.db"
    with StateRegistry(f"file:{db}") as registry:
        state = MyState(registry)
        state.set("a", 1)
        with sqlite3.connect(db) as conn:
            conn.execute(
                "INSERT INTO qstate_values (state, scope, key, value) "
                "VALUES ('MyState', '', '', '1')"
            )
        conn.close()
        state.modify(lambda d: {**d, "a": 2})
        assert state.get_all() == {"a": 2, "": 1}
        with pytest.raises(InvalidNameError):
            state.modify(lambda d: {**d, "": 2})
        assert state.get_all() == {"a": 2, "": 1}


def _set_nested(data: dict[str, Any]) -> None:
    data["deep"]["a"]["c"] = "new"  # in place, returning None


def test_a_modify_that_reorders_keys_reads_back_in_its_order(tmp_path: Path) -> None:
    with StateRegistry(f"file:{tmp_path}/s.db") as registry:
        state = MyState(registry)
        state.update(a=1, b=2, c=3)
        state.modify(lambda d: {"c": 3, "a": 1, "b": 20})
        assert list(state.get_all().items()) == [("c", 3), ("a", 1), ("b", 20)]
        MyState(registry, ttl=60).modify(lambda d: {**d, "b": 21})
        [info] = registry.list_states()
        assert info.ttl is not None
        assert info.ttl > 50, "a TTL still applies to every key"
