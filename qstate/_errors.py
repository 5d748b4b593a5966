"""The exceptions qstate raises; every one derives from :class:`QStateError`.

Catch ``QStateError`` to handle anything qstate reports. The tree::

    QStateError
    ├── ConfigError              bad URL, unknown scheme, unreadable config file
    ├── BackendUnavailableError  the store cannot be reached or written to now
    ├── InvalidNameError         a state name, scope or key qstate cannot store
    ├── InvalidValueError        a value that is not a JSON value
    ├── CorruptDataError         stored data that qstate did not write
    ├── ConflictError            a lock held too long, or a transaction's lease lost
    ├── ChangesLostError         a watcher fell behind the retained change log
    └── UsageError               an API misuse, such as writing to a state
                                 inside that state's own transaction()

``ConfigError``, ``InvalidNameError`` and ``InvalidValueError`` also derive from
``ValueError`` so that code written against plain Python conventions catches them.
Messages say what happened and what to do; they never contain a password.
"""

from __future__ import annotations


class QStateError(Exception):
    """Base class of every error qstate raises."""


class ConfigError(QStateError, ValueError):
    """The backend URL or the configuration file cannot be used."""


class BackendUnavailableError(QStateError):
    """The backend cannot be reached, or refuses to store data right now."""


class InvalidNameError(QStateError, ValueError):
    """A state name, scope or key that qstate refuses to store."""


class InvalidValueError(QStateError, ValueError):
    """A value that is not a JSON value (and would not round-trip exactly)."""


class CorruptDataError(QStateError):
    """Stored data that is not what qstate writes (edited by another tool?)."""


class ConflictError(QStateError):
    """A state stayed locked past the wait limit, or a transaction lost its lock."""


class UsageError(QStateError):
    """The API was used in a way that cannot work (and would otherwise deadlock)."""


class ChangesLostError(QStateError):
    """A watcher asked for changes its state's log no longer holds (it fell behind)."""
