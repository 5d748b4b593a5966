"""``redis://``: states shared by every worker on every machine (needs ``qstate[redis]``).

URL forms::

    redis://[[user]:password@]host:port/db      plain TCP
    rediss://[[user]:password@]host:port/db     TLS (redis-py's ssl_* query options apply)
    unix:///path/to/redis.sock?db=0             Unix socket
    redis+cluster://host:port                   Redis Cluster, from any one node
    rediss+cluster://host:port                  Redis Cluster over TLS

qstate's own query options: ``prefix`` (key prefix, default ``qstate``),
``timeout`` (seconds, default 5: the bound on any call during an outage),
``max_connections`` (default 50: more concurrent calls wait for a connection),
``lease`` (seconds a transaction lock outlives a dead holder, default 10) and
``lock_wait`` (seconds a write waits for a transaction's lock, default 15).
A few of redis-py's options pass through (see ``layout.REDIS_PY_OPTIONS``);
any other is refused. Passwords may be percent-encoded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..._errors import ConfigError

if TYPE_CHECKING:
    from ..._async.backend import AsyncBackend
    from ..._sync.backend import Backend

__all__ = ["open_async", "open_sync"]


def _backend_class(flavour: str) -> Any:
    """The backend class, or a clear ConfigError when redis-py is not installed."""
    try:
        if flavour == "sync":
            from ._sync import RedisBackend

            return RedisBackend
        from ._async import AsyncRedisBackend

        return AsyncRedisBackend
    except ModuleNotFoundError as exc:
        if exc.name == "redis" or (exc.name or "").startswith("redis."):
            raise ConfigError(
                "the Redis backend needs redis-py: pip install 'qstate[redis]'"
            ) from None
        raise


def open_sync(url: str) -> Backend:
    backend: Backend = _backend_class("sync")(url)
    return backend


def open_async(url: str) -> AsyncBackend:
    backend: AsyncBackend = _backend_class("async")(url)
    return backend
