"""JSON values in and out of qstate: validation, deep copies, text encoding.

Every backend stores exactly what a JSON document can carry, so a value read back
from memory, SQLite or Redis is equal to the value written, and so other tools
(jq, redis-cli, sqlite3) read the same data. Anything that would be changed on
the way (a tuple turned into a list, an int dict key turned into a string, an
enum turned into its value, NaN) is refused at write time instead.
"""

from __future__ import annotations

import json
import json.scanner
import math
from typing import Any

from ._errors import CorruptDataError, InvalidValueError

JSONValue = Any
"""A JSON value: ``None``, ``bool``, ``int``, ``float``, ``str``, ``list``, ``dict``."""

MAX_INTEGER = 2**63 - 1
"""Largest integer stored: what SQLite, Redis ``HINCRBY`` and Python's ``json`` carry exactly.

64-bit ids (``time.time_ns()``, snowflake ids) fit; JavaScript and ``jq`` round
integers beyond 2**53, which is their reader's concern, not a reason to refuse.
"""

MIN_INTEGER = -MAX_INTEGER
"""Smallest integer stored; symmetric so that negating a stored integer never overflows."""

MAX_DEPTH = 100
"""Deepest nesting accepted, on input and in storage.

Deeper documents break other JSON tools' parsers and Python's own recursion
limit; a bound keeps every walk over a value safe.
"""


def refuse_constant(name: str) -> None:
    """``parse_constant`` for ``json``: NaN and Infinity are not JSON values."""
    raise ValueError(f"{name} is not a JSON value")


_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_encode_str = json.encoder.encode_basestring  # the C version when available
_decoder = json.JSONDecoder(parse_constant=refuse_constant)
_scan = json.scanner.make_scanner(_decoder)  # type: ignore[arg-type]  # typeshed is wrong


def check_value(value: Any, what: str = "value", key: str | None = None) -> JSONValue:
    """Return a private deep copy of ``value``, refusing what JSON cannot carry.

    Validation and copying share one walk because both are needed on every write
    (the caller must not be able to change stored data through its own reference).
    The location of a bad part (``value['a'][1]``) is only built on failure.
    """
    t = type(value)  # fast paths for the common scalars
    if t is str:
        if value.isascii():
            return value
    elif t is int:
        if MIN_INTEGER <= value <= MAX_INTEGER:
            return value
    elif value is None or t is bool:
        return value
    try:
        return _checked(value, 0)
    except _Refused as refused:
        path = reversed(refused.path) if key is None else [key, *reversed(refused.path)]
        where = what + "".join(f"[{p!r}]" for p in path)
        raise InvalidValueError(f"{where}: {refused.reason}") from None


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.path: list[str | int] = []


def _checked(value: Any, depth: int) -> JSONValue:
    t = type(value)
    if t is str:
        if not value.isascii() and not _is_text(value):
            raise _Refused("string contains a lone surrogate and is not valid Unicode text")
        return value
    if t is int:
        if MIN_INTEGER <= value <= MAX_INTEGER:
            return value
        raise _Refused(
            f"integer {value} is outside ±(2**63 - 1), the 64-bit range every backend "
            "carries exactly; store it as a string"
        )
    if t is float:
        if math.isfinite(value):
            return value
        raise _Refused(f"{value!r} is not a JSON number; store null or a string")
    if value is None or t is bool:
        return value
    if depth >= MAX_DEPTH:
        raise _Refused(f"nested deeper than {MAX_DEPTH} levels")
    if t is dict:
        copy = {}
        for k, v in value.items():
            if type(k) is not str:
                raise _Refused(
                    f"dict key {k!r} is a {type(k).__name__}; JSON object keys must be str"
                )
            if not k.isascii() and not _is_text(k):
                raise _Refused(f"dict key {k!r} contains a lone surrogate")
            try:
                copy[k] = _checked(v, depth + 1)
            except _Refused as refused:
                refused.path.append(k)
                raise
        return copy
    if t is list:
        items = []
        for i, v in enumerate(value):
            try:
                items.append(_checked(v, depth + 1))
            except _Refused as refused:
                refused.path.append(i)
                raise
        return items
    hint = "; pass a list" if isinstance(value, (tuple, set, frozenset)) else ""
    raise _Refused(f"{t.__name__} is not a JSON value{hint}")


def _is_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(text: str, what: str) -> None:
    """Refuse strings with lone surrogates: they cannot be stored as UTF-8 text."""
    if not _is_text(text):
        raise InvalidValueError(
            f"{what}: string contains a lone surrogate and is not valid Unicode text"
        )


def copy_value(value: JSONValue) -> JSONValue:
    """Deep-copy an already validated value (cheaper than ``copy.deepcopy``)."""
    t = type(value)
    if t is dict:
        return {k: copy_value(v) for k, v in value.items()}
    if t is list:
        return [copy_value(v) for v in value]
    return value


def encode(value: JSONValue) -> str:
    """Serialize an already validated value to compact JSON text.

    Scalars, the common case, skip ``JSONEncoder.encode``, which builds a new
    C encoder on every call; the text is the same as ``json.dumps`` produces.
    """
    t = type(value)
    if t is str:
        return _encode_str(value)
    if t is int:
        return int.__repr__(value)
    if t is float:
        return float.__repr__(value)
    if value is None:
        return "null"
    if t is bool:
        return "true" if value else "false"
    return _encoder.encode(value)


def decode(text: str | bytes) -> JSONValue:
    """Parse stored JSON text; anything qstate would not have written is CorruptDataError.

    Other tools can write what qstate refuses on input (``1e999``, a lone
    surrogate, nesting thousands of levels deep, a 70-bit integer): such data
    is reported where it is found instead of leaking ``Infinity`` to JSON output
    or a ``RecursionError`` to the caller.
    """
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        # The scanner alone is several times faster than JSONDecoder.decode, which
        # also skips surrounding whitespace; qstate never writes any, others might.
        try:
            value, end = _scan(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):
            value = _decoder.decode(text)
    except RecursionError:
        raise CorruptDataError(_stored_refusal(f"nested deeper than {MAX_DEPTH} levels")) from None
    except (ValueError, TypeError) as exc:  # UnicodeDecodeError is a ValueError
        raise CorruptDataError(_stored_refusal(f"not JSON text: {exc}")) from None
    t = type(value)  # the common scalars need no second look
    if (t is str and value.isascii()) or t is bool or value is None:
        return value
    if t is int and MIN_INTEGER <= value <= MAX_INTEGER:
        return value
    try:
        return _checked(value, 0)
    except _Refused as refused:
        raise CorruptDataError(_stored_refusal(refused.reason)) from None


def _stored_refusal(reason: str) -> str:
    return f"stored data that qstate does not write ({reason}): fix or delete it"
