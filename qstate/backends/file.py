"""``file:``: states in one SQLite database, shared by every process on the machine.

URL forms: ``file:///abs/path/state.db``, ``file:relative/path.db``,
``file:~/state.db``, with optional query parameters ``synchronous=normal|full``
(default ``normal``) and ``timeout=SECONDS`` (how long a write waits for the
lock held by another writer, default 10).

Layout (stable; other tools may read it)::

    qstate_values(state, scope, key, value)   -- value is JSON text; scope '' = unscoped;
                                              -- rowid order = insertion order, as in a dict
    qstate_expiry(state, scope, expires_at)   -- Unix time; only for states with a TTL

The database runs in WAL mode; every write is one ``BEGIN IMMEDIATE``
transaction, so a read-modify-write is atomic across processes. Connections
are pooled, each used by one thread at a time; a forked child never touches its
parent's connections.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote

from .._async.backend import AsyncBackend
from .._codec import JSONValue, decode, encode
from .._errors import BackendUnavailableError, ConfigError, CorruptDataError
from .._keys import StateKey
from .._model import (
    MISSING,
    Document,
    Modifier,
    StateInfo,
    _Missing,
    add,
    apply_modifier,
    check_document,
)
from .._sync.backend import Backend

__all__ = ["AsyncFileBackend", "FileBackend", "open_async", "open_sync"]

SCHEMA_VERSION = 1
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS qstate_values (
        state TEXT NOT NULL,
        scope TEXT NOT NULL,
        key   TEXT NOT NULL,
        value TEXT NOT NULL,
        UNIQUE (state, scope, key)
    )""",
    """CREATE TABLE IF NOT EXISTS qstate_expiry (
        state      TEXT NOT NULL,
        scope      TEXT NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (state, scope)
    ) WITHOUT ROWID""",
)
_GET = (
    "SELECT value FROM qstate_values WHERE state = ?1 AND scope = ?2 AND key = ?4 "
    "AND NOT EXISTS (SELECT 1 FROM qstate_expiry e "
    "WHERE e.state = ?1 AND e.scope = ?2 AND e.expires_at <= ?3)"
)
_GET_ALL = (
    "SELECT key, value FROM qstate_values WHERE state = ?1 AND scope = ?2 "
    "AND NOT EXISTS (SELECT 1 FROM qstate_expiry e "
    "WHERE e.state = ?1 AND e.scope = ?2 AND e.expires_at <= ?3) ORDER BY rowid"
)
_UPSERT = (
    "INSERT INTO qstate_values (state, scope, key, value) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (state, scope, key) DO UPDATE SET value = excluded.value"
)
_EXPIRY = "SELECT expires_at FROM qstate_expiry WHERE state = ? AND scope = ?"
_SET_EXPIRY = (
    "INSERT INTO qstate_expiry (state, scope, expires_at) VALUES (?, ?, ?) "
    "ON CONFLICT (state, scope) DO UPDATE SET expires_at = excluded.expires_at"
)
_MAX_IDLE = 16
_T = TypeVar("_T")
_SYNCHRONOUS = {"normal": "NORMAL", "full": "FULL"}

# Connections inherited from a parent process are never closed or used by the
# child (SQLite forbids carrying a connection across fork); they are kept
# referenced here so that garbage collection does not close them either.
_INHERITED: list[sqlite3.Connection] = []


def parse_url(url: str) -> tuple[Path, str, float]:
    """Path, synchronous level and busy timeout of a ``file:`` URL."""
    rest = url[len("file:") :]
    rest, _, query = rest.partition("?")
    if rest.startswith("//"):
        host, _, path = rest[2:].partition("/")
        if host not in ("", "localhost"):
            raise ConfigError(f"file URL must name a local path, not host {host!r}: {url!r}")
        rest = "/" + path
    if not rest or rest.endswith("/"):
        raise ConfigError(f"file URL needs a database file path: {url!r}")
    options = dict(parse_qsl(query, keep_blank_values=True))
    level = options.pop("synchronous", "normal").lower()
    if level not in _SYNCHRONOUS:
        raise ConfigError(f"synchronous must be normal or full, not {level!r}")
    try:
        timeout = float(options.pop("timeout", "10"))
    except ValueError:
        raise ConfigError(f"timeout must be a number of seconds in {url!r}") from None
    if not 0 < timeout <= 3600:
        raise ConfigError(f"timeout must be between 0 and 3600 seconds in {url!r}")
    if options:
        raise ConfigError(f"unknown file URL option(s) {', '.join(options)} in {url!r}")
    return Path(unquote(rest)).expanduser(), _SYNCHRONOUS[level], timeout


