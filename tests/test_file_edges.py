"""The file backend at its edges: files it does not own, reads that must not wait or write.

Everything here runs the ``qstate`` executable or other processes on real files,
as a user meets it: another program's SQLite database, a symlink, a reader next
to a long transaction, a read-only directory, a full disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import resource
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from qstate import AsyncStateRegistry, CorruptDataError, StateRegistry
from qstate.backends.file import layout as sql

QSTATE = str(Path(sys.executable).parent / "qstate")
LAYOUT = """CREATE TABLE qstate_values (
    state TEXT NOT NULL, scope TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    expires_at REAL, UNIQUE (state, scope, key))"""


def qstate(*args: str, cwd: Path | None = None, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [QSTATE, *args], capture_output=True, text=True, cwd=cwd, timeout=60, **kwargs
    )


def _fingerprint(directory: Path) -> dict[str, str]:
    """Every file in ``directory`` with the sha256 of its bytes."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.iterdir())
        if path.is_file()
    }


def _sqlite(path: Path, *statements: str, wal: bool = False) -> None:
    conn = sqlite3.connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode = WAL")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


FOREIGN: dict[str, Callable[[Path], object]] = {
    "another program's database": lambda p: _sqlite(
        p,
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)",
        "INSERT INTO users VALUES (1, 'x')",
    ),
    "another program's database, user_version 7": lambda p: _sqlite(
        p, "CREATE TABLE t (x)", "PRAGMA user_version = 7"
    ),
    "another program's WAL database": lambda p: _sqlite(p, "CREATE TABLE t (x)", wal=True),
    "an empty database with user_version 3": lambda p: _sqlite(p, "PRAGMA user_version = 3"),
    "a qstate_values table with other columns": lambda p: _sqlite(
        p, "CREATE TABLE qstate_values (state, key, value)", "PRAGMA user_version = 1"
    ),
    "qstate's layout next to another program's table": lambda p: _sqlite(
        p, LAYOUT, "CREATE TABLE orders (id)", "PRAGMA user_version = 1"
    ),
    "not SQLite at all": lambda p: p.write_text("name,score\nalice,3\n" * 50),
}


@pytest.mark.parametrize("make", FOREIGN.values(), ids=FOREIGN.keys())
def test_a_foreign_file_is_refused_and_left_byte_for_byte(
    tmp_path: Path, make: Callable[[Path], object]
) -> None:
    other = tmp_path / "other_app.db"
    make(other)
    before = _fingerprint(tmp_path)
    url = f"file:{other}"
    for args in (["get", "S", "a"], ["set", "S", "a", "1"], ["list"], ["export"]):
        result = qstate("--url", url, *args)
        assert result.returncode == 3, (args, result.stderr)
        assert result.stdout == ""
        [line] = result.stderr.splitlines()
        assert str(other) in line
        assert "not a qstate database" in line or "not an SQLite database" in line
    with StateRegistry(url) as registry, pytest.raises(CorruptDataError):
        registry.state("S").update(a=1)
    assert _fingerprint(tmp_path) == before, "no journal switch, no side files, no new table"


@pytest.mark.slow
def test_a_file_being_initialized_is_never_taken_for_another_programs(tmp_path: Path) -> None:
    """A reader that looks while a writer creates the layout sees nothing or all of it.

    Seen in CI: the layout check read ``user_version`` (0) and the tables in two
    read transactions, with the writer's commit in between, and refused a fresh
    qstate file as foreign. The window is microseconds wide, so it is tried many
    times over; before the fix about one round in 300 failed.
    """
    for round_ in range(300):
        url = f"file:{tmp_path / f'state-{round_}.db'}"

        def write(url: str = url) -> None:
            with StateRegistry(url) as registry:
                registry.state("S").set("a", 1)

        writer = threading.Thread(target=write)
        writer.start()
        seen = None
        while seen is None:  # a new registry each time, so each read checks the layout
            with StateRegistry(url) as reader:
                seen = reader.state("S").get("a")
        writer.join()
        assert seen == 1


