"""The SQLite layout of the file backend, its statements, and its error mapping.

Layout (stable; other tools may read it)::

    CREATE TABLE qstate_values (
        state      TEXT NOT NULL,      -- the state's name
        scope      TEXT NOT NULL,      -- '' when unscoped
        key        TEXT NOT NULL,
        value      TEXT NOT NULL,      -- JSON text
        expires_at REAL,               -- Unix time; NULL = never
        UNIQUE (state, scope, key)
    );

One row per key; ``rowid`` order is insertion order, as in a dict. A state is
live while its rows' ``expires_at`` is NULL or in the future. All live rows of a
state share one ``expires_at``: a write with a TTL sets it on every row, a write
without one copies it from the row already there. Expired rows are invisible
and are deleted by later writes. ``PRAGMA user_version`` is the layout version.

Expiry lives in the row itself so that a plain ``set`` is one INSERT, the same
statement count as a bare upsert.

Layout 2 adds the change log (layout 1 files are migrated by the first write,
in one ``BEGIN IMMEDIATE`` transaction; until then they read as before)::

    CREATE TABLE qstate_changes (
        state   TEXT NOT NULL,
        scope   TEXT NOT NULL,
        rev     INTEGER NOT NULL,     -- 1, 2, 3... per state and scope
        epoch   REAL NOT NULL,        -- Unix time this count began (a new life restarts it)
        time    REAL NOT NULL,        -- Unix time of the change
        changes TEXT NOT NULL,        -- JSON: [{"key": k, "old": v, "new": v}, ...]
        origin  TEXT,                 -- JSON: {"host", "pid", "task"} (layout 3)
        keep    INTEGER,              -- the history size its writer asked for (layout 3)
        PRIMARY KEY (state, scope, rev)
    ) WITHOUT ROWID;

Layout 3 adds the ``origin`` and ``keep`` columns (a layout 2 file is migrated
by its first write; its older changes keep NULLs). ``keep`` is copied forward
from the state's previous change when a writer has no ``history=``, so a
writer without the setting trims the log to the size another one asked for.

Layout 4 adds an index, so that finding a state's expired rows (every write,
every history read, every poll of a watcher) is a seek, whatever the size of
the state and however many expired rows of other states await the purge::

    CREATE INDEX qstate_values_state_expiry ON qstate_values (state, scope, expires_at)
        WHERE expires_at IS NOT NULL;

A write appends its row in its own transaction, the revision computed by the
INSERT itself (the last row's ``rev`` + 1), so two statements still make a
``set``: this INSERT, which also reads the old value, and the upsert. Every
100th revision (every Nth below 100) also deletes the rows more than N (the
state's ``history``) behind. The periodic purge deletes the rows of a state
that expired (its history goes with it; until then reads hide them, and the
state's next write deletes them first) and of one removed (no live key) with
no change for ``LINGER`` seconds; the next write then starts a new life (a
new ``epoch``).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

from ..._errors import BackendUnavailableError, ConfigError, CorruptDataError, QStateError

SCHEMA_VERSION = 4
MIGRATES = (1, 2, 3)
"""Older layouts the first write migrates (readers read them as they are)."""
COLUMNS = ("state", "scope", "key", "value", "expires_at")
TABLE = "qstate_values"
CHANGES_TABLE = "qstate_changes"
CHANGES_COLUMNS = ("state", "scope", "rev", "epoch", "time", "changes", "origin", "keep")
CHANGES_COLUMNS_2 = CHANGES_COLUMNS[:-2]
"""Layout 2 logged changes without their origin and history size."""
_MAGIC = b"SQLite format 3\x00"
_OWN_OBJECTS = (  # every schema object but SQLite's own (sqlite_sequence, sqlite_stat1...)
    "SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
)

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS qstate_values (
        state      TEXT NOT NULL,
        scope      TEXT NOT NULL,
        key        TEXT NOT NULL,
        value      TEXT NOT NULL,
        expires_at REAL,
        UNIQUE (state, scope, key)
    )""",
    """CREATE INDEX IF NOT EXISTS qstate_values_state_expiry
        ON qstate_values (state, scope, expires_at) WHERE expires_at IS NOT NULL""",
    """CREATE INDEX IF NOT EXISTS qstate_values_expiry
        ON qstate_values (expires_at) WHERE expires_at IS NOT NULL""",
    """CREATE TABLE IF NOT EXISTS qstate_changes (
        state   TEXT NOT NULL,
        scope   TEXT NOT NULL,
        rev     INTEGER NOT NULL,
        epoch   REAL NOT NULL,
        time    REAL NOT NULL,
        changes TEXT NOT NULL,
        origin  TEXT,
        keep    INTEGER,
        PRIMARY KEY (state, scope, rev)
    ) WITHOUT ROWID""",
)
FROM_LAYOUT_2 = (
    "ALTER TABLE qstate_changes ADD COLUMN origin TEXT",
    "ALTER TABLE qstate_changes ADD COLUMN keep INTEGER",
)
"""Layout 2 becomes 3: existing changes keep no origin and no history size (NULL)."""

