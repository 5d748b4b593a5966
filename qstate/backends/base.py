"""What a backend author needs: the two base classes and the types they speak.

A backend implements ``get_all``, ``transaction`` and ``list_states`` (see
:class:`AsyncBackend` for the contract) and is registered in the
``qstate.backends`` entry-point group under its URL scheme, as an object with
``open_sync(url) -> Backend`` and ``open_async(url) -> AsyncBackend``. One that
keeps revisions sets ``keeps_revisions`` and yields :class:`Change` objects from
``watch`` (see ``AsyncBackend``)::

    [project.entry-points."qstate.backends"]
    postgres = "qstate_postgres"
"""

from __future__ import annotations

from .._async.backend import AsyncBackend
from .._changes import Change
from .._codec import JSONValue
from .._keys import StateKey
from .._model import MISSING, Document, Modifier, StateInfo
from .._sync.backend import Backend

__all__ = [
    "MISSING",
    "AsyncBackend",
    "Backend",
    "Change",
    "Document",
    "JSONValue",
    "Modifier",
    "StateInfo",
    "StateKey",
]