def test_a_newer_layout_says_to_upgrade_and_is_left_alone(tmp_path: Path) -> None:
    newer = tmp_path / "state.db"
    _sqlite(newer, LAYOUT, f"PRAGMA user_version = {sql.SCHEMA_VERSION + 1}", wal=True)
    before = _fingerprint(tmp_path)
    for args in (["get", "S", "a"], ["set", "S", "a", "1"]):
        result = qstate("--url", f"file:{newer}", *args)
        assert result.returncode == 2, result.stderr
        assert "newer qstate" in result.stderr
        assert "upgrade" in result.stderr
    assert _fingerprint(tmp_path) == before


def test_the_default_path_as_a_link_to_another_programs_database(tmp_path: Path) -> None:
    other = tmp_path / "other_app.db"
    FOREIGN["another program's database"](other)
    (tmp_path / ".qstate").mkdir()
    (tmp_path / ".qstate" / "state.db").symlink_to(other)
    before = _fingerprint(tmp_path)
    env = {**os.environ, "QSTATE_URL": ""}
    env.pop("QSTATE_URL")
    for args in (["get", "S", "a"], ["set", "S", "a", "1"]):
        result = qstate(*args, cwd=tmp_path, env=env)
        assert result.returncode == 3, result.stderr
        assert "not a qstate database" in result.stderr
    assert _fingerprint(tmp_path) == before
    assert sorted(os.listdir(tmp_path / ".qstate")) == ["state.db"]


def test_a_dangling_link_is_never_followed_to_create_a_file(tmp_path: Path) -> None:
    link = tmp_path / "state.db"
    link.symlink_to(tmp_path / "elsewhere.db")
    url = f"file:{link}"
    read = qstate("--url", url, "get", "S", "a")
    assert read.returncode == 1, read.stderr
    written = qstate("--url", url, "set", "S", "a", "1")
    assert written.returncode == 2, written.stderr
    assert "symbolic link" in written.stderr
    assert len(written.stderr.splitlines()) == 1
    assert sorted(os.listdir(tmp_path)) == ["state.db"]
    assert link.is_symlink()


def test_reads_in_an_empty_directory_create_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "QSTATE_URL"}
    for args, code in (
        (["get", "S", "a"], 1),
        (["get", "S"], 1),
        (["list"], 0),
        (["export"], 0),
        (["delete", "S", "a"], 0),
        (["clear", "--yes", "S"], 0),
        (["doctor"], 0),
    ):
        result = qstate(*args, cwd=tmp_path, env=env)
        assert result.returncode == code, (args, result.stderr)
        assert os.listdir(tmp_path) == [], f"{args} created {os.listdir(tmp_path)}"
    with StateRegistry(f"file:{tmp_path}/sub/state.db") as registry:
        assert registry.state("S").get_all() == {}
        assert registry.list_states() == []
    assert os.listdir(tmp_path) == []