# Parameters, numbered alike in every statement: ?1 state, ?2 scope, ?3 key,
# ?4 now (Unix time), ?5 value (JSON text), ?6 new expiry, ?7 changes (JSON text),
# ?8 origin (JSON text), ?9 the writer's history size (NULL: the state's own).
# A statement takes as many parameters as its highest number; unused lower ones
# are passed as None.
LIVE = "(expires_at IS NULL OR expires_at > ?4)"

GET = f"SELECT value FROM qstate_values WHERE state = ?1 AND scope = ?2 AND key = ?3 AND {LIVE}"  # noqa: S608
GET_ALL = (
    "SELECT key, value, expires_at FROM qstate_values "  # noqa: S608
    f"WHERE state = ?1 AND scope = ?2 AND {LIVE} ORDER BY rowid"
)

# A write without a TTL inherits the expiry of any row of the state; an expired
# row yields NULL (see the module docstring for why any row will do).
UPSERT_KEEPING_EXPIRY = """
    INSERT INTO qstate_values (state, scope, key, value, expires_at)
    VALUES (?1, ?2, ?3, ?5, (
        SELECT CASE WHEN expires_at > ?4 THEN expires_at END
        FROM qstate_values WHERE state = ?1 AND scope = ?2 LIMIT 1))
    ON CONFLICT (state, scope, key)
    DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"""

UPSERT_WITH_EXPIRY = """
    INSERT INTO qstate_values (state, scope, key, value, expires_at)
    VALUES (?1, ?2, ?3, ?5, ?6)
    ON CONFLICT (state, scope, key)
    DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"""

DELETE_EXPIRED_OF_STATE = (
    "DELETE FROM qstate_values WHERE state = ?1 AND scope = ?2 AND expires_at <= ?4"
)
REFRESH_EXPIRY = "UPDATE qstate_values SET expires_at = ?6 WHERE state = ?1 AND scope = ?2"
DELETE_KEY = f"DELETE FROM qstate_values WHERE state = ?1 AND scope = ?2 AND key = ?3 AND {LIVE}"  # noqa: S608
DELETE_KEY_RETURNING = DELETE_KEY + " RETURNING value"
DELETE_STATE = "DELETE FROM qstate_values WHERE state = ?1 AND scope = ?2"
DELETE_ALL_EXPIRED = "DELETE FROM qstate_values WHERE expires_at <= ?"
# -- the change log ----------------------------------------------------------
# The next revision and the epoch come from the state's last row (a seek on the
# primary key); without one, a new life begins: rev 1, epoch now.
_NEXT_REVISION = """
    INSERT INTO qstate_changes (state, scope, rev, epoch, time, changes, origin, keep)
    SELECT ?1, ?2, coalesce(last.rev, 0) + 1, coalesce(last.epoch, ?4), ?4, {changes}, ?8,
           coalesce(?9, last.keep)
    FROM (SELECT 1) LEFT JOIN (
        SELECT rev, epoch, keep FROM qstate_changes WHERE state = ?1 AND scope = ?2
        ORDER BY rev DESC LIMIT 1) AS last
    RETURNING rev, keep"""

LOG_CHANGE = _NEXT_REVISION.format(changes="?7")
"""Append a change whose JSON text the caller built."""

LOG_SET = _NEXT_REVISION.format(
    changes=f"""(SELECT CASE WHEN old.value IS NULL
                 THEN json_array(json_object('key', ?3, 'new', json(?5)))
                 WHEN NOT json_valid(old.value)  -- text another tool left: kept as a string
                 THEN json_array(json_object('key', ?3, 'old', old.value, 'new', json(?5)))
                 ELSE json_array(json_object('key', ?3, 'old', json(old.value), 'new', json(?5)))
                 END
            FROM (SELECT 1) LEFT JOIN (
                SELECT value FROM qstate_values
                WHERE state = ?1 AND scope = ?2 AND key = ?3 AND {LIVE}) AS old)"""  # noqa: S608
)
"""Append the change of a ``set`` of ?3 to ?5, reading the old value itself: run
before the upsert, it keeps a ``set`` at two statements."""

TRIM_CHANGES = "DELETE FROM qstate_changes WHERE state = ?1 AND scope = ?2 AND rev <= ?3"
TRIM_EVERY = 100
"""Every this many revisions a write deletes the rows more than N behind."""

