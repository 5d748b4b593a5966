"""qstate: shared, inspectable state for task workers.

``State`` / ``AsyncState`` objects read and write one JSON document each, kept
by a backend chosen by URL: ``memory://``, ``file:path/state.db`` (SQLite) or
``redis://host:6379/0``. Importing this package imports no optional dependency.
"""

from ._async.registry import AsyncStateRegistry
from ._async.state import AsyncState
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
from ._inject import Scope
from ._listing import StateList
from ._model import StateInfo
from ._origin import acting_as
from ._sync.registry import StateRegistry
from ._sync.state import State
from ._urls import redact as redact_url

__version__ = "0.1.0"

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
