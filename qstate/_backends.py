"""Opening a backend from its URL scheme, built-in or from another package.

Third-party backends register in the ``qstate.backends`` entry-point group,
under their scheme, an object with ``open_sync(url)`` and ``open_async(url)``.
Built-in schemes are looked up without reading entry points, because scanning
installed distributions costs milliseconds on every ``qstate`` command.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import ConfigError
from ._urls import redact, scheme_of

if TYPE_CHECKING:
    from ._async.backend import AsyncBackend
    from ._sync.backend import Backend

ENTRY_POINT_GROUP = "qstate.backends"

_BUILTIN = {
    "memory": "qstate.backends.memory",
    "file": "qstate.backends.file",
    "redis": "qstate.backends.redis",
    "rediss": "qstate.backends.redis",
    "unix": "qstate.backends.redis",
    "redis+cluster": "qstate.backends.redis",
    "rediss+cluster": "qstate.backends.redis",
}


def _factory(url: str) -> Any:
    scheme = scheme_of(url)
    module = _BUILTIN.get(scheme)
    if module is not None:
        return importlib.import_module(module)
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP, name=scheme):
        return entry.load()
    known = ", ".join(sorted(_BUILTIN))
    raise ConfigError(
        f"no backend for {scheme}:// in {redact(url)!r}; built in: {known} "
        f"(other packages add schemes through the {ENTRY_POINT_GROUP!r} entry points)"
    )


def open_sync_backend(url: str) -> Backend:
    """A sync backend for ``url``."""
    return _factory(url).open_sync(url)  # type: ignore[no-any-return]


def open_async_backend(url: str) -> AsyncBackend:
    """An async backend for ``url``."""
    return _factory(url).open_async(url)  # type: ignore[no-any-return]
