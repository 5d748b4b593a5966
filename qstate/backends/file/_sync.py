"""The file backend's sync implementation: SQLite is a sync library, so this is the source.

Unlike the memory and Redis backends, the async twin is not generated from an
async source: SQLite has no async API, so ``_async.AsyncFileBackend`` runs each
call of this class in a worker thread, and what it adds (queueing writers on the
event loop, finishing a cancelled ``begin``) has no sync counterpart to generate.

The database runs in WAL mode, so readers never wait for writers. Every write
is one ``BEGIN IMMEDIATE`` transaction, so a read-modify-write is atomic across
processes. Connections are pooled, each used by one thread at a time; a forked
child never touches its parent's connections.

Every write that changes a state appends its change to ``qstate_changes`` in
that same transaction (see ``layout``); ``watch`` polls that table by revision
every ``POLL_INTERVAL`` seconds, one primary-key seek that reads nothing else.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from urllib.parse import quote

from ..._changes import LINGER, LOG_SIZE, Change, decode_changes, iso_time, text_entry
from ..._codec import JSONValue, decode, encode
from ..._errors import (
    BackendUnavailableError,
    ChangesLostError,
    ConfigError,
    CorruptDataError,
    UsageError,
)
from ..._keys import StateKey
from ..._model import (
    MISSING,
    Document,
    Modifier,
    StateInfo,
    _Missing,
    add,
    check_changes,
    modified,
)
from ..._origin import decode_origin, origin_text
from ..._sync.backend import Backend
from . import layout as sql

__all__ = ["FileBackend"]

_MAX_IDLE = 16
_PURGE_INTERVAL = 60.0
"""At most this often (seconds) a write also deletes every expired row."""
_T = TypeVar("_T")
POLL_INTERVAL = 0.05
"""Seconds between two reads of the change log by a watcher with nothing new."""
_RESTART_CHECK = 1.0
"""Seconds between a quiet watcher's checks that the state's count did not restart."""

# Connections inherited from a parent process are never closed or used by the
# child (SQLite forbids carrying a connection across fork); they are kept
# referenced here so that garbage collection does not close them either.
_INHERITED: list[sqlite3.Connection] = []
_LIVE_BACKENDS: weakref.WeakSet[FileBackend] = weakref.WeakSet()


class Begun(NamedTuple):
    """An open write transaction on one state, as ``begin`` left it."""

    conn: sqlite3.Connection
    data: Document
    expires: float | None
    stored: dict[str, str]
    """Each key's JSON text as read: ``commit`` writes only the keys that differ."""
    original: Document
    """``data`` as read (a shallow copy): ``commit`` need not encode a value that is
    still the very same immutable object, since its text is the stored one."""


def _keeps_order(stored: dict[str, str], document: Document, removed: list[str]) -> bool:
    """Whether ``document`` lists the kept keys in their stored order, new ones last.

    Then writing only the changes reads back in ``document``'s order (an update
    keeps a row's ``rowid``, an insert takes the next one), as a dict would.
    ``document`` holds the kept keys and new ones only, so it is enough that it
    begins with the kept keys in order.
    """
    kept = [field for field in stored if field in document] if removed else list(stored)
    return list(islice(document, len(kept))) == kept


def _after_fork_in_child() -> None:
    for backend in list(_LIVE_BACKENDS):
        backend._forget_parent()


os.register_at_fork(after_in_child=_after_fork_in_child)