def test_every_directory_qstate_creates_is_private_whatever_the_umask(tmp_path: Path) -> None:
    db = tmp_path / "a" / "b" / "c" / "state.db"
    argv = ["qstate", "--url", f"file:{db}", "set", "S", "k", "1"]
    script = f"import os; os.umask(0); os.execv({QSTATE!r}, {argv!r})"
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    for directory in (tmp_path / "a", tmp_path / "a" / "b", db.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


HOLD_A_TRANSACTION = """
import sys
from qstate import StateRegistry
with StateRegistry(sys.argv[1]) as registry:
    with registry.state("Busy").transaction() as data:
        data["during"] = "uncommitted"
        print("ready", flush=True)
        sys.stdin.readline()
"""


@pytest.fixture
def held_transaction(tmp_path: Path) -> Iterator[str]:
    """A file URL whose database another process holds in an open ``transaction()``."""
    url = f"file:{tmp_path}/state.db?timeout=30"
    with StateRegistry(url) as registry:
        registry.state("Busy").update(before="committed", n=1)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_TRANSACTION, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "ready\n"
        yield url
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_reads_do_not_wait_for_another_process_transaction(held_transaction: str) -> None:
    url = held_transaction
    with StateRegistry(url) as registry:
        state = registry.state("Busy")
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            assert state.get_all() == {"before": "committed", "n": 1}
            assert state.get("n") == 1
            assert [info.name for info in registry.list_states()] == ["Busy"]
            timings.append(time.perf_counter() - started)
        print(f"\nlibrary reads beside a transaction: median {sorted(timings)[2] * 1000:.1f} ms")
        # The write lock's timeout is 30 s: a read that waited for it would take that long.
        assert sorted(timings)[2] < 1.0
    started = time.monotonic()
    for args in (["get", "Busy", "before"], ["export"], ["list"], ["doctor"]):
        result = qstate("--url", url, *args)
        assert result.returncode == 0, (args, result.stderr)
    assert "committed" in qstate("--url", url, "get", "Busy", "before").stdout
    assert time.monotonic() - started < 20, "five CLI reads, none waiting for the lock"


def test_a_cancelled_async_begin_releases_the_writer_lock(tmp_path: Path) -> None:
    url = f"file:{tmp_path}/state.db?timeout=20"

    async def scenario() -> None:
        registry = AsyncStateRegistry(url)
        state = registry.state("S")
        await state.set("k", 0)
        blocker = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # begin() now waits in SQLite's busy handler
        task = asyncio.create_task(_enter_transaction(state))
        writer_lock = registry.backend.sync._writer  # type: ignore[attr-defined]
        deadline = time.monotonic() + 20
        while not writer_lock.locked():  # begin() is under way in its thread
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        blocker.execute("ROLLBACK")  # begin() completes now; its transaction must end
        blocker.close()
        await asyncio.wait_for(state.set("k", 1), timeout=15)
        assert await state.get("k") == 1
        await registry.aclose()

    asyncio.run(scenario())


async def _enter_transaction(state: Any) -> None:
    async with state.transaction() as data:
        data["never"] = "written"


def _deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("stored", "reason"),
    [(_deep_json(10_000), "nested deeper"), ("1e999", "inf"), ('[1, {"a": -1e999}]', "inf")],
)
def test_unreadable_stored_values_are_corrupt_data(
    tmp_path: Path, stored: str, reason: str
) -> None:
    url = f"file:{tmp_path}/state.db"
    assert qstate("--url", url, "set", "S", "good", "1").returncode == 0
    conn = sqlite3.connect(tmp_path / "state.db")
    with conn:
        conn.execute("INSERT INTO qstate_values VALUES ('S', '', 'bad', ?, NULL)", (stored,))
    conn.close()
    for args in (["get", "S", "bad"], ["--json", "get", "S"], ["export"]):
        result = qstate("--url", url, *args)
        assert result.returncode == 3, (args, result.stderr)
        assert result.stdout == ""
        [line] = result.stderr.splitlines()
        assert reason in line or (args == ["export"] and "S" in line)
        assert "Infinity" not in line
    assert qstate("--url", url, "get", "S", "good").stdout == "1\n"


# -- as another user, and on a full disk ------------------------------------


