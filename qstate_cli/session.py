"""What one command run knows: the global options and a lazily opened registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .output import Output

if TYPE_CHECKING:
    from qstate import State, StateRegistry


@dataclass
class Session:
    """Passed to every command through ``ctx.obj`` (no global state)."""

    url: str | None = None
    output: Output = field(default_factory=Output)
    debug: bool = False
    _registry: StateRegistry | None = field(default=None, repr=False)

    @classmethod
    def around(cls, registry: StateRegistry, output: Output) -> Session:
        """A session on a registry someone else owns (the embedded shell's)."""
        return cls(url=registry.url, output=output, _registry=registry)

    def registry(self) -> StateRegistry:
        """The registry for ``--url`` (else ``QSTATE_URL``, config file, default)."""
        if self._registry is None:
            from qstate import StateRegistry

            self._registry = StateRegistry(self.url)
        return self._registry

    def state(self, name: str, scope: str | None = None) -> State:
        return self.registry().state(name, scope=scope)

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()
            self._registry = None