class FileBackend(Backend):
    """States in a SQLite database file (sync)."""

    locks_store_in_transaction = True
    """SQLite has one write lock per database: a transaction() blocks every writer."""

    keeps_revisions = True

    def __init__(
        self,
        path: Path | str,
        synchronous: str = "NORMAL",
        timeout: float = 10.0,
        history: int | None = None,
    ):
        self.path = Path(path)
        self.history_size = history
        self.url = f"file:{self.path}"
        self._synchronous = synchronous
        self._timeout = timeout
        self._idle: list[sqlite3.Connection] = []
        self._readers = threading.local()
        self._writer = threading.Lock()
        self._ready = False
        """The file holds the current layout (so writers may write)."""
        self._readable = False
        """The file holds a qstate layout, current or older (so readers may read)."""
        self._layout = sql.SCHEMA_VERSION
        """The layout found, once readable: readers of an older one use its statements."""
        self._ready_lock = threading.Lock()
        self._next_purge = 0.0
        _LIVE_BACKENDS.add(self)

    # -- connections -------------------------------------------------------
    # Readers and writers open the file differently, because qstate never changes
    # a file it does not own and a read never writes: a reader opens the database
    # read-only and never creates it; only the first write creates or initializes
    # it, after an inspection that reads nothing but the file itself.

    def _connect(self, query: str = "") -> sqlite3.Connection:
        target: str | Path = self.path
        if query:  # a URI, so that SQLite gets mode=ro / immutable=1
            target = "file:" + quote(str(self.path.absolute())) + "?" + query
        return sqlite3.connect(
            target,
            timeout=self._timeout,
            isolation_level=None,
            check_same_thread=False,
            uri=bool(query),
        )

    def _check_layout(self) -> bool:
        """Whether the file holds qstate's layout; refuse any other database.

        ``False`` means an empty file or a database with nothing in it, which
        the first write initializes. The answer "ours" is remembered.
        """
        if self._readable:
            return True
        with self._ready_lock:
            if not self._readable:
                version = sql.inspect(self.path)
                self._readable = version != 0
                self._ready = version == sql.SCHEMA_VERSION
                self._layout = version or sql.SCHEMA_VERSION
        return self._readable

    def _prepare_for_writing(self) -> None:
        """Create the directories (0700) and the database (0600), or check the file is ours."""
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            _create_database_file(self.path)
            # Processes starting together race to initialize a new file; switching
            # it to WAL can fail at once with "locked" (SQLite's busy handler does
            # not cover it) while another one does: look again, within the timeout.
            deadline = time.monotonic() + self._timeout
            while sql.inspect(self.path) != sql.SCHEMA_VERSION:
                conn = self._connect()
                try:
                    sql.init_schema(conn, self.path)
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
                finally:
                    conn.close()
            self._ready = self._readable = True
            self._layout = sql.SCHEMA_VERSION

    def _open(self) -> sqlite3.Connection:
        """A read-write connection, for writers only."""
        self._prepare_for_writing()
        conn = self._connect()
        try:
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_reader(self) -> tuple[sqlite3.Connection | None, bool]:
        """A read-only connection and whether it may be kept, or ``None`` if there is no data.

        SQLite needs the WAL's shared-memory index beside the database to read it.
        Where that index cannot be created (a read-only directory, a full disk)
        and no WAL holds data yet to be copied into the database, the file alone
        is the last committed state: it is read with ``immutable=1``, for this
        read only, since a writer elsewhere may change it afterwards.
        """
        if not self.path.exists() or not self._check_layout():
            return None, False
        conn = self._connect("mode=ro")
        try:
            conn.execute("SELECT 1 FROM qstate_values LIMIT 0")
            return conn, True
        except sqlite3.OperationalError:
            conn.close()
            if not sql.wal_is_empty(self.path):
                raise
        return self._connect("mode=ro&immutable=1"), False

    def _forget_parent(self) -> None:
        """In a forked child (run by ``os.register_at_fork``), drop the parent's things."""
        _INHERITED.extend(self._idle)
        reader = getattr(self._readers, "conn", None)
        if reader is not None:
            _INHERITED.append(reader)
        self._idle = []
        self._readers = threading.local()
        self._writer = threading.Lock()  # may have been held by a parent thread

    def _checkout(self) -> sqlite3.Connection:
        """A connection for this thread's exclusive use until :meth:`_checkin`."""
        try:
            return self._idle.pop()
        except IndexError:
            return self._open()

    def _checkin(self, conn: sqlite3.Connection) -> None:
        """Roll back anything uncommitted and return ``conn`` to the pool."""
        if conn.in_transaction:
            conn.rollback()
        if len(self._idle) < _MAX_IDLE:
            self._idle.append(conn)
        else:
            conn.close()

    def _lock_writers(self) -> None:
        """Queue this process's writers on a lock rather than in SQLite's busy loop.

        SQLite's busy handler sleeps in coarse steps, so contending threads waste
        time and starve; within one process a lock hands over at once. Other
        processes still wait in SQLite, under the same timeout.
        """
        if not self._writer.acquire(timeout=self._timeout):
            raise BackendUnavailableError(
                f"{self.path}: another writer in this process held the lock past the "
                f"{self._timeout:g} s timeout; retry, or raise ?timeout= in the URL"
            )

    def _read(self, body: Callable[..., _T], *args: Any) -> _T | None:
        """``body(conn, *args)`` on this thread's read connection; ``None`` if no database."""
        try:
            try:
                conn = self._readers.conn
                kept = True
            except AttributeError:
                conn, kept = self._open_reader()
                if conn is None:
                    return None
                if kept:
                    self._readers.conn = conn
            try:
                return body(conn, *args)
            finally:
                if not kept:
                    conn.close()
        except (sqlite3.Error, OSError) as exc:
            raise sql.translate(exc, self.path) from exc

    def _write(self, key: StateKey, body: Callable[..., _T], *args: Any) -> _T:
        """Run ``body(conn, now, *args)``, a write of state ``key``, inside one
        ``BEGIN IMMEDIATE`` transaction, the state's expired life ended first."""
        self._lock_writers()
        try:
            conn = self._checkout()
            try:
                conn.execute("BEGIN IMMEDIATE")
                now = time.time()
                if now >= self._next_purge:
                    self._purge(conn, now)
                _end_expired_life(conn, key, now)
                result = body(conn, now, *args)
                conn.execute("COMMIT")
                return result
            finally:
                self._checkin(conn)
        except (sqlite3.Error, OSError) as exc:
            raise sql.translate(exc, self.path) from exc
        finally:
            self._writer.release()

    def _purge(self, conn: sqlite3.Connection, now: float) -> None:
        """Delete every expired row (inside a write; at most every _PURGE_INTERVAL)."""
        self._next_purge = now + _PURGE_INTERVAL
        conn.execute(sql.PURGE_CHANGES, (now, now - LINGER))
        conn.execute(sql.DELETE_ALL_EXPIRED, (now,))

    def _log(
        self,
        conn: sqlite3.Connection,
        now: float,
        key: StateKey,
        statement: str = sql.LOG_CHANGE,
        field: str | None = None,
        text: str | None = None,
        changes: str | None = None,
    ) -> None:
        """Append a change with the state's next revision; trim the log now and then."""
        name, scope = key
        keep = self.history_size_of(key)
        if changes is None:  # LOG_SET: parameters ?1 to ?5, ?8 and ?9
            params: tuple[Any, ...] = (
                name,
                scope,
                field,
                now,
                text,
                None,
                None,
                origin_text(),
                keep,
            )
        else:  # LOG_CHANGE: ?1, ?2, ?4, ?7, ?8 and ?9
            params = (name, scope, None, now, None, None, changes, origin_text(), keep)
        rev, kept = conn.execute(statement, params).fetchone()
        size = kept or LOG_SIZE  # this writer's history=, else the one stored with the log
        if rev % min(size, sql.TRIM_EVERY) == 0:  # so a log holds N to 2N changes at most
            conn.execute(sql.TRIM_CHANGES, (name, scope, rev - size))

    def _log_texts(
        self,
        conn: sqlite3.Connection,
        now: float,
        key: StateKey,
        entries: list[str],
    ) -> None:
        """Append a change built from ``text_entry`` pieces, if there are any."""
        if entries:
            self._log(conn, now, key, changes="[" + ",".join(entries) + "]")

    def _decode(self, text: str, key: StateKey, field: str) -> JSONValue:
        try:
            return decode(text)
        except CorruptDataError as exc:  # add where, only when it is needed
            raise CorruptDataError(f"{self.path}: state {key} key {field!r}: {exc}") from None

    @staticmethod
    def _put(
        conn: sqlite3.Connection,
        now: float,
        key: StateKey,
        rows: list[tuple[str, str]],
        ttl: float | None,
    ) -> None:
        """Upsert ``(field, json_text)`` rows, applying the TTL refresh rule."""
        name, scope = key
        if ttl is None and len(rows) == 1:
            conn.execute(sql.UPSERT_KEEPING_EXPIRY, (name, scope, rows[0][0], now, rows[0][1]))
            return
        if ttl is None:
            conn.executemany(
                sql.UPSERT_KEEPING_EXPIRY,
                [(name, scope, field, now, text) for field, text in rows],
            )
            return
        expires = now + ttl  # _write deleted any expired rows: none can live again
        conn.executemany(
            sql.UPSERT_WITH_EXPIRY,
            [(name, scope, field, now, text, expires) for field, text in rows],
        )
        conn.execute(sql.REFRESH_EXPIRY, (name, scope, None, None, None, expires))

    def _read_all(
        self, conn: sqlite3.Connection, key: StateKey, now: float
    ) -> tuple[Document, float | None]:
        rows = conn.execute(sql.GET_ALL, (*key, None, now)).fetchall()
        data = {field: self._decode(text, key, field) for field, text, _ in rows}
        return data, (rows[0][2] if rows else None)

    # -- reads -------------------------------------------------------------

    def get(self, key: StateKey, field: str) -> JSONValue | _Missing:
        row = self._read(_fetch_one, sql.GET, (key[0], key[1], field, time.time()))
        return MISSING if row is None else self._decode(row[0], key, field)

    def get_all(self, key: StateKey) -> Document:
        found = self._read(self._read_all, key, time.time())
        return {} if found is None else found[0]

    def list_states(self, prefix: str = "") -> list[StateInfo]:
        now = time.time()
        like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._read(_fetch_all, sql.LIST, (like, now)) or []
        return [
            StateInfo(name, scope, count, None if exp is None else max(exp - now, 0.0))
            for name, scope, count, exp in rows
            if name.startswith(prefix)  # LIKE ignores case for ASCII; startswith does not
        ]

    # -- writes ------------------------------------------------------------

    def set(self, key: StateKey, field: str, value: JSONValue, ttl: float | None) -> None:
        text = encode(value)

        def body(conn: sqlite3.Connection, now: float) -> None:
            self._log(conn, now, key, sql.LOG_SET, field, text)  # reads the old value
            self._put(conn, now, key, [(field, text)], ttl)

        self._write(key, body)

    def update(self, key: StateKey, mapping: Document, ttl: float | None) -> Document:
        rows = [(field, encode(value)) for field, value in mapping.items()]

        def body(conn: sqlite3.Connection, now: float) -> Document:
            before = conn.execute(sql.GET_ALL, (*key, None, now)).fetchall()
            texts = {field: text for field, text, _ in before}
            self._log_texts(
                conn, now, key, [text_entry(f, texts.get(f), text) for f, text in rows]
            )
            self._put(conn, now, key, rows, ttl)
            result = {field: self._decode(text, key, field) for field, text, _ in before}
            result.update(mapping)
            return result

        return self._write(key, body)

    def delete(self, key: StateKey, fields: Sequence[str], ttl: float | None) -> int:
        if not self._ready and not self.path.exists():
            return 0  # nothing to delete: creating the database would be all it did

        def body(conn: sqlite3.Connection, now: float) -> int:
            removed = []
            for field in fields:
                row = conn.execute(sql.DELETE_KEY_RETURNING, (*key, field, now)).fetchone()
                if row is not None:
                    removed.append(text_entry(field, row[0], None))
            if removed and ttl is not None:
                conn.execute(sql.REFRESH_EXPIRY, (*key, None, None, None, now + ttl))
            self._log_texts(conn, now, key, removed)
            return len(removed)

        return self._write(key, body)

    def clear(self, key: StateKey) -> bool:
        if not self._ready and not self.path.exists():
            return False

        def body(conn: sqlite3.Connection, now: float) -> bool:
            live = conn.execute(sql.GET_ALL, (*key, None, now)).fetchall()
            conn.execute(sql.DELETE_STATE, key)
            self._log_texts(conn, now, key, [text_entry(f, text, None) for f, text, _ in live])
            return bool(live)

        return self._write(key, body)

    def replace(self, key: StateKey, data: Document, ttl: float | None) -> None:
        if not data and not self._ready and not self.path.exists():
            return  # nothing to remove: creating the database would be all it did
        rows = [(field, encode(value)) for field, value in data.items()]

        def body(conn: sqlite3.Connection, now: float) -> None:
            # Delete then insert, as a transaction's commit does, so that the
            # keys read back in the new mapping's order; the expiry is kept
            # unless a TTL is given.
            before = conn.execute(sql.GET_ALL, (*key, None, now)).fetchall()
            if ttl is not None:
                expires: float | None = now + ttl
            else:
                expires = before[0][2] if before else None
            conn.execute(sql.DELETE_STATE, key)
            conn.executemany(
                sql.UPSERT_WITH_EXPIRY,
                [(*key, field, None, text, expires) for field, text in rows],
            )
            old = {f: t for f, t, _ in before}
            changed = {f: t for f, t in rows if old.get(f) != t}
            removed = [f for f in old if f not in data]
            self._log_texts(conn, now, key, _text_diff(old, changed, removed))

        self._write(key, body)

    def incr(
        self, key: StateKey, field: str, amount: int | float, ttl: float | None
    ) -> int | float:
        def body(conn: sqlite3.Connection, now: float) -> int | float:
            row = conn.execute(sql.GET, (*key, field, now)).fetchone()
            current = MISSING if row is None else self._decode(row[0], key, field)
            result = add(current, amount, field)
            text = encode(result)
            self._log_texts(conn, now, key, [text_entry(field, row and row[0], text)])
            self._put(conn, now, key, [(field, text)], ttl)
            return result

        return self._write(key, body)

    # -- transactions ------------------------------------------------------
    # Split into begin / commit / abort so that the async twin can run each step
    # in a worker thread while the transaction body runs on the event loop.

    def begin(self, key: StateKey) -> Begun:
        """Take the write locks, check out a connection, read the document.

        Returns the connection, the data, its current expiry and the stored JSON
        text of each key (what ``commit`` compares with, to write only changes).
        Every successful ``begin`` is ended by exactly one ``commit`` or ``abort``.
        """
        self._lock_writers()
        try:
            conn = self._checkout()
            try:
                conn.execute("BEGIN IMMEDIATE")
                rows = conn.execute(sql.GET_ALL, (*key, None, time.time())).fetchall()
                stored = {field: text for field, text, _ in rows}
                data = {field: self._decode(text, key, field) for field, text in stored.items()}
                return Begun(conn, data, rows[0][2] if rows else None, stored, dict(data))
            except BaseException:
                self._checkin(conn)
                raise
        except (sqlite3.Error, OSError) as exc:
            self._writer.release()
            raise sql.translate(exc, self.path) from exc
        except BaseException:
            self._writer.release()
            raise

    def commit(
        self, begun: Begun, key: StateKey, data: Document, ttl: float | None, what: str = "state"
    ) -> Document:
        """Validate ``data`` and make it the whole document, then end.

        Only the keys whose JSON text changed are written and only the removed
        ones deleted, so changing one key of a big state costs one row, not a
        rewrite of every row; and only the values that may have changed (see
        ``check_changes``: not those still the very immutable object ``begin``
        read) are checked and encoded to be compared, so it costs one encode,
        not one per key. A document whose keys changed order is rewritten whole: ``rowid``
        order is the order the keys read back in.
        """
        conn, _, expires, stored, original = begun
        try:
            document, maybe_changed = check_changes(data, original, what)
            changed = _changed_texts(stored, document, maybe_changed)
            kept_all = stored.keys() <= document.keys()  # the common case, checked in C
            removed = [] if kept_all else [f for f in stored if f not in document]
            now = time.time()
            # End an expired life first: its rows would come back with a new
            # expiry, or give a key written anew its old rowid (its old position).
            _end_expired_life(conn, key, now)
            if expires is not None and expires <= now:
                # It expired while the block ran, its rows with it: the commit is a
                # write after the expiry, of the whole document, or of nothing when
                # the block changed nothing: what expired stays expired.
                if not (changed or removed):
                    document = {}
                stored, expires, removed = {}, None, []
                changed = {field: encode(value) for field, value in document.items()}
            new_expiry = now + ttl if ttl is not None else expires
            if document and _keeps_order(stored, document, removed):
                conn.executemany(sql.DELETE_KEY, [(*key, f, now) for f in removed])
                conn.executemany(
                    sql.UPSERT_WITH_EXPIRY,
                    [(*key, f, None, t, new_expiry) for f, t in changed.items()],
                )
                if ttl is not None:
                    conn.execute(sql.REFRESH_EXPIRY, (*key, None, None, None, new_expiry))
            else:
                conn.execute(sql.DELETE_STATE, key)
                texts = [(f, changed[f] if f in changed else stored[f]) for f in document]
                conn.executemany(
                    sql.UPSERT_WITH_EXPIRY, [(*key, f, None, t, new_expiry) for f, t in texts]
                )
            # ``stored`` was read in this same write transaction, so it is what changed from.
            self._log_texts(conn, now, key, _text_diff(stored, changed, removed))
            conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            raise sql.translate(exc, self.path) from exc
        finally:
            self.abort(conn)
        return document

    def abort(self, conn: sqlite3.Connection) -> None:
        """End what ``begin`` started, discarding anything not committed."""
        try:
            self._checkin(conn)
        except (sqlite3.Error, OSError) as exc:
            raise sql.translate(exc, self.path) from exc
        finally:
            self._writer.release()

    @contextmanager
    def transaction(self, key: StateKey, ttl: float | None) -> Iterator[Document]:
        begun = self.begin(key)
        try:
            yield begun.data
        except BaseException:
            self.abort(begun.conn)
            raise
        self.commit(begun, key, begun.data, ttl)

    def modify(self, key: StateKey, fn: Modifier, ttl: float | None) -> Document:
        begun = self.begin(key)
        try:
            new = modified(fn, begun.data)
        except BaseException:
            self.abort(begun.conn)
            raise
        return self.commit(begun, key, new, ttl, f"modify({key})")  # validated there, once

    # -- revisions ---------------------------------------------------------

    def revision(self, key: StateKey) -> int:
        latest = self._read(_latest_change, key)
        return 0 if latest is None else latest[0]

    def snapshot(self, key: StateKey) -> tuple[Document, int]:
        def read(conn: sqlite3.Connection) -> tuple[Document, int]:
            conn.execute("BEGIN")  # one read transaction: one revision
            try:
                data, _ = self._read_all(conn, key, time.time())
                latest = _latest_change(conn, key)
            finally:
                conn.execute("COMMIT")
            return data, 0 if latest is None else latest[0]

        return self._read(read) or ({}, 0)

    def history(self, key: StateKey, since: int, limit: int | None) -> list[Change]:
        params = (*key, since, time.time(), -1 if limit is None else limit)
        rows = self._read(self._log_rows, sql.LAST_CHANGES_AFTER, params) or []
        return [_stored_change(self.path, key, *row) for row in reversed(rows)]

    def _log_rows(
        self, conn: sqlite3.Connection, statements: dict[int, str], params: tuple[Any, ...]
    ) -> list[Any]:
        """Rows of the change log, in the statement of the file's layout (an older
        qstate may have written it, and no write migrated it yet)."""
        if self._layout < 2:
            return []  # layout 1: no change logged
        # 2 to 4: inspect() refuses a newer layout before anything is read
        return conn.execute(statements[self._layout], params).fetchall()

    def follower(self, key: StateKey, since: int | None) -> _Follower:
        """A reader of the state's change log from ``since`` (both flavours use it)."""
        return _Follower(self, key, since)

    def watch(self, key: StateKey, since: int | None, timeout: float | None) -> Iterator[Change]:
        follower = self.follower(key, since)
        while True:
            changes = follower.poll()
            yield from changes
            if not changes:
                if follower.idle(timeout):
                    return
                time.sleep(POLL_INTERVAL)

    def health(self) -> dict[str, Any]:
        def check(conn: sqlite3.Connection) -> dict[str, Any]:
            integrity = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            return {
                "path": str(self.path.resolve()),
                "sqlite": sqlite3.sqlite_version,
                "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
                "synchronous": self._synchronous,
                "layout": conn.execute("PRAGMA user_version").fetchone()[0],
                "size_bytes": self.path.stat().st_size,
                "integrity": "ok" if integrity == ["ok"] else "; ".join(integrity[:5]),
            }

        facts = self._read(check)
        if facts is None:
            return {"path": str(self.path.absolute()), "database": "none yet (a write creates it)"}
        if facts["integrity"] != "ok":
            raise CorruptDataError(
                f"{self.path} fails PRAGMA integrity_check: {facts['integrity']}"
            )
        return facts

    def close(self) -> None:
        """Close pooled connections and this thread's reader (others close with their thread)."""
        idle, self._idle = self._idle, []
        reader = getattr(self._readers, "conn", None)
        if reader is not None:
            idle.append(reader)
            del self._readers.conn
        for conn in idle:
            conn.close()


