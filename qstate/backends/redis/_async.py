"""The Redis backend (async flavour): states shared by every worker on every machine.

Every operation is one atomic server-side step: a single command (HGET, HSET,
HGETALL, DEL) or a Lua script (update, delete with TTL, incr, and the two steps
of a transaction), sent with EVALSHA; on NOSCRIPT (after SCRIPT FLUSH or a
failover) it is sent once with EVAL, which also caches it again.
``transaction()`` and ``modify()`` take the state's lock and read it in one
script, then write what changed and release the lock in another; plain writes
wait while the lock exists, as they do on the other backends. A registry's
waiters for one lock line up first (``turns`` beside this module). Should a lock's
lease expire mid-transaction, the commit writes nothing and raises
ConflictError rather than overwrite what others wrote meanwhile. See
``layout`` beside this module for the keys and scripts.

Connections come from a waiting pool (``pool`` beside this module): when all
``max_connections`` are busy, a call waits for one (up to ``timeout``) instead
of failing. After a timeout a
call sends nothing more: a transaction whose step timed out leaves its lock to
be given back by the registry's next write, rather than make its caller wait
another ``timeout`` on a server that does not answer.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from asyncio import sleep
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from ..._async.backend import AsyncBackend
from ..._changes import Change, decode_changes, iso_time
from ..._codec import JSONValue, decode, encode
from ..._errors import (
    BackendUnavailableError,
    ChangesLostError,
    ConfigError,
    ConflictError,
    CorruptDataError,
    UsageError,
)
from ..._keys import StateKey
from ..._listing import StateList
from ..._model import (
    MISSING,
    Document,
    StateInfo,
    _Missing,
    add,
)
from ..._origin import decode_origin, origin_text
from ..._urls import redact
from . import layout
from .errors import (
    REDIS_ERRORS,
    StateLocked,
    mapped_errors,
    pool_exhausted,
    translate,
)
from .pool import AsyncWaitingPool
from .turns import AsyncTurn, AsyncTurns


class _Script:
    """A Lua script and its SHA1, the name EVALSHA knows it by."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


