"""State names, scopes and keys for completion, fetched from the backend and cached briefly.

The one source of suggestions for both completions: the shell's (on
keystrokes, so reads are cached for a moment) and the bash/zsh/fish one (one
TAB, one process). Sizes are bounded, and a backend error just means no
suggestions.
"""

from __future__ import annotations

import time
from typing import Any

from qstate import StateRegistry

CACHE_SECONDS = 2.0
MAX_NAMES = 1000


class Catalog:
    """What the completer knows about the live backend."""

    def __init__(self, registry: StateRegistry, clock: Any = time.monotonic) -> None:
        self._registry = registry
        self._clock = clock
        self._cache: dict[tuple[str, ...], tuple[float, Any]] = {}

    def _cached(self, key: tuple[str, ...], fetch: Any) -> Any:
        now = self._clock()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        try:
            value = fetch()
        except Exception:  # a suggestion is never worth an error
            value = None
        if len(self._cache) > 256:
            self._cache.clear()
        self._cache[key] = (now, value)
        return value

    def state_names(self) -> list[str]:
        infos = self._cached(("names",), self._registry.list_states) or []
        return sorted({info.name for info in infos})[:MAX_NAMES]

    def scopes(self, name: str | None = None) -> list[str]:
        """The scopes of state ``name``, or of every state."""
        infos = self._cached(("names",), self._registry.list_states) or []
        return sorted({i.scope for i in infos if i.scope and (name is None or i.name == name)})

    def state(self, name: str, scope: str | None) -> dict[str, Any]:
        def fetch() -> dict[str, Any]:
            return self._registry.state(name, scope=scope).get_all()

        return self._cached(("state", name, scope or ""), fetch) or {}

    def invalidate(self) -> None:
        """Forget everything (after a command that may have changed the backend)."""
        self._cache.clear()