@contextmanager
def _mapped_errors(path: Path) -> Iterator[None]:
    """Translate sqlite3's errors into qstate's, in one place."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        message = str(exc)
        if "locked" in message or "busy" in message:
            raise BackendUnavailableError(
                f"{path} stayed locked by another writer past the timeout; "
                "retry, or raise ?timeout= in the URL"
            ) from exc
        raise BackendUnavailableError(f"cannot use {path}: {message}") from exc
    except sqlite3.DatabaseError as exc:
        raise CorruptDataError(
            f"{path} is not a usable SQLite database ({exc}); "
            "restore it from a backup or move it away"
        ) from exc
    except OSError as exc:
        raise BackendUnavailableError(f"cannot use {path}: {exc.strerror or exc}") from exc


class FileBackend(Backend):
    """States in a SQLite database file (sync)."""

    locks_store_in_transaction = True
    """SQLite has one write lock per database: a transaction() blocks every writer."""

    def __init__(self, path: Path | str, synchronous: str = "NORMAL", timeout: float = 10.0):
        self.path = Path(path)
        self.url = f"file:{self.path}"
        self._synchronous = synchronous
        self._timeout = timeout
        self._idle: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._writer = threading.Lock()
        self._ready = False
        self._ready_lock = threading.Lock()

    # -- connections -------------------------------------------------------

    def _prepare_file(self) -> None:
        """Create the directory (0700) and the database (0600) before SQLite does."""
        directory = self.path.parent
        if not directory.exists():
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self.path.exists():
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
            os.close(fd)
            os.chmod(self.path, 0o600)

    def _open(self) -> sqlite3.Connection:
        if not self._ready:
            self._prepare_file()
        conn = sqlite3.connect(
            self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            if not self._ready:
                self._init_schema(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        with self._ready_lock:
            if self._ready:
                return
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise BackendUnavailableError(f"{self.path}: cannot switch to WAL mode ({mode})")
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise ConfigError(
                        f"{self.path} was written by a newer qstate (schema {version}); "
                        "upgrade qstate"
                    )
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.rollback()
            self._ready = True

    def _forget_parent(self) -> None:
        """In a forked child, drop what belongs to the parent process."""
        _INHERITED.extend(self._idle)
        self._idle = []
        self._writer = threading.Lock()  # may have been held by a parent thread
        self._pid = os.getpid()

    def _lock_writers(self) -> None:
        """Queue this process's writers on a lock rather than in SQLite's busy loop.

        SQLite's busy handler sleeps in coarse steps, so contending threads waste
        time and starve; within one process a lock hands over at once. Other
        processes still wait in SQLite, under the same timeout.
        """
        if self._pid != os.getpid():
            self._forget_parent()
        if not self._writer.acquire(timeout=self._timeout):
            raise BackendUnavailableError(
                f"{self.path}: another writer in this process held the lock past the "
                f"{self._timeout:g} s timeout; retry, or raise ?timeout= in the URL"
            )

    def _checkout(self) -> sqlite3.Connection:
        """A connection for this thread's exclusive use until :meth:`_checkin`."""
        if self._pid != os.getpid():
            self._forget_parent()
        try:
            return self._idle.pop()
        except IndexError:
            return self._open()

    def _checkin(self, conn: sqlite3.Connection) -> None:
        """Roll back anything uncommitted and return ``conn`` to the pool."""
        if conn.in_transaction:
            conn.rollback()
        if len(self._idle) < _MAX_IDLE and self._pid == os.getpid():
            self._idle.append(conn)
        else:
            conn.close()

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with _mapped_errors(self.path):
            conn = self._checkout()
            try:
                yield conn
            finally:
                self._checkin(conn)

    @contextmanager
    def _write(self, key: StateKey) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction on ``key``; expired data purged first."""
        self._lock_writers()
        try:
            with self._connection() as conn:
                conn.execute("BEGIN IMMEDIATE")
                self._purge_expired(conn, key)
                yield conn
                conn.execute("COMMIT")
        finally:
            self._writer.release()

    @staticmethod
    def _purge_expired(conn: sqlite3.Connection, key: StateKey) -> None:
        row = conn.execute(_EXPIRY, key).fetchone()
        if row is not None and row[0] <= time.time():
            conn.execute("DELETE FROM qstate_values WHERE state = ? AND scope = ?", key)
            conn.execute("DELETE FROM qstate_expiry WHERE state = ? AND scope = ?", key)

    @staticmethod
    def _touch(conn: sqlite3.Connection, key: StateKey, ttl: float | None) -> None:
        if ttl is not None:
            conn.execute(_SET_EXPIRY, (*key, time.time() + ttl))

    def _read_all(self, conn: sqlite3.Connection, key: StateKey) -> Document:
        rows = conn.execute(_GET_ALL, (*key, time.time())).fetchall()
        return {k: decode(v, f"{self.path}: {key} key {k!r}") for k, v in rows}

    def _forget_if_empty(self, conn: sqlite3.Connection, key: StateKey) -> None:
        exists = conn.execute(
            "SELECT 1 FROM qstate_values WHERE state = ? AND scope = ? LIMIT 1", key
        ).fetchone()
        if exists is None:
            conn.execute("DELETE FROM qstate_expiry WHERE state = ? AND scope = ?", key)

    # -- reads -------------------------------------------------------------

    def get(self, key: StateKey, field: str) -> JSONValue | _Missing:
        with self._connection() as conn:
            row = conn.execute(_GET, (*key, time.time(), field)).fetchone()
        if row is None:
            return MISSING
        return decode(row[0], f"{self.path}: {key} key {field!r}")

    def get_all(self, key: StateKey) -> Document:
        with self._connection() as conn:
            return self._read_all(conn, key)

    def list_states(self, prefix: str = "") -> list[StateInfo]:
        now = time.time()
        like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT v.state, v.scope, count(*), e.expires_at FROM qstate_values v "
                "LEFT JOIN qstate_expiry e ON e.state = v.state AND e.scope = v.scope "
                "WHERE v.state LIKE ? ESCAPE '\\' AND (e.expires_at IS NULL OR e.expires_at > ?) "
                "GROUP BY v.state, v.scope ORDER BY v.state, v.scope",
                (like, now),
            ).fetchall()
        return [
            StateInfo(name, scope, count, None if exp is None else max(exp - now, 0.0))
            for name, scope, count, exp in rows
            if name.startswith(prefix)  # LIKE is case-insensitive for ASCII
        ]

    # -- writes ------------------------------------------------------------

    def set(self, key: StateKey, field: str, value: JSONValue, ttl: float | None) -> None:
        text = encode(value)
        with self._write(key) as conn:
            conn.execute(_UPSERT, (*key, field, text))
            self._touch(conn, key, ttl)

    def update(self, key: StateKey, mapping: Document, ttl: float | None) -> Document:
        rows = [(*key, k, encode(v)) for k, v in mapping.items()]
        with self._write(key) as conn:
            conn.executemany(_UPSERT, rows)
            self._touch(conn, key, ttl)
            return self._read_all(conn, key)

    def delete(self, key: StateKey, fields: Sequence[str], ttl: float | None) -> int:
        with self._write(key) as conn:
            removed = 0
            for field in fields:
                cursor = conn.execute(
                    "DELETE FROM qstate_values WHERE state = ? AND scope = ? AND key = ?",
                    (*key, field),
                )
                removed += cursor.rowcount
            if removed:
                self._touch(conn, key, ttl)
                self._forget_if_empty(conn, key)
        return removed

    def clear(self, key: StateKey) -> bool:
        with self._write(key) as conn:
            cursor = conn.execute("DELETE FROM qstate_values WHERE state = ? AND scope = ?", key)
            conn.execute("DELETE FROM qstate_expiry WHERE state = ? AND scope = ?", key)
        return cursor.rowcount > 0

    def incr(
        self, key: StateKey, field: str, amount: int | float, ttl: float | None
    ) -> int | float:
        with self._write(key) as conn:
            row = conn.execute(
                "SELECT value FROM qstate_values WHERE state = ? AND scope = ? AND key = ?",
                (*key, field),
            ).fetchone()
            current = MISSING if row is None else decode(row[0], f"{self.path}: {key}")
            result = add(current, amount, field)
            conn.execute(_UPSERT, (*key, field, encode(result)))
            self._touch(conn, key, ttl)
        return result

    # -- transactions ------------------------------------------------------
    # Split into begin / commit / abort so that the async twin can run each step
    # in a worker thread while the transaction body runs on the event loop.

    def begin(self, key: StateKey) -> tuple[sqlite3.Connection, Document]:
        """Take the write locks, check out a connection, read the document.

        Every successful ``begin`` is ended by exactly one ``commit`` or ``abort``.
        """
        self._lock_writers()
        try:
            with _mapped_errors(self.path):
                conn = self._checkout()
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    self._purge_expired(conn, key)
                    return conn, self._read_all(conn, key)
                except BaseException:
                    self._checkin(conn)
                    raise
        except BaseException:
            self._writer.release()
            raise

    def commit(
        self, conn: sqlite3.Connection, key: StateKey, data: Document, ttl: float | None
    ) -> Document:
        """Validate and write ``data`` as the whole document, then release ``conn``."""
        try:
            document = check_document(data)
            with _mapped_errors(self.path):
                conn.execute("DELETE FROM qstate_values WHERE state = ? AND scope = ?", key)
                conn.executemany(_UPSERT, [(*key, k, encode(v)) for k, v in document.items()])
                if document:
                    self._touch(conn, key, ttl)
                else:
                    conn.execute("DELETE FROM qstate_expiry WHERE state = ? AND scope = ?", key)
                conn.execute("COMMIT")
        finally:
            self.abort(conn)
        return document

    def abort(self, conn: sqlite3.Connection) -> None:
        """End what ``begin`` started, discarding anything not committed."""
        try:
            with _mapped_errors(self.path):
                self._checkin(conn)
        finally:
            self._writer.release()

    @contextmanager
    def transaction(self, key: StateKey, ttl: float | None) -> Iterator[Document]:
        conn, data = self.begin(key)
        try:
            yield data
        except BaseException:
            self.abort(conn)
            raise
        self.commit(conn, key, data, ttl)

    def modify(self, key: StateKey, fn: Modifier, ttl: float | None) -> Document:
        conn, data = self.begin(key)
        try:
            new = apply_modifier(fn, data, key)
        except BaseException:
            self.abort(conn)
            raise
        return self.commit(conn, key, new, ttl)

    def close(self) -> None:
        idle, self._idle = self._idle, []
        if self._pid == os.getpid():
            for conn in idle:
                conn.close()


class AsyncFileBackend(AsyncBackend):
    """The async twin: every SQLite call runs in a worker thread, never on the loop."""

    locks_store_in_transaction = True

    def __init__(self, sync: FileBackend) -> None:
        self.sync = sync
        self.url = sync.url
        # Writers queue here, on the loop, before taking a worker thread: were they
        # to queue in threads, a transaction held across an await could need a
        # thread to commit while every thread waits for that very transaction.
        self._writers = asyncio.Lock()

    async def _write(self, fn: Callable[..., _T], *args: Any) -> _T:
        async with self._writers:
            return await asyncio.to_thread(fn, *args)

    async def get(self, key: StateKey, field: str) -> JSONValue | _Missing:
        return await asyncio.to_thread(self.sync.get, key, field)

    async def get_all(self, key: StateKey) -> Document:
        return await asyncio.to_thread(self.sync.get_all, key)

    async def set(self, key: StateKey, field: str, value: JSONValue, ttl: float | None) -> None:
        await self._write(self.sync.set, key, field, value, ttl)

    async def update(self, key: StateKey, mapping: Document, ttl: float | None) -> Document:
        return await self._write(self.sync.update, key, mapping, ttl)

    async def delete(self, key: StateKey, fields: Sequence[str], ttl: float | None) -> int:
        return await self._write(self.sync.delete, key, fields, ttl)

    async def clear(self, key: StateKey) -> bool:
        return await self._write(self.sync.clear, key)

    async def incr(
        self, key: StateKey, field: str, amount: int | float, ttl: float | None
    ) -> int | float:
        return await self._write(self.sync.incr, key, field, amount, ttl)

    async def modify(self, key: StateKey, fn: Modifier, ttl: float | None) -> Document:
        return await self._write(self.sync.modify, key, fn, ttl)

    async def list_states(self, prefix: str = "") -> list[StateInfo]:
        return await asyncio.to_thread(self.sync.list_states, prefix)

    @asynccontextmanager
    async def transaction(self, key: StateKey, ttl: float | None) -> AsyncIterator[Document]:
        async with self._writers:
            begun = asyncio.ensure_future(asyncio.to_thread(self.sync.begin, key))
            try:
                conn, data = await asyncio.shield(begun)
            except asyncio.CancelledError:
                # The thread still finishes begin(); end that transaction then.
                begun.add_done_callback(self._abort_when_begun)
                raise
            try:
                yield data
            except BaseException:
                await asyncio.shield(asyncio.to_thread(self.sync.abort, conn))
                raise
            await asyncio.shield(asyncio.to_thread(self.sync.commit, conn, key, data, ttl))

    def _abort_when_begun(
        self, begun: asyncio.Future[tuple[sqlite3.Connection, Document]]
    ) -> None:
        if not begun.cancelled() and begun.exception() is None:
            conn, _ = begun.result()
            asyncio.get_running_loop().run_in_executor(None, self.sync.abort, conn)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.sync.close)


def open_sync(url: str) -> FileBackend:
    path, synchronous, timeout = parse_url(url)
    return FileBackend(path, synchronous, timeout)


def open_async(url: str) -> AsyncFileBackend:
    return AsyncFileBackend(open_sync(url))
