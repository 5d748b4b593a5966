"""redis-py's exceptions translated into qstate's, in one place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis import exceptions as rx

from ..._errors import BackendUnavailableError, CorruptDataError, InvalidValueError, QStateError

REDIS_ERRORS = (rx.RedisError, rx.RedisClusterException)
"""What redis-py raises; its cluster errors do not derive from RedisError."""

POOL_EXHAUSTED = "No connection available."
"""redis-py's BlockingConnectionPool's message when its wait for a connection ran out."""


@contextmanager
def mapped_errors(url: str, state: object = "", field: str = "") -> Iterator[None]:
    """Raise qstate errors for redis-py's; ``url`` must already be redacted."""
    try:
        yield
    except REDIS_ERRORS as exc:
        error = translate(exc, url, state, field)
        raise error from (None if isinstance(error, StateLocked) else exc)


def pool_exhausted(exc: BaseException) -> bool:
    """Whether ``exc`` says no pooled connection became free in time (nothing was sent)."""
    return isinstance(exc, rx.MaxConnectionsError) or (
        isinstance(exc, rx.ConnectionError) and str(exc) == POOL_EXHAUSTED
    )


def translate(exc: Exception, url: str, state: object = "", field: str = "") -> QStateError:
    """The qstate error for a redis-py error (hot paths call this from ``except``)."""
    if pool_exhausted(exc):
        return BackendUnavailableError(
            f"Redis at {url}: the connection pool was exhausted (every connection stayed "
            "busy for the whole timeout); nothing was sent: raise ?max_connections= in "
            "the URL (or ?timeout=), or run fewer operations at once"
        )
    if isinstance(exc, rx.AuthenticationError):
        return BackendUnavailableError(
            f"Redis at {url} refused the credentials ({_first_line(exc)}); check the URL"
        )
    if isinstance(exc, (rx.ConnectionError, rx.TimeoutError, rx.ClusterError)) or not isinstance(
        exc, rx.RedisError
    ):
        return BackendUnavailableError(
            f"Redis at {url} is unavailable ({_first_line(exc)}){_fate(exc)}"
        )
    if isinstance(exc, rx.ResponseError):
        return _from_response(exc, url, state, field)
    return BackendUnavailableError(f"Redis at {url}: {_first_line(exc)}")


class StateLocked(QStateError):
    """Internal: a write script found a transaction's lock (the caller waits, retries)."""

    def __init__(self, pttl_ms: int) -> None:
        super().__init__(f"locked for {pttl_ms} ms")
        self.pttl_ms = pttl_ms


def _from_response(exc: rx.ResponseError, url: str, state: object, field: str) -> QStateError:
    message = str(exc)
    if message.startswith("QSTATE_LOCKED"):
        return StateLocked(int(message.split()[-1]))
    if message.startswith("QSTATE_NOT_A_NUMBER"):
        kind = {'"': "str", "t": "bool", "f": "bool", "[": "list", "{": "dict"}.get(
            message[-1:], "value that is not a number"
        )
        return InvalidValueError(f"cannot incr key {field!r}: it holds a {kind}, not a number")
    if message.startswith("QSTATE_OVERFLOW"):
        return InvalidValueError(
            f"incr of key {field!r} would overflow (integers are kept within ±(2**63 - 1)); "
            "nothing was written"
        )
    if message.startswith("WRONGTYPE"):
        return CorruptDataError(
            f"Redis at {url}: the key of state {state} is not a hash; "
            "it was not written by qstate (another application uses the prefix?)"
        )
    if message.startswith(("OOM", "READONLY", "MISCONF", "LOADING", "MASTERDOWN", "NOREPLICAS")):
        return BackendUnavailableError(f"Redis at {url} refuses writes now: {_first_line(exc)}")
    return BackendUnavailableError(f"Redis at {url}: {_first_line(exc)}")


def _fate(exc: BaseException) -> str:
    """What became of the operation: only a lost reply leaves a write in doubt."""
    text = str(exc)
    if isinstance(exc, rx.ConnectionError) and (
        "refused" in text or "Error 111" in text or "Name or service not known" in text
    ):
        return "; nothing was sent"
    return "; a write may or may not have been applied (a read changed nothing)"


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
