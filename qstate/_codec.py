"""JSON values in and out of qstate: validation, deep copies, text encoding.

Every backend stores exactly what a JSON document can carry, so a value read back
from memory, SQLite or Redis is equal to the value written, and so other tools
(jq, redis-cli, sqlite3) read the same data. Anything that would be changed on
the way (a tuple turned into a list, an int dict key turned into a string, an
enum turned into its value, NaN) is refused at write time instead.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ._errors import CorruptDataError, InvalidValueError

JSONValue = Any
"""A JSON value: ``None``, ``bool``, ``int``, ``float``, ``str``, ``list``, ``dict``."""

MAX_SAFE_INTEGER = 2**53 - 1
"""Largest integer every JSON tool carries exactly (JavaScript, jq, most parsers)."""

MAX_DEPTH = 100
"""Deepest nesting accepted; deeper documents break other JSON tools' parsers."""

_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_decoder = json.JSONDecoder()


def check_value(value: Any, what: str = "value", _depth: int = 0) -> JSONValue:
    """Return a private deep copy of ``value``, refusing what JSON cannot carry.

    Validation and copying share one walk because both are needed on every write
    (the caller must not be able to change stored data through its own reference).
    """
    t = type(value)
    if t is str:
        if not value.isascii():
            check_text(value, what)
        return value
    if t is int:
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return value
        raise InvalidValueError(
            f"{what}: integer {value} is outside ±(2**53 - 1), which JSON tools "
            "cannot carry exactly; store it as a string"
        )
    if t is float:
        if math.isfinite(value):
            return value
        raise InvalidValueError(f"{what}: {value!r} is not a JSON number; store null or a string")
    if value is None or t is bool:
        return value
    if _depth >= MAX_DEPTH:
        raise InvalidValueError(f"{what}: nested deeper than {MAX_DEPTH} levels")
    if t is dict:
        copy = {}
        for k, v in value.items():
            if type(k) is not str:
                raise InvalidValueError(
                    f"{what}: dict key {k!r} is a {type(k).__name__}; JSON object keys must be str"
                )
            if not k.isascii():
                check_text(k, what)
            copy[k] = check_value(v, f"{what}[{k!r}]", _depth + 1)
        return copy
    if t is list:
        return [check_value(v, f"{what}[{i}]", _depth + 1) for i, v in enumerate(value)]
    hint = "; pass a list" if isinstance(value, (tuple, set, frozenset)) else ""
    raise InvalidValueError(f"{what}: {t.__name__} is not a JSON value{hint}")


def check_text(text: str, what: str) -> None:
    """Refuse strings with lone surrogates: they cannot be stored as UTF-8 text."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidValueError(
            f"{what}: string contains a lone surrogate and is not valid Unicode text"
        ) from None


def copy_value(value: JSONValue) -> JSONValue:
    """Deep-copy an already validated value (cheaper than ``copy.deepcopy``)."""
    t = type(value)
    if t is dict:
        return {k: copy_value(v) for k, v in value.items()}
    if t is list:
        return [copy_value(v) for v in value]
    return value


def encode(value: JSONValue) -> str:
    """Serialize an already validated value to compact JSON text."""
    return _encoder.encode(value)


def decode(text: str | bytes, where: str) -> JSONValue:
    """Parse stored JSON text; text that qstate did not write is a CorruptDataError."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return _decoder.decode(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptDataError(
            f"{where} holds data that is not JSON text ({exc}); "
            "it was not written by qstate: fix or delete it"
        ) from None


def check_mapping(mapping: Any, what: str = "mapping") -> dict[str, JSONValue]:
    """Validate a whole mapping of key → value (keys validated by the caller)."""
    if not isinstance(mapping, dict):
        raise InvalidValueError(f"{what} must be a dict, not {type(mapping).__name__}")
    return check_value(mapping, what)  # type: ignore[no-any-return]
