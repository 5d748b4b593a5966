"""``redis://``: states shared by every worker on every machine (needs ``qstate[redis]``).

URL forms::

    redis://[[user]:password@]host:port/db      plain TCP
    rediss://[[user]:password@]host:port/db     TLS (redis-py's ssl_* query options apply)
    unix:///path/to/redis.sock?db=0             Unix socket
    redis+cluster://host:port                   Redis Cluster, from any one node
    rediss+cluster://host:port                  Redis Cluster over TLS

qstate's own query options: ``prefix`` (key prefix, default ``qstate``),
``timeout`` (seconds, default 5: the bound on any operation during an outage),
``lease`` (seconds a transaction lock outlives a dead holder, default 30) and
``lock_wait`` (seconds a transaction waits for another's lock, default 10).
Other query options go to redis-py unchanged.
"""

from __future__ import annotations

from .._errors import ConfigError

__all__ = ["open_async", "open_sync"]


def _redis_missing() -> ConfigError:
    return ConfigError("the Redis backend needs redis-py: pip install 'qstate[redis]'")


def open_sync(url: str):  # type: ignore[no-untyped-def]
    try:
        from .._sync.redis import RedisBackend
    except ModuleNotFoundError as exc:
        if exc.name == "redis" or (exc.name or "").startswith("redis."):
            raise _redis_missing() from None
        raise
    return RedisBackend(url)


def open_async(url: str):  # type: ignore[no-untyped-def]
    try:
        from .._async.redis import AsyncRedisBackend
    except ModuleNotFoundError as exc:
        if exc.name == "redis" or (exc.name or "").startswith("redis."):
            raise _redis_missing() from None
        raise
    return AsyncRedisBackend(url)
