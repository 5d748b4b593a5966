"""Turning command-line text into JSON values (pure)."""

from __future__ import annotations

import json
from typing import Any

from qstate import MAX_DEPTH

from .errors import BadInput


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def loads(text: str, what: str) -> Any:
    """``json.loads`` with NaN refused and deep nesting a clear BadInput.

    Python's parser recurses once per level, so text nested a few thousand levels
    deep would otherwise raise RecursionError instead of a user-facing error.
    """
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise BadInput(f"{what} is nested deeper than {MAX_DEPTH} levels") from None


def parse_value(text: str, *, force_string: bool = False, what: str = "VALUE") -> Any:
    """VALUE as JSON when it parses as JSON, else the text itself as a string.

    ``42`` is a number, ``true`` a bool, ``[1, 2]`` a list, ``"42"`` the string
    42, and ``hello`` (not JSON) the string hello. ``--string`` skips parsing.
    The library validates the value when it is written.
    """
    if force_string:
        return text
    try:
        value = loads(text, what)
    except ValueError as exc:
        if text.lstrip()[:1] in ("{", "["):  # meant as JSON: storing it as text hides a typo
            raise BadInput(
                f"{what} looks like JSON but does not parse ({exc}); "
                "pass --string to store it as text"
            ) from None
        return text
    return value


def parse_document(text: str, what: str = "--json") -> dict[str, Any]:
    """A JSON object given as text (``update --json``, ``edit``)."""
    try:
        value = loads(text, what)
    except ValueError as exc:
        raise BadInput(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadInput(f"{what} must be a JSON object, not {type(value).__name__}")
    return value


def parse_assignment(text: str) -> tuple[str, str]:
    """``key=value`` → (key, raw value); the value may contain more ``=``."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise BadInput(f"expected KEY=VALUE, got {text!r}")
    return key, raw