class AsyncRedisBackend(AsyncBackend):
    """States as Redis hashes; one client (and connection pool) per backend."""

    keeps_revisions = True

    def __init__(self, url: str) -> None:
        self.options = layout.parse_url(url)
        self.history_size = self.options.history
        self.url = redact(url)
        self._prefix = self.options.prefix
        self._orphans: list[tuple[StateKey, str]] = []
        """Locks of transactions that timed out, to give back when the server answers."""
        self._turns = AsyncTurns(self.options.lease)
        timeout = self.options.timeout
        common: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        }
        try:
            if self.options.cluster:
                self._client: Any = RedisCluster.from_url(
                    self.options.client_url,
                    max_connections=self.options.max_connections,
                    **common,
                )
            else:
                # No blanket retries: redis-py would resend an incr whose reply was
                # lost, applying it twice. qstate retries idempotent operations
                # itself (see _once_more); timeouts are never retried, so an outage
                # costs at most ``timeout`` per operation.
                pool = AsyncWaitingPool.from_url(
                    self.options.client_url,
                    max_connections=self.options.max_connections,
                    timeout=timeout,
                    retry=Retry(NoBackoff(), 0),
                    **common,
                )
                self._client = Redis(connection_pool=pool)
        except (ValueError, TypeError) as exc:
            # redis-py's text names an option, never the password; scrub it anyway
            message = str(exc)
            if self.options.password:
                message = message.replace(self.options.password, "***")
            raise ConfigError(f"bad Redis URL {self.url!r}: {message}") from None
        except REDIS_ERRORS as exc:  # the sync cluster client connects right away
            raise translate(exc, self.url) from None
        # Scripts are run with EVALSHA directly (redis-py's Script wrapper costs
        # more per call than the script itself, and reloads a missing script with
        # SCRIPT LOAD, one more round trip than EVAL).
        self._set = _Script(layout.SET)
        self._update = _Script(layout.UPDATE)
        self._delete = _Script(layout.DELETE)
        self._clear = _Script(layout.CLEAR)
        self._incr = _Script(layout.INCR)
        self._replace = _Script(layout.REPLACE)
        self._acquire_script = _Script(layout.ACQUIRE)
        self._snapshot_script = _Script(layout.SNAPSHOT)
        self._commit_script = _Script(layout.COMMIT)
        self._release_script = _Script(layout.RELEASE)

    def _key(self, key: StateKey) -> str:
        return layout.data_key(self._prefix, key)

    def _keys(self, key: StateKey) -> list[str]:
        data = layout.data_key(self._prefix, key)
        return [data, layout.lock_key(data), layout.log_key(data), layout.counter_key(data)]

    async def _eval(self, script: _Script, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA; EVAL if the server does not know the script (EVAL caches it)."""
        try:
            return await self._client.evalsha(script.sha, 4, *keys, *args)
        except NoScriptError:
            return await self._run_source(script, keys, args)

    async def _run_source(self, script: _Script, keys: list[str], args: list[Any]) -> Any:
        """Redis's EVAL (not Python's): runs the script and caches it for EVALSHA."""
        return await self._client.execute_command("EVAL", script.source, 4, *keys, *args)

    async def _once_more(
        self, call: Callable[..., Any], *args: Any, idempotent: bool = True
    ) -> Any:
        """Run ``call(*args)``; if its connection turns out dead (say the server
        restarted since it was pooled), run it once more on a new one, when that is safe.

        An operation that is not idempotent (incr, a commit) is not resent: its
        first attempt may have been applied with only the reply lost. The
        arguments are passed, not closed over: reads go through here, and a
        closure per call cost them 2-3 %.
        """
        try:
            return await call(*args)
        except RedisConnectionError as exc:
            if not idempotent or pool_exhausted(exc):
                raise
            return await call(*args)

    async def _write(
        self,
        script: _Script,
        key: StateKey,
        args: list[Any],
        field: str = "",
        *,
        idempotent: bool = True,
    ) -> Any:
        """Run a write script, waiting while a transaction holds the state's lock."""
        keys = self._keys(key)
        args += (self.history_size_of(key) or "", origin_text())  # see layout._LOG
        if self._orphans:
            await self._release_orphans()
        turn = None  # taken once the lock is found held: see turns.py
        try:
            while True:
                try:
                    try:  # _once_more and _eval inlined: this is every write's path
                        return await self._client.evalsha(script.sha, 4, *keys, *args)
                    except RedisConnectionError as exc:
                        if not idempotent or pool_exhausted(exc):
                            raise
                        return await self._eval(script, keys, args)
                    except NoScriptError:
                        return await self._run_source(script, keys, args)
                except REDIS_ERRORS as exc:
                    error = translate(exc, self.url, key, field)
                    if not isinstance(error, StateLocked):
                        raise error from exc
                if turn is None:
                    deadline = time.monotonic() + self.options.lock_wait
                    turn = await self._line_up(key, deadline)
                    pause = 0.001
                pause = await self._wait(key, deadline, pause, error.pttl_ms)
        finally:
            if turn is not None:
                self._turns.leave(key, turn)

    async def _line_up(self, key: StateKey, deadline: float) -> AsyncTurn:
        """Wait behind this registry's other waiters for the state's lock: a turn."""
        turn = await self._turns.enter(key, deadline)
        if turn is None:
            raise self._locked_too_long(key)
        return turn

    def _locked_too_long(self, key: StateKey) -> ConflictError:
        return ConflictError(
            f"state {key} stayed locked by transactions for more than "
            f"{self.options.lock_wait:g} s; retry later, or raise ?lock_wait= in the URL"
        )

    async def _wait(self, key: StateKey, deadline: float, pause: float, held_ms: int) -> float:
        """Sleep a little while another transaction holds the lock; the next pause."""
        if time.monotonic() >= deadline:
            raise self._locked_too_long(key)
        held_for = max(held_ms, 1) / 1000
        await sleep(min(pause, held_for) * (0.5 + random.random()))  # noqa: S311
        return min(pause * 2, 0.05)

    def _decode_flat(self, flat: list[bytes], key: StateKey) -> Document:
        """HGETALL's flat [field, value, ...] reply, as a script returns it, as a document."""
        return self._decode_pairs(zip(flat[::2], flat[1::2], strict=True), key)

    def _decode_pairs(self, pairs: Iterable[tuple[bytes, bytes]], key: StateKey) -> Document:
        """Stored ``(field, JSON text)`` pairs as a document."""
        try:
            return {field.decode(): decode(text) for field, text in pairs}
        except (UnicodeDecodeError, CorruptDataError) as exc:
            raise self._corrupt(key, exc) from None

    def _corrupt(self, key: StateKey, error: Exception) -> CorruptDataError:
        """``error`` (bad stored data) saying which server and state hold it."""
        return CorruptDataError(f"Redis at {self.url}: state {key}: {error}")

    @staticmethod
    def _ttl_ms(ttl: float | None) -> str:
        return "" if ttl is None else str(max(int(ttl * 1000), 1))

    # -- reads -------------------------------------------------------------

    async def get(self, key: StateKey, field: str) -> JSONValue | _Missing:
        try:
            raw = await self._once_more(self._client.hget, self._key(key), field)
        except REDIS_ERRORS as exc:
            raise translate(exc, self.url, key) from exc
        if raw is None:
            return MISSING
        try:
            return decode(raw)
        except CorruptDataError as exc:
            raise self._corrupt(key, exc) from None

    async def get_all(self, key: StateKey) -> Document:
        try:
            mapping = await self._once_more(self._client.hgetall, self._key(key))
        except REDIS_ERRORS as exc:
            raise translate(exc, self.url, key) from exc
        return self._decode_pairs(mapping.items(), key)  # redis-py paired the reply up

    async def list_states(self, prefix: str = "") -> StateList:
        pattern = layout.scan_pattern(self._prefix, prefix)
        with mapped_errors(self.url):
            keys = []
            async for raw in self._client.scan_iter(match=pattern, count=1000):
                text = raw.decode(errors="replace")
                state = layout.parse_data_key(self._prefix, text)
                if state is not None:
                    keys.append((raw, state))
            found = []
            unreadable = []
            chunk = 500
            for start in range(0, len(keys), chunk):
                part = keys[start : start + chunk]
                pipe = self._client.pipeline(transaction=False)
                for raw, _ in part:
                    pipe.hlen(raw)
                    pipe.pttl(raw)
                # a key of another type fails its HLEN alone (WRONGTYPE), not the list
                replies = await pipe.execute(raise_on_error=False)
                for i, (raw, state) in enumerate(part):
                    count, pttl = replies[2 * i], replies[2 * i + 1]
                    if isinstance(count, ResponseError):
                        if not str(count).startswith("WRONGTYPE"):
                            raise count
                        unreadable.append(raw.decode(errors="replace"))
                    elif count:
                        ttl = None if pttl < 0 else pttl / 1000
                        found.append(StateInfo(state.name, state.scope, count, ttl))
        return StateList(sorted(found), sorted(unreadable))

    # -- writes ------------------------------------------------------------

    async def set(self, key: StateKey, field: str, value: JSONValue, ttl: float | None) -> None:
        if ttl is None:
            await self._write(self._set, key, [field, encode(value)])
        else:
            await self._write(self._update, key, [self._ttl_ms(ttl), "0", field, encode(value)])

    async def update(self, key: StateKey, mapping: Document, ttl: float | None) -> Document:
        args = [self._ttl_ms(ttl), "1"]
        for field, value in mapping.items():
            args += (field, encode(value))
        return self._decode_flat(await self._write(self._update, key, args), key)

    async def delete(self, key: StateKey, fields: Sequence[str], ttl: float | None) -> int:
        if not fields:
            return 0
        removed: int = await self._write(self._delete, key, [self._ttl_ms(ttl), *fields])
        return removed

    async def clear(self, key: StateKey) -> bool:
        return bool(await self._write(self._clear, key, []))

    async def replace(self, key: StateKey, data: Document, ttl: float | None) -> None:
        args = [self._ttl_ms(ttl)]
        for field, value in data.items():
            args += (field, encode(value))
        await self._write(self._replace, key, args)

    async def incr(
        self, key: StateKey, field: str, amount: int | float, ttl: float | None
    ) -> int | float:
        add(MISSING, amount, field)  # refuses a bad amount before any round trip
        args = [field, encode(amount)]
        if ttl is not None:
            args.append(self._ttl_ms(ttl))
        reply = await self._write(self._incr, key, args, field, idempotent=False)
        result: int | float = reply if type(reply) is int else decode(reply)
        return result

    # -- transactions ------------------------------------------------------

    async def _acquire(self, key: StateKey, deadline: float) -> tuple[str, dict[str, bytes]]:
        """Take the state's lock and read it: (token, {field: stored JSON text})."""
        keys = self._keys(key)
        if self._orphans:
            await self._release_orphans()
        token = os.urandom(16).hex()
        lease_ms = str(int(self.options.lease * 1000))
        pause = 0.001
        while True:
            try:
                reply = await self._eval(self._acquire_script, keys, [token, lease_ms])
            except REDIS_ERRORS as exc:
                # It may have taken the lock (or will, once a hung server reads
                # the request): give it back as soon as the server answers.
                if not pool_exhausted(exc):
                    self._orphans.append((key, token))
                raise translate(exc, self.url, key) from exc
            except BaseException:  # cancelled or interrupted: it may have been sent
                self._orphans.append((key, token))
                raise
            if reply[0] == 1:
                flat = reply[1]
                try:
                    raw = {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}
                except UnicodeDecodeError as exc:
                    await self._release(key, token)
                    raise self._corrupt(key, exc) from None
                return token, raw
            pause = await self._wait(key, deadline, pause, reply[1])

    async def _commit(
        self,
        key: StateKey,
        token: str,
        before: dict[str, bytes],
        document: Document,
        ttl: float | None,
    ) -> bool:
        """Write what changed since ``_acquire``; False if the lease expired meanwhile."""
        removed = [field for field in before if field not in document]
        changed: list[str] = []
        for field, value in document.items():
            text = encode(value)
            old = before.get(field)
            if old is None or old.decode() != text:
                changed += (field, text)
        had = "1" if before else "0"
        args = [token, self._ttl_ms(ttl), had, len(removed), *removed, *changed]
        args += (self.history_size_of(key) or "", origin_text())
        with mapped_errors(self.url, key):
            result = await self._eval(self._commit_script, self._keys(key), args)
        if result == layout.COMMIT_STATE_GONE:  # expired, or deleted by another tool
            if not document or not (changed or removed):  # nothing to write: it stays gone
                await self._release(key, token)
                return True
            return await self._commit(key, token, {}, document, ttl)  # all of it is new
        return bool(result == layout.COMMIT_DONE)

    async def _release(self, key: StateKey, token: str) -> None:
        with mapped_errors(self.url, key):
            await self._once_more(
                lambda: self._eval(self._release_script, self._keys(key), [token])
            )

    async def _abandon(self, key: StateKey, token: str, error: BaseException) -> None:
        """Give the lock of a failed transaction back: now, unless the server is
        what failed; then with the next write (a call sends nothing after a timeout)."""
        if isinstance(error, (BackendUnavailableError, *REDIS_ERRORS)):
            self._orphans.append((key, token))
            return
        try:
            await self._release(key, token)
        except BackendUnavailableError:
            self._orphans.append((key, token))

    async def _release_orphans(self) -> None:
        """Give back the locks that timed-out transactions may hold.

        A lock is released only if its token still matches, so this is safe
        whether the lost request took the lock or not. If the server still does
        not answer, the locks are kept for the next try and the calling write
        fails with that error: it must not spend a second timeout on its own.
        """
        while self._orphans:
            key, token = self._orphans.pop()
            try:
                await self._eval(self._release_script, self._keys(key), [token])
            except REDIS_ERRORS as exc:
                self._orphans.append((key, token))
                raise translate(exc, self.url, key) from exc

    def _decode_raw(self, raw: dict[str, bytes], key: StateKey) -> Document:
        try:
            return {field: decode(text) for field, text in raw.items()}
        except CorruptDataError as exc:
            raise self._corrupt(key, exc) from None

    def _lease_expired(self, key: StateKey) -> ConflictError:
        return ConflictError(
            f"the transaction on state {key} outlived its {self.options.lease:g} s lock "
            "lease, so other writers may have changed the state; nothing was written: "
            "keep transactions short, or raise ?lease= in the URL"
        )

    @asynccontextmanager
    async def transaction(self, key: StateKey, ttl: float | None) -> AsyncIterator[Document]:
        deadline = time.monotonic() + self.options.lock_wait
        turn = await self._line_up(key, deadline)
        try:
            token, before = await self._acquire(key, deadline)
            try:
                data = self._decode_raw(before, key)
                yield data  # validated by the state layer when the block ends
                committed = await self._commit(key, token, before, data, ttl)
            except BaseException as exc:
                await self._abandon(key, token, exc)
                raise
        finally:
            self._turns.leave(key, turn)
        if not committed:
            raise self._lease_expired(key)

    # -- revisions ---------------------------------------------------------

    async def _latest(self, key: StateKey) -> tuple[int, int] | None:
        """The ``(epoch, rev)`` of the state's last change, or None without a counter."""
        counter = layout.counter_key(self._key(key))
        try:
            rev, epoch = await self._once_more(
                lambda: self._client.hmget(counter, ["rev", "epoch"])
            )
        except REDIS_ERRORS as exc:
            raise translate(exc, self.url, key) from exc
        if rev is None or epoch is None:
            return None
        try:
            return int(epoch), int(rev)
        except ValueError:
            raise self._corrupt(key, ValueError(f"{counter} is not a revision counter")) from None

    async def revision(self, key: StateKey) -> int:
        latest = await self._latest(key)
        return 0 if latest is None else latest[1]

    async def snapshot(self, key: StateKey) -> tuple[Document, int]:
        try:
            flat, rev = await self._once_more(
                lambda: self._eval(self._snapshot_script, self._keys(key), [])
            )
        except REDIS_ERRORS as exc:
            raise translate(exc, self.url, key) from exc
        try:
            return self._decode_flat(flat, key), int(rev)
        except ValueError:
            raise self._corrupt(key, ValueError("its revision counter is not a number")) from None

    async def history(self, key: StateKey, since: int, limit: int | None) -> list[Change]:
        latest = await self._latest(key)
        if latest is None or limit == 0:
            return []
        log = layout.log_key(self._key(key))
        first = f"{latest[0]}-{since + 1}"  # this life's changes only: ids are epoch-rev
        try:
            if limit is None:
                entries = await self._once_more(lambda: self._client.xrange(log, first, "+"))
            else:
                entries = await self._once_more(
                    lambda: self._client.xrevrange(log, "+", first, count=limit)
                )
                entries.reverse()
        except REDIS_ERRORS as exc:
            raise translate(exc, self.url, key) from exc
        return [
            self._change(key, layout.parse_log_id(raw_id)[1], fields) for raw_id, fields in entries
        ]

    async def watch(
        self, key: StateKey, since: int | None, timeout: float | None
    ) -> AsyncIterator[Change]:
        log = layout.log_key(self._key(key))
        epoch, rev = await self._latest(key) or (0, 0)
        position = rev if since is None else since
        if position > rev:
            raise UsageError(f"revision {position} of {key} is ahead of its latest, {rev}")
        # Blocks stay well within the socket timeout; each quiet one ends with a
        # check that the state's count did not restart below the position.
        block = min(1.0, self.options.timeout / 2)
        last_change = time.monotonic()
        while True:
            wait = block
            if timeout is not None:
                wait = min(block, last_change + timeout - time.monotonic())
                if wait <= 0:
                    return
            try:
                reply = await self._client.xread(
                    {log: f"{epoch}-{position}"}, count=1000, block=max(int(wait * 1000), 1)
                )
            except REDIS_ERRORS as exc:
                raise translate(exc, self.url, key) from exc
            if not reply:
                latest = await self._latest(key)
                if latest is not None and (latest[0] != epoch or latest[1] < position):
                    epoch, position = latest[0], 0  # a new life: follow it from rev 1
                continue
            for raw_id, fields in reply[0][1]:
                entry_epoch, entry_rev = layout.parse_log_id(raw_id)
                if entry_epoch != epoch:  # the first change seen, or a new life
                    epoch, position = entry_epoch, 0
                if entry_rev != position + 1:
                    raise ChangesLostError(
                        f"changes {position + 1}..{entry_rev - 1} of {key} are no longer kept "
                        f"in {self.url} (its log keeps only the latest changes: see history=); "
                        "read the state anew"
                    )
                yield self._change(key, entry_rev, fields)
                position = entry_rev
                last_change = time.monotonic()

    def _change(self, key: StateKey, rev: int, fields: dict[bytes, bytes]) -> Change:
        try:
            when = int(fields[b"t"]) / 1000
            changes = decode_changes(fields[b"c"])
        except (KeyError, ValueError) as exc:
            raise self._corrupt(key, ValueError(f"change {rev} is unreadable: {exc}")) from None
        return Change(rev, iso_time(when), changes, decode_origin(fields.get(b"o")))

    async def health(self) -> dict[str, Any]:
        with mapped_errors(self.url):
            if self.options.cluster:
                cluster = await self._client.cluster_info()
                facts: dict[str, Any] = {
                    "mode": "cluster",
                    "cluster_state": cluster.get("cluster_state"),
                    "masters": cluster.get("cluster_size"),
                }
                if facts["cluster_state"] != "ok":
                    raise BackendUnavailableError(
                        f"Redis Cluster at {self.url} is in state {facts['cluster_state']!r}"
                    )
                return facts
            server = await self._client.info("server")
            persistence = await self._client.info("persistence")
        return {
            "mode": server.get("redis_mode", "standalone"),
            "redis": server.get("redis_version"),
            "aof": bool(persistence.get("aof_enabled")),
            "prefix": self._prefix,
        }

    async def aclose(self) -> None:
        await self._client.aclose()
