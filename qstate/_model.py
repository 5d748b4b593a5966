"""Pure pieces shared by every backend and both flavours (no I/O here)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from ._codec import MAX_INTEGER, MIN_INTEGER, JSONValue, check_value
from ._errors import InvalidValueError
from ._keys import StateKey, check_key


class StateInfo(NamedTuple):
    """One state as a registry lists it."""

    name: str
    scope: str
    keys: int
    ttl: float | None
    """Seconds until the state expires, or ``None`` if it never does."""


class _Missing:
    """The type of :data:`MISSING`: a key that is not in the state."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING = _Missing()
"""Returned by a backend's ``get`` when the key does not exist (``None`` is a value)."""

Document = dict[str, JSONValue]
Modifier = Callable[[Document], "Document | None"]


def check_document(data: Any, what: str = "state") -> Document:
    """Validate a whole state (keys and values) and return a private copy."""
    if not isinstance(data, dict):
        raise InvalidValueError(f"{what} must be a dict, not {type(data).__name__}")
    return check_own_document(dict(data), what)


def check_own_document(data: Document, what: str) -> Document:
    """Validate a dict the caller owns, copying only its list and dict values in place."""
    for k, v in data.items():
        check_key(k)
        data[k] = check_value(v, what, k)  # replaces a value, never adds a key
    return data


_CONTAINERS = (dict, list)


def check_changes(data: Any, before: Document, what: str = "state") -> tuple[Document, list[str]]:
    """:func:`check_document` of ``data`` for what may have changed since ``before`` (a
    shallow copy of the document as read), and the keys of those values.

    A value that is still the very object read under its key, and not a
    container, is that value unchanged: key and value were read from the
    store, and its JSON text is the one read, so it is neither checked nor
    encoded again. Identity, not equality, so ``1``, ``1.0`` and ``True`` are
    never taken for one another. A container is always checked (and so copied)
    and listed, since it may have been changed in place (a list appended to, a
    nested dict updated).
    """
    if not isinstance(data, dict):
        raise InvalidValueError(f"{what} must be a dict, not {type(data).__name__}")
    document = dict(data)
    read = before.get
    changed = [
        k for k, v in document.items() if type(v) in _CONTAINERS or read(k, MISSING) is not v
    ]
    for k in changed:
        check_key(k)
        document[k] = check_value(document[k], what, k)  # replaces a value, never adds a key
    return document, changed


def modified(fn: Modifier, current: Document) -> Any:
    """What a ``modify`` callback makes of ``current`` (not yet validated).

    ``fn`` may return a new dict or ``None`` after changing its argument in place;
    both are common styles, and treating ``None`` as "clear everything" would
    silently destroy data.
    """
    result = fn(current)
    return current if result is None else result


def apply_modifier(fn: Modifier, current: Document, key: StateKey) -> Document:
    """Run a ``modify`` callback on a copy and validate what it returns (see :func:`modified`)."""
    return check_document(modified(fn, current), f"modify({key})")


def add(current: JSONValue, amount: int | float, field: str) -> int | float:
    """The new value of an ``incr``: ``current + amount``, refusing non-numbers."""
    if type(amount) not in (int, float):
        raise InvalidValueError(f"incr amount must be an int or a float, not {amount!r}")
    if current is MISSING or current is None:
        current = 0
    elif type(current) not in (int, float):
        raise InvalidValueError(
            f"cannot incr key {field!r}: it holds a {type(current).__name__}, not a number"
        )
    result: int | float = current + amount
    if type(result) is int and not MIN_INTEGER <= result <= MAX_INTEGER:
        raise InvalidValueError(
            f"incr of key {field!r} would overflow the 64-bit integer range ±(2**63 - 1)"
        )
    if type(result) is float and not math.isfinite(result):
        raise InvalidValueError(f"incr of key {field!r} would overflow to {result}")
    return result


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""Default of optional arguments where ``None`` is itself a meaningful value."""


def check_ttl(ttl: object) -> float | None:
    """Validate a TTL in seconds: ``None`` (never expire) or a positive number."""
    if ttl is None:
        return None
    if type(ttl) not in (int, float) or not 0 < ttl < 10**9:  # type: ignore[operator]
        raise InvalidValueError(f"ttl must be a positive number of seconds or None, not {ttl!r}")
    return float(ttl)  # type: ignore[arg-type]


def check_count(name: str, value: object) -> int:
    """A revision or a count: an int >= 0 (``True`` is not one)."""
    if type(value) is not int or value < 0:
        raise InvalidValueError(f"{name} must be an int >= 0, not {value!r}")
    return value