def test_reads_of_a_0400_database_in_a_read_only_directory(
    shared_directory: Path, as_nobody: list[str]
) -> None:
    nobody = as_nobody
    data = shared_directory / "data"
    url = f"file:{data}/state.db"
    assert qstate("--url", url, "update", "Doc", "k=kept", "n=1").returncode == 0
    assert sorted(os.listdir(data)) == ["state.db"], "the last connection removed the WAL"
    os.chown(data, 65534, 65534)
    os.chown(data / "state.db", 65534, 65534)
    (data / "state.db").chmod(0o400)
    data.chmod(0o500)
    before = _fingerprint(data)
    as_nobody = [*nobody, QSTATE, "--url", url]
    for args, expected in (
        (["get", "Doc", "k"], "kept\n"),
        (["get", "Doc"], {"k": "kept", "n": 1}),
        (["list"], None),
        (["export"], None),
        (["doctor"], None),
    ):
        result = subprocess.run([*as_nobody, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (args, result.stderr)
        if isinstance(expected, str):
            assert result.stdout == expected
        elif expected is not None:
            assert json.loads(result.stdout) == expected
    refused = subprocess.run(
        [*as_nobody, "set", "Doc", "k", "changed"], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 3
    assert len(refused.stderr.splitlines()) == 1
    assert _fingerprint(data) == before


def _no_file_may_grow() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def test_reads_on_a_full_disk(tmp_path: Path) -> None:
    """With RLIMIT_FSIZE 0 no file may grow: SQLite cannot even make its WAL index."""
    url = f"file:{tmp_path}/state.db"
    assert qstate("--url", url, "update", "Doc", "k=kept", "n=1").returncode == 0
    for args in (["get", "Doc", "k"], ["--json", "get", "Doc"], ["list"], ["export"], ["doctor"]):
        result = qstate("--url", url, *args, preexec_fn=_no_file_may_grow)
        assert result.returncode == 0, (args, result.stderr)
        assert "kept" in result.stdout or args[0] in ("list", "doctor")
    full = qstate("--url", url, "set", "Doc", "k", "x" * 100_000, preexec_fn=_no_file_may_grow)
    assert full.returncode == 3
    assert qstate("--url", url, "get", "Doc", "k").stdout == "kept\n"


def test_a_layout_1_file_reads_as_before_and_the_first_write_migrates_it(tmp_path: Path) -> None:
    """Layout 2 adds the change log: a layout-1 file (qstate 0.1) keeps its data, reads
    without being changed, and its first write adds the table in one transaction."""
    db = tmp_path / "state.db"
    _sqlite(
        db,
        LAYOUT,
        "INSERT INTO qstate_values VALUES ('S', '', 'a', '1', NULL)",
        "PRAGMA user_version = 1",
        wal=True,
    )
    before = _fingerprint(tmp_path)["state.db"]
    with StateRegistry(f"file:{db}") as registry:
        state = registry.state("S")
        assert state.get_all() == {"a": 1}
        assert state.revision() == 0
        assert _fingerprint(tmp_path)["state.db"] == before, "a read does not migrate"
        state.set("b", 2)
        assert state.get_all() == {"a": 1, "b": 2}
        assert state.revision() == 1
        assert [c.changes for c in _first(state.watch(since=0))] == [[{"key": "b", "new": 2}]]
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone() == (4,)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


LAYOUT_2_CHANGES = """CREATE TABLE qstate_changes (
    state TEXT NOT NULL, scope TEXT NOT NULL, rev INTEGER NOT NULL, epoch REAL NOT NULL,
    time REAL NOT NULL, changes TEXT NOT NULL, PRIMARY KEY (state, scope, rev)) WITHOUT ROWID"""


def test_a_layout_2_file_keeps_its_history_and_the_first_write_adds_origins(
    tmp_path: Path,
) -> None:
    """Layout 3 adds who made each change: a layout-2 file's changes read without an
    origin, unchanged by reads, and its first write adds the column in one transaction."""
    db = tmp_path / "state.db"
    _sqlite(
        db,
        LAYOUT,
        LAYOUT_2_CHANGES,
        "INSERT INTO qstate_values VALUES ('S', '', 'a', '1', NULL)",
        "INSERT INTO qstate_changes VALUES ('S', '', 1, 1.0, 2.0, '[{\"key\":\"a\",\"new\":1}]')",
        "PRAGMA user_version = 2",
        wal=True,
    )
    before = _fingerprint(tmp_path)["state.db"]
    with StateRegistry(f"file:{db}") as registry:
        state = registry.state("S")
        [old] = state.history()
        assert (old.rev, old.changes, old.origin) == (1, [{"key": "a", "new": 1}], None)
        assert _fingerprint(tmp_path)["state.db"] == before, "a read does not migrate"
        state.set("a", 2)
        assert [(c.rev, c.origin is None) for c in state.history()] == [(1, True), (2, False)]
        assert state.history()[-1].origin == {"host": socket.gethostname(), "pid": os.getpid()}
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone() == (4,)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


LAYOUT_3_CHANGES = LAYOUT_2_CHANGES.replace(
    "changes TEXT NOT NULL,", "changes TEXT NOT NULL, origin TEXT, keep INTEGER,"
)


def test_a_layout_3_file_gets_its_state_expiry_index_with_the_first_write(
    tmp_path: Path,
) -> None:
    """Layout 4 adds an index: a state's expired rows are found by a seek, not by
    visiting every row of the state (history reads, TTL writes, commits)."""
    db = tmp_path / "state.db"
    _sqlite(
        db,
        LAYOUT,
        "CREATE INDEX qstate_values_expiry ON qstate_values (expires_at)"
        " WHERE expires_at IS NOT NULL",
        LAYOUT_3_CHANGES,
        "INSERT INTO qstate_values VALUES ('S', '', 'a', '1', 4102444800.0)",
        "INSERT INTO qstate_changes VALUES"
        " ('S', '', 1, 1.0, 2.0, '[{\"key\":\"a\",\"new\":1}]', NULL, NULL)",
        "PRAGMA user_version = 3",
        wal=True,
    )
    before = _fingerprint(tmp_path)["state.db"]
    with StateRegistry(f"file:{db}") as registry:
        state = registry.state("S")
        assert state.get_all() == {"a": 1}
        assert [change.rev for change in state.history()] == [1]
        assert _fingerprint(tmp_path)["state.db"] == before, "a read does not migrate"
        state.set("b", 2)
        assert state.get_all() == {"a": 1, "b": 2}
        assert [change.rev for change in state.history()] == [1, 2]
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone() == (4,)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    now = time.time()
    for statement, params in (
        (sql.DELETE_EXPIRED_OF_STATE, ("S", "", 0, now)),
        (sql.LAST_EXPIRY, ("S", "", now)),  # every write
        (sql.LAST_CHANGES_AFTER[4], ("S", "", 0, now, 10)),
        (sql.CHANGES_AFTER[4], ("S", "", 0, now)),
    ):
        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + statement, params)]
        searches = [step for step in plan if "qstate_values" in step]
        assert searches, plan
        assert all("qstate_values_state_expiry" in step for step in searches), plan
    conn.close()


def _first(changes: Iterator[Any]) -> list[Any]:
    return [next(changes)]


def test_a_watcher_behind_an_expired_life_is_told_it_lost_changes(tmp_path: Path) -> None:
    """The expired life's changes are hidden, then deleted by the next write,
    which begins a new life: a watcher that had not read them all must hear so,
    not follow the new life as if nothing were missed."""
    from qstate import ChangesLostError
    from qstate._keys import StateKey

    with StateRegistry(f"file:{tmp_path}/s.db") as registry:
        expiring = registry.state("S", ttl=1)
        expiring.set("a", 1)
        expiring.set("a", 2)
        backend = registry.backend
        behind = backend.follower(StateKey("S", ""), 1)  # type: ignore[attr-defined]
        current = backend.follower(StateKey("S", ""), None)  # type: ignore[attr-defined]
        time.sleep(1.5)
        assert behind.poll() == [], "an expired change is not delivered"
        registry.state("S").set("b", 9)
        time.sleep(1.1)  # a quiet follower looks for a new life once a second
        with pytest.raises(ChangesLostError, match=r"changes 2\.\.2 of S expired"):
            behind.poll()
        [change] = current.poll()
        assert (change.rev, change.changes) == (1, [{"key": "b", "new": 9}])
