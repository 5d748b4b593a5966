"""``memory://``: states in this process, private to the registry that opened them."""

from __future__ import annotations

from ..._errors import ConfigError
from ._async import AsyncMemoryBackend
from ._sync import MemoryBackend

__all__ = ["AsyncMemoryBackend", "MemoryBackend", "open_async", "open_sync"]


def _check(url: str) -> str:
    if url.rstrip("/") not in ("memory:", "memory:/"):
        raise ConfigError(f"memory backend URL takes no host or path: {url!r}; use memory://")
    return "memory://"


def open_sync(url: str) -> MemoryBackend:
    return MemoryBackend(_check(url))


def open_async(url: str) -> AsyncMemoryBackend:
    return AsyncMemoryBackend(_check(url))
