"""Backend URLs: the scheme that picks a backend, and a form safe to print."""

from __future__ import annotations

import re

from ._errors import ConfigError

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_USERINFO_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^/@?#\s]*?:)[^/@?#\s]*@")
_QUERY_PASSWORD = re.compile(r"([?&](?:password|pass|pwd)=)[^&#\s]*", re.IGNORECASE)


def scheme_of(url: str) -> str:
    """The lower-case scheme of ``url`` (``file``, ``redis``...), or ConfigError."""
    match = _SCHEME.match(url) if isinstance(url, str) else None
    if match is None:
        raise ConfigError(
            f"not a backend URL: {redact(str(url))!r}; use memory://, "
            "file:path/state.db or redis://host:6379/0"
        )
    return match.group(1).lower()


def redact(url: str) -> str:
    """``url`` (or any text with URLs in it) with every password replaced by ``***``.

    Used for messages, prompts and shell history.
    """
    url = _USERINFO_PASSWORD.sub(r"\1***@", url)
    return _QUERY_PASSWORD.sub(r"\1***", url)
