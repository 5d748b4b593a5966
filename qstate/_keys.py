"""State names, scopes and keys: what is accepted and how a state is addressed.

A state is addressed by a :class:`StateKey` (name, scope). Names and scopes are
restricted so that every backend can store them unambiguously: a name never
contains ``:`` and a scope never contains a brace, so two different (name,
scope) pairs can never map to the same Redis key or the same SQLite row. A name
is data, never a path.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ._codec import check_text
from ._errors import InvalidNameError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,127}")
_CONTROL = (  # C0, DEL, C1, line separators, bidi controls; braces (Redis hash tags)
    "[\x00-\x1f\x7f-\x9f{}\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
"""A pattern that ``re`` compiles on first use (~0.4 ms): most scopes are
printable ASCII without braces and never need it."""
MAX_SCOPE = 200
MAX_KEY = 1000


class StateKey(NamedTuple):
    """The address of one state document: its name and scope (``""`` = unscoped)."""

    name: str
    scope: str = ""

    def __str__(self) -> str:
        return f"{self.name}[{self.scope}]" if self.scope else self.name


def check_name(name: object) -> str:
    """Return ``name`` if it is a valid state name, else raise InvalidNameError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidNameError(
            f"invalid state name {name!r}: use 1-128 characters from A-Z a-z 0-9 _ . -, "
            "starting with a letter or _"
        )
    return name


def check_scope(scope: object) -> str:
    """Normalize a scope (``None`` → unscoped, int → its decimal text) or refuse it."""
    if scope is None:
        return ""
    if type(scope) is int:
        return str(scope)
    if not isinstance(scope, str) or not scope or len(scope) > MAX_SCOPE:
        raise InvalidNameError(
            f"invalid scope {scope!r}: use a non-empty string of at most {MAX_SCOPE} "
            "characters, an int, or None"
        )
    plain = scope.isascii() and scope.isprintable() and "{" not in scope and "}" not in scope
    if not plain and re.search(_CONTROL, scope):
        raise InvalidNameError(
            f"invalid scope {scope!r}: control characters (also C1 and bidi controls) "
            "and braces are not allowed"
        )
    if not scope.isascii():
        _as_name_error(scope, "scope")
    return scope


def check_key(key: object) -> str:
    """Return ``key`` if it can be a key inside a state, else raise InvalidNameError."""
    if type(key) is str and key.isascii() and 0 < len(key) <= MAX_KEY:
        return key
    if type(key) is not str or not key or len(key) > MAX_KEY:
        raise InvalidNameError(
            f"invalid key {key!r}: a key is a non-empty str of at most {MAX_KEY} characters"
        )
    _as_name_error(key, "key")
    return key


def _as_name_error(text: str, what: str) -> None:
    try:
        check_text(text, what)
    except ValueError as exc:
        raise InvalidNameError(f"invalid {what} {text!r}: {exc}") from None