def _end_expired_life(conn: sqlite3.Connection, key: StateKey, now: float) -> None:
    """If the state expired and no write came since, forget its history up to the
    expiry, then delete its expired rows, which mark that line for readers.

    Every write of a state does this first: one that overwrote the expired rows
    in place would erase the line and bring the history from before the expiry
    back. When the state did not expire (nearly always) it costs one index seek.
    """
    expired = conn.execute(sql.LAST_EXPIRY, (*key, now)).fetchone()[0]
    if expired is not None:
        conn.execute(sql.FORGET_HISTORY_UNTIL, (*key, expired))
        conn.execute(sql.DELETE_EXPIRED_OF_STATE, (*key, None, now))


def _changed_texts(
    stored: dict[str, str], document: Document, fields: list[str]
) -> dict[str, str]:
    """The JSON text of each of ``fields`` of ``document`` that is not its stored text."""
    changed = {}
    for field in fields:
        text = encode(document[field])
        if stored.get(field) != text:
            changed[field] = text
    return changed


def _text_diff(old: dict[str, str], changed: dict[str, str], removed: list[str]) -> list[str]:
    """The change log's entries: each changed key (old text → new), then each removed one."""
    found = [text_entry(field, old.get(field), text) for field, text in changed.items()]
    found += [text_entry(field, old[field], None) for field in removed]
    return found