LATEST_CHANGE = (
    "SELECT rev, epoch FROM qstate_changes WHERE state = ?1 AND scope = ?2 "
    "ORDER BY rev DESC LIMIT 1"
)
_SINCE_EXPIRY = """time > coalesce((
        SELECT max(expires_at) FROM qstate_values
        WHERE state = ?1 AND scope = ?2 AND expires_at <= ?4), 0)"""
"""A change made after the state last expired: an expired state's rows linger
(expired) until a write or the purge deletes them, and their expiry is the
line its history ends at."""
_CHANGES_AFTER = f"""
    SELECT rev, epoch, time, changes, {{origin}} FROM qstate_changes
    WHERE state = ?1 AND scope = ?2 AND rev > ?3 AND {_SINCE_EXPIRY}
    ORDER BY rev LIMIT 1000"""  # noqa: S608
_LAST_CHANGES_AFTER = f"""
    SELECT rev, time, changes, {{origin}} FROM qstate_changes
    WHERE state = ?1 AND scope = ?2 AND rev > ?3 AND {_SINCE_EXPIRY}
    ORDER BY rev DESC LIMIT ?5"""  # noqa: S608
CHANGES_AFTER = {
    4: _CHANGES_AFTER.format(origin="origin"),
    3: _CHANGES_AFTER.format(origin="origin"),
    2: _CHANGES_AFTER.format(origin="NULL"),
}
"""Changes after ?3 in order, as watchers read them, by layout (2 logged no
origin); as in history, none from before the state last expired (?4: now)."""
LAST_CHANGES_AFTER = {
    4: _LAST_CHANGES_AFTER.format(origin="origin"),
    3: _LAST_CHANGES_AFTER.format(origin="origin"),
    2: _LAST_CHANGES_AFTER.format(origin="NULL"),
}
"""The last ?5 changes after ?3, newest first (``LIMIT -1``: all of them), by
layout; none from before the state last expired: its history went with it."""
LAST_EXPIRY = (
    "SELECT max(expires_at) FROM qstate_values "
    "WHERE state = ?1 AND scope = ?2 AND expires_at <= ?3"
)
"""When the state expired, while its expired rows are still there (a seek on
the partial expiry index; NULL when it did not expire)."""
FORGET_HISTORY_UNTIL = "DELETE FROM qstate_changes WHERE state = ?1 AND scope = ?2 AND time <= ?3"
"""The changes from before the state expired at ?3: its history went with it."""
PURGE_CHANGES = """
    DELETE FROM qstate_changes WHERE time <= (
        SELECT max(v.expires_at) FROM qstate_values AS v
        WHERE v.state = qstate_changes.state AND v.scope = qstate_changes.scope
          AND v.expires_at <= ?1
    ) OR ((state, scope) IN (
        SELECT c.state, c.scope FROM qstate_changes AS c
        GROUP BY c.state, c.scope HAVING max(c.time) < ?2
    ) AND NOT EXISTS (
        SELECT 1 FROM qstate_values AS v
        WHERE v.state = qstate_changes.state AND v.scope = qstate_changes.scope
          AND (v.expires_at IS NULL OR v.expires_at > ?1)))"""
"""?1 now, ?2 now - LINGER: forget the changes from before a state expired (run
before the expired rows are deleted) and the logs of states removed LINGER
seconds ago."""

LIST = (
    "SELECT state, scope, count(*), max(expires_at) FROM qstate_values "
    "WHERE state LIKE ? ESCAPE '\\' AND (expires_at IS NULL OR expires_at > ?) "
    "GROUP BY state, scope ORDER BY state, scope"
)


def translate(exc: BaseException, path: Path) -> QStateError:
    """The qstate error for an sqlite3 or OS error (one place for all of them)."""
    if isinstance(exc, QStateError):
        return exc
    if isinstance(exc, sqlite3.OperationalError):
        message = str(exc)
        if "locked" in message or "busy" in message:
            return BackendUnavailableError(
                f"{path} stayed locked by another writer past the timeout; "
                "retry, or raise ?timeout= in the URL"
            )
        return BackendUnavailableError(f"cannot use {path}: {message}")
    if isinstance(exc, sqlite3.DatabaseError):
        return CorruptDataError(
            f"{path} is not a usable SQLite database ({exc}); "
            "restore it from a backup or move it away"
        )
    if isinstance(exc, OSError):
        return BackendUnavailableError(f"cannot use {path}: {exc.strerror or exc}")
    raise TypeError(f"not a storage error: {exc!r}")


def wal_is_empty(path: Path) -> bool:
    """Whether no write-ahead log beside ``path`` holds data not yet in the file itself."""
    try:
        return os.stat(f"{path}-wal").st_size == 0
    except FileNotFoundError:
        return True


