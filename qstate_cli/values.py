"""Turning command-line text into JSON values (pure)."""

from __future__ import annotations

import json
from typing import Any

from qstate._codec import check_value

from .errors import BadInput


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def parse_value(text: str, *, force_string: bool = False) -> Any:
    """VALUE as JSON when it parses as JSON, else the text itself as a string.

    ``42`` is a number, ``true`` a bool, ``[1, 2]`` a list, ``"42"`` the string
    42, and ``hello`` (not JSON) the string hello. ``--string`` skips parsing.
    """
    if force_string:
        return check_value(text)
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except ValueError:
        return check_value(text)
    return check_value(value)


def parse_document(text: str, what: str = "--json") -> dict[str, Any]:
    """A JSON object given as text (``update --json``, ``edit``)."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
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