def _latest_change(conn: sqlite3.Connection, key: StateKey) -> tuple[int, float] | None:
    """The state's latest (rev, epoch); ``None`` without one, or in a layout-1 file."""
    try:
        return conn.execute(sql.LATEST_CHANGE, key).fetchone()  # type: ignore[no-any-return]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None  # a layout-1 file, not yet migrated: no change logged
        raise


def _stored_change(
    path: Path, key: StateKey, rev: int, when: float, body: str, origin: str | None
) -> Change:
    """A change as the log stores it; unreadable JSON is corrupt data, named."""
    try:
        return Change(rev, iso_time(when), decode_changes(body), decode_origin(origin))
    except ValueError as exc:
        raise CorruptDataError(f"{path}: change {rev} of {key} is not JSON: {exc}") from None


class _Follower:
    """Reads a state's change log in order, one poll at a time (no sleeping here).

    Its position is ``(epoch, rev)``: a row of another epoch means the state's
    count restarted (a new life after its log lingered out or it expired),
    which it follows from rev 1; a row further than the next revision, or a new
    life while it had not read all of the last one, means changes were lost.
    """

    def __init__(self, backend: FileBackend, key: StateKey, since: int | None) -> None:
        self.backend = backend
        self.key = key
        latest = backend._read(_latest_change, key)
        self.epoch: float | None = None if latest is None else latest[1]
        rev = 0 if latest is None else latest[0]
        self.position = rev if since is None else since
        if self.position > rev:
            raise UsageError(f"revision {self.position} of {key} is ahead of its latest, {rev}")
        self.known = rev
        """The latest revision of this life known to exist (expired ones are not returned)."""
        self.next_check = time.monotonic() + _RESTART_CHECK
        self.last_change = time.monotonic()

    def idle(self, timeout: float | None) -> bool:
        """Whether no change came for ``timeout`` seconds (the watch then ends)."""
        return timeout is not None and time.monotonic() - self.last_change >= timeout

    def poll(self) -> list[Change]:
        """The changes logged since the last poll (maybe none)."""
        rows = (
            self.backend._read(
                self.backend._log_rows,
                sql.CHANGES_AFTER,
                (*self.key, self.position, time.time()),
            )
            or []
        )
        if not rows:
            if time.monotonic() >= self.next_check:
                self.next_check = time.monotonic() + _RESTART_CHECK
                latest = self.backend._read(_latest_change, self.key)
                if latest is not None and (latest[1] != self.epoch or latest[0] < self.position):
                    self._new_life(latest[1])
                    return self.poll()
                if latest is not None:
                    self.known = max(self.known, latest[0])
            return []
        found: list[Change] = []
        for rev, epoch, when, body, origin in rows:
            if epoch != self.epoch:
                if self.epoch is not None or self.position != 0:
                    if found:
                        break  # deliver these first; the next poll restarts
                    self._new_life(epoch)
                    return self.poll()
                self.epoch = epoch
            if rev != self.position + 1:
                raise ChangesLostError(
                    f"changes {self.position + 1}..{rev - 1} of {self.key} are no longer kept "
                    f"in {self.backend.path} (the log holds the last "
                    f"{self.backend.history_size_of(self.key)}); "
                    "read the state anew"
                )
            found.append(_stored_change(self.backend.path, self.key, rev, when, body, origin))
            self.position = rev
        if found:
            self.known = max(self.known, self.position)
            self.last_change = time.monotonic()
        return found

    def _new_life(self, epoch: float) -> None:
        """Follow the state's new life from its rev 1, unless this one was not read
        to its end: those changes expired with the state, never a silent gap."""
        if self.position < self.known:
            raise ChangesLostError(
                f"changes {self.position + 1}..{self.known} of {self.key} expired with the "
                f"state in {self.backend.path} before they were read; read the state anew"
            )
        self.epoch, self.position, self.known = epoch, 0, 0


def _fetch_all(conn: sqlite3.Connection, statement: str, params: tuple[Any, ...]) -> list[Any]:
    return conn.execute(statement, params).fetchall()


def _fetch_one(conn: sqlite3.Connection, statement: str, params: tuple[Any, ...]) -> Any:
    return conn.execute(statement, params).fetchone()


def _create_database_file(path: Path) -> None:
    """Create ``path`` (0600) and its missing directories (each 0700), never through a link.

    ``Path.mkdir(parents=True)`` would give intermediate directories the umask's
    mode; state may be private, so every directory qstate makes is 0700.
    """
    if path.is_symlink() and not path.exists():
        raise ConfigError(
            f"{path} is a symbolic link to {os.readlink(path)}, which does not exist; "
            "qstate does not create files through links: create the target or use another path"
        )
    missing = []
    directory = path.parent
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # another process was first, or it exists
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600))
