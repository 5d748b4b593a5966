"""``AsyncStateRegistry``: where async states live, chosen by a backend URL."""

from __future__ import annotations

from types import TracebackType

from .._backends import open_async_backend
from .._config import resolve_url
from .._listing import StateList
from .backend import AsyncBackend
from .state import AsyncState


class AsyncStateRegistry:
    """Binds states to one backend.

    ``AsyncStateRegistry()`` resolves its URL as the CLI does: ``QSTATE_URL``,
    then ``qstate.toml`` or ``[tool.qstate]`` in ``pyproject.toml`` found from the
    current directory upward, then ``file:.qstate/state.db``. A backend object
    can be passed instead of a URL.
    """

    def __init__(self, url: str | AsyncBackend | None = None) -> None:
        if isinstance(url, AsyncBackend):
            self._backend = url
        else:
            self._backend = open_async_backend(resolve_url(url))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._backend.url}>"

    @property
    def backend(self) -> AsyncBackend:
        """The backend every state of this registry is stored in."""
        return self._backend

    @property
    def url(self) -> str:
        """The backend URL without its password (safe to print or log)."""
        return self._backend.url

    def state(
        self, name: str, *, scope: str | int | None = None, ttl: float | None = None
    ) -> AsyncState:
        """A state by name, for tools that do not have its class (like the CLI)."""
        return AsyncState(self, name=name, scope=scope, ttl=ttl)

    async def list_states(self, prefix: str = "") -> StateList:
        """Every non-empty state (name, scope, key count, TTL) whose name has ``prefix``.

        Keys that qstate cannot read (written by another program under the
        backend's prefix) are skipped and named in the result's ``unreadable``.
        """
        found = await self._backend.list_states(prefix)
        return found if isinstance(found, StateList) else StateList(found)

    async def aclose(self) -> None:
        """Release the backend's connections."""
        await self._backend.aclose()

    async def __aenter__(self) -> AsyncStateRegistry:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
