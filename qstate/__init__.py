"""qstate: shared, inspectable state for task workers.

``State`` / ``AsyncState`` objects read and write one JSON document each, kept
by a backend chosen by URL: ``memory://``, ``file:path/state.db`` (SQLite) or
``redis://host:6379/0``. Importing this package imports no optional dependency,
and the async layer only when one of its names is first used.
"""

from typing import TYPE_CHECKING, Any

from ._changes import Change
from ._codec import MAX_DEPTH, MAX_INTEGER, MIN_INTEGER
from ._config import DEFAULT_URL, ResolvedURL, locate_url, resolve_url
from ._errors import (
    BackendUnavailableError,
    ChangesLostError,
    ConfigError,
    ConflictError,
    CorruptDataError,
    InvalidNameError,
    InvalidValueError,
    QStateError,
    UsageError,
)
from ._listing import StateList
from ._model import StateInfo
from ._origin import acting_as
from ._sync.registry import StateRegistry
from ._sync.state import State
from ._urls import redact as redact_url

if TYPE_CHECKING:
    from ._async.registry import AsyncStateRegistry
    from ._async.state import AsyncState
    from ._inject import Scope

__version__ = "0.1.0"

_LAZY = {
    "AsyncState": "._async.state",
    "AsyncStateRegistry": "._async.registry",
    "Scope": "._inject",
}
"""Names imported on first use: a sync program (the ``qstate`` command) never
pays for the async layer's import at start-up."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'qstate' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_URL",
    "MAX_DEPTH",
    "MAX_INTEGER",
    "MIN_INTEGER",
    "AsyncState",
    "AsyncStateRegistry",
    "BackendUnavailableError",
    "Change",
    "ChangesLostError",
    "ConfigError",
    "ConflictError",
    "CorruptDataError",
    "InvalidNameError",
    "InvalidValueError",
    "QStateError",
    "ResolvedURL",
    "Scope",
    "State",
    "StateInfo",
    "StateList",
    "StateRegistry",
    "UsageError",
    "acting_as",
    "locate_url",
    "redact_url",
    "resolve_url",
]
