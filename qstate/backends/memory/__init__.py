"""``memory://``: states in this process, private to the registry that opened them.

The only option is ``memory://?history=N``: how many changes of each state the
log keeps (default 1,000).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from ..._changes import history_option
from ..._errors import ConfigError
from ._async import AsyncMemoryBackend
from ._sync import MemoryBackend

__all__ = ["AsyncMemoryBackend", "MemoryBackend", "open_async", "open_sync"]


def _check(url: str) -> int | None:
    """The ``?history=`` of a memory URL, which takes no host, path or other option."""
    base, _, query = url.partition("?")
    if base.rstrip("/") not in ("memory:", "memory:/"):
        raise ConfigError(f"memory backend URL takes no host or path: {url!r}; use memory://")
    options = dict(parse_qsl(query, keep_blank_values=True))
    history = history_option(options, url)
    if options:
        raise ConfigError(f"unknown memory URL option(s) {', '.join(options)} in {url!r}")
    return history


def open_sync(url: str) -> MemoryBackend:
    return MemoryBackend(url if "?" in url else "memory://", _check(url))


def open_async(url: str) -> AsyncMemoryBackend:
    return AsyncMemoryBackend(url if "?" in url else "memory://", _check(url))
