"""Backend URLs: the scheme that picks a backend, and a form safe to print."""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import unquote

from ._errors import ConfigError

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_AUTHORITY_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
# Patterns that ``re`` compiles on first use: redact() is not on every command's
# way to its result (a file: URL's), and each costs ~0.3 ms to compile.
_USERINFO_PATTERN = r"([A-Za-z][A-Za-z0-9+.\-]*://[^/@?#\s]*?:)[^/@?#\s]*@"
_QUERY_PATTERN = r"(?i)([?&][a-z_]*(?:password|pass|pwd)=)[^&#\s]*"


def scheme_of(url: str) -> str:
    """The lower-case scheme of ``url`` (``file``, ``redis``...), or ConfigError."""
    match = _SCHEME.match(url) if isinstance(url, str) else None
    if match is None:
        raise ConfigError(
            f"not a backend URL: {redact(str(url))!r}; use memory://, "
            "file:path/state.db or redis://host:6379/0"
        )
    return match.group(1).lower()


class Credentials(NamedTuple):
    """A ``scheme://user:password@rest`` URL split at its user info."""

    head: str
    """``scheme://``."""
    username: str | None
    """Percent-decoded; ``None`` when the URL has no user info."""
    password: str | None
    """Percent-decoded; ``None`` when the user info has no ``:``."""
    rest: str
    """Everything after the user info: ``host:port/path?query``."""


def split_credentials(url: str) -> Credentials:
    """Split the user info off a ``scheme://`` URL, whatever its password holds.

    The user info ends at the *last* ``@``, not at the first ``/``, ``?`` or
    ``#`` as RFC 3986 (and ``urllib.parse``) would have it: people paste
    passwords with those characters unencoded, and reading them as the start of
    the path would put the password in the host name, then in error messages.
    Percent-encoded user info (``%40`` for ``@``) is decoded.
    """
    match = _AUTHORITY_URL.match(url)
    if match is None:
        return Credentials("", None, None, url)
    head, rest = url[: match.end()], url[match.end() :]
    userinfo, at, after = rest.rpartition("@")
    if not at:
        return Credentials(head, None, None, rest)
    user, colon, password = userinfo.partition(":")
    return Credentials(head, unquote(user), unquote(password) if colon else None, after)


def redact(url: str) -> str:
    """``url`` (or any text with URLs in it) with every password replaced by ``***``.

    A whole URL is split with :func:`split_credentials`, so a password with any
    character in it is hidden (user info without a ``:`` is hidden whole: it may
    be a password written without its colon). In other text, passwords of
    well-formed URLs are hidden. Used for messages, prompts and shell history.
    """
    if _AUTHORITY_URL.match(url) and "@" in url:
        head, _, rest = url.partition("://")
        userinfo, _, after = rest.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        shown = f"{user}:***" if colon else "***"
        url = f"{head}://{shown}@{after}"
    url = re.sub(_USERINFO_PATTERN, r"\1***@", url)
    return re.sub(_QUERY_PATTERN, r"\1***", url)
