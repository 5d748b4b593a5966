"""What one command run knows: the global options and a lazily opened registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import BadInput
from .output import Output
from .render import Mode

if TYPE_CHECKING:
    from qstate import State, StateRegistry


@dataclass
class Session:
    """Passed to every command through ``ctx.obj`` (no global state)."""

    url: str | None = None
    output: Output = field(default_factory=Output)
    debug: bool = False
    lives_on: bool = False
    """Whether the registry outlives one command (the shell): only then is memory:// useful."""
    _registry: StateRegistry | None = field(default=None, repr=False)

    @classmethod
    def around(cls, registry: StateRegistry, output: Output) -> Session:
        """A session on a registry someone else owns (the embedded shell's)."""
        return cls(url=registry.url, output=output, _registry=registry)

    def registry(self) -> StateRegistry:
        """The registry for ``--url`` (else ``QSTATE_URL``, config file, default)."""
        if self._registry is None:
            from qstate import StateRegistry, locate_url

            if not self.lives_on and locate_url(self.url).url.lower().startswith("memory:"):
                raise BadInput(
                    "memory:// keeps states inside one process, so this command would start "
                    "empty and its writes would vanish when it ends; use qstate shell "
                    "--url memory://, a file: URL or redis://"
                )
            self._registry = StateRegistry(self.url)
        return self._registry

    def apply(self, name: str, value: object) -> None:
        """Apply a global option given after the command (or on a shell line)."""
        if name == "url":
            if self._registry is not None and value != self.url:
                raise BadInput(
                    "--url cannot change inside the shell; start another: qstate shell --url URL"
                )
            self.url = str(value)
        elif name == "output":
            self.output.requested = Mode(str(value))
        elif name == "json_output":
            self.output.requested = Mode.json
        elif name == "no_color":
            self.output.no_color = True
        elif name == "debug":
            self.debug = True

    def settings(self) -> tuple[Mode | None, bool, bool]:
        """The per-run settings, so that the shell can restore them after a line."""
        return self.output.requested, self.output.no_color, self.debug

    def restore(self, settings: tuple[Mode | None, bool, bool]) -> None:
        self.output.requested, self.output.no_color, self.debug = settings

    def where(self) -> str:
        """The backend, password-free, and where its URL came from unless it was given."""
        from qstate import locate_url, redact_url

        located = locate_url(self.url)
        url = redact_url(located.url)
        if located.source == "argument":
            return url
        if located.source == "default":
            return f"{url} (the default: no --url, $QSTATE_URL or qstate.toml here)"
        return f"{url} (from {located.source})"

    def state(self, name: str, scope: str | None = None) -> State:
        return self.registry().state(name, scope=scope)

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()
            self._registry = None