def inspect(path: Path) -> int:
    """The layout version of the database at ``path``: 0 if empty or missing.

    Reads only: the header bytes first, then the schema through a read-only
    connection. A database in WAL mode whose log is gone is opened immutable,
    since a plain read-only open would leave ``-wal`` and ``-shm`` files beside
    another program's database. Anything but an empty file or qstate's own
    layout is refused, and the file is left exactly as it was.
    """
    schema = _read_schema(path)
    if schema is None:
        return 0  # missing, or created by a qstate writer that has not initialized it yet
    version, objects, columns, changes = schema
    if not objects and version == 0:
        return 0
    own = (TABLE, CHANGES_TABLE) if version >= 2 else (TABLE,)
    others = sorted({name for kind, name, table in objects if table not in own})
    if not columns:
        what = f"tables {', '.join(others)}" if others else f"user_version {version}"
        raise _foreign(path, f"it holds {what} and no {TABLE} table")
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"{path} was written by a newer qstate (layout {version}); upgrade qstate"
        )
    if version != SCHEMA_VERSION and version not in MIGRATES:
        raise _foreign(path, f"its user_version is {version}, not the layout {SCHEMA_VERSION}")
    if columns != COLUMNS:
        raise _foreign(
            path, f"its {TABLE} table has columns {', '.join(columns)}, not {', '.join(COLUMNS)}"
        )
    if others:
        raise _foreign(path, f"it also holds {', '.join(others)}, which qstate did not create")
    expected = CHANGES_COLUMNS if version >= 3 else CHANGES_COLUMNS_2
    if version >= 2 and changes != expected:
        raise _foreign(
            path,
            f"its {CHANGES_TABLE} table has columns {', '.join(changes) or 'none'}, "
            f"not {', '.join(expected)}",
        )
    return version


_Schema = tuple[int, list[tuple[str, str, str]], tuple[str, ...], tuple[str, ...]]


def _read_schema(path: Path) -> _Schema | None:
    """``(user_version, objects, qstate_values columns, qstate_changes columns)``,
    or None for no database yet.

    An immutable read sees the file as it is, so it is trusted only if the file
    did not change while it was read (another process may be checkpointing a
    new database into it); otherwise it is read again.
    """
    for _ in range(100):
        before = _signature(path)
        try:
            with open(path, "rb") as file:
                header = file.read(100)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise translate(exc, path) from exc
        if not header:
            return None
        if not header.startswith(_MAGIC):
            raise _foreign(path, "it is not an SQLite database")
        immutable = header[18] == 2 and wal_is_empty(path)  # WAL mode, and no log
        query = "mode=ro&immutable=1" if immutable else "mode=ro"
        try:
            conn = sqlite3.connect(
                "file:" + quote(str(path.absolute())) + "?" + query, uri=True, isolation_level=None
            )
            try:
                # One read transaction: a writer initializing the file in between
                # statements must not show its tables beside the old user_version.
                conn.execute("BEGIN")
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                objects = conn.execute(_OWN_OBJECTS).fetchall()
                columns = tuple(row[1] for row in conn.execute(f"PRAGMA table_info({TABLE})"))
                changes = tuple(
                    row[1] for row in conn.execute(f"PRAGMA table_info({CHANGES_TABLE})")
                )
            finally:
                conn.close()
        except sqlite3.Error as exc:
            if not immutable or _signature(path) == before:
                raise translate(exc, path) from exc
            continue
        if not immutable or _signature(path) == before:
            return version, objects, columns, changes
        time.sleep(0.01)
    raise BackendUnavailableError(f"{path} kept changing while qstate inspected it; retry")


def _signature(path: Path) -> tuple[int, ...]:
    """What changes when the database file or its log is written."""
    found: list[int] = []
    for name in (str(path), f"{path}-wal"):
        try:
            st = os.stat(name)
            found += (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            found.append(-1)
    return tuple(found)


def _foreign(path: Path, why: str) -> CorruptDataError:
    return CorruptDataError(
        f"{path} is not a qstate database ({why}); qstate leaves it untouched: "
        "point the URL at another file"
    )


def init_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Switch to WAL and create the layout, or migrate an older one (idempotent, safe to race).

    Layout 1 becomes 4 by creating the change log table and the index, layout
    2 by adding the log's origin and keep columns and the index, layout 3 by
    the index: existing rows are untouched, and the whole step is one write
    transaction, so a crash leaves the old layout or the new, never a mix.
    """
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise BackendUnavailableError(f"{path}: cannot switch to WAL mode ({mode})")
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"{path} was written by a newer qstate (layout {version}); upgrade qstate"
            )
        for statement in SCHEMA:
            conn.execute(statement)
        if version == 2:
            for statement in FROM_LAYOUT_2:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    finally:
        if conn.in_transaction:
            conn.rollback()
