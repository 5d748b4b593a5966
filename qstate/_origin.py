"""Who makes a change: the host, the process and, inside a task, the task's name.

Every logged change carries its origin, so ``qstate history`` answers "which
task wrote this?". Host and pid are the writing process's; the task name comes
from a context variable that the injection plugins set around a task
(:func:`acting_as` sets it for any other code). A context variable follows the
code through ``await`` and ``asyncio.to_thread``, and two tasks running at
once each see their own.

Writers call :func:`origin_text` on every write, so the JSON text is built once
per task name and process (a fork starts afresh: the pid changed).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_task: ContextVar[str | None] = ContextVar("qstate_task", default=None)
_texts: dict[str | None, str] = {}


def _hostname() -> str:
    """This machine's name, as ``socket.gethostname()`` says it (without importing
    socket, which every ``qstate`` command would pay for at start-up)."""
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()


_host = _hostname()

os.register_at_fork(after_in_child=_texts.clear)


def current_task() -> str | None:
    """The task name changes are made in now (``None`` outside one)."""
    return _task.get()


def origin(task: str | None) -> dict[str, Any]:
    """The origin of a change this process makes within ``task``."""
    found: dict[str, Any] = {"host": _host, "pid": os.getpid()}
    if task is not None:
        found["task"] = task
    return found


def origin_text() -> str:
    """The current origin as compact JSON text: what the file and Redis logs store."""
    task = _task.get()
    text = _texts.get(task)
    if text is None:
        if len(_texts) >= 1000:  # names made up per call: keep the cache bounded
            _texts.clear()
        text = _texts[task] = json.dumps(origin(task), ensure_ascii=False, separators=(",", ":"))
    return text


def decode_origin(text: str | bytes | None) -> dict[str, Any] | None:
    """A stored origin; ``None`` when the change has none (logged by an older qstate)."""
    if not text:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None  # who wrote it is lost; the change itself is still readable
    return found if isinstance(found, dict) else None


def begin_task(task: str | None) -> None:
    """Label what this context does from now on (``None``: no task), for hooks that
    run before and after a task rather than around it (QTasks' plugin triggers)."""
    _task.set(task)


@contextmanager
def acting_as(task: str) -> Iterator[None]:
    """Label the changes made inside the block with ``task`` (shown by ``qstate history``).

    The plugins do this for the functions they inject states into; use it in
    code they do not run, such as a bot handler or a maintenance script.
    """
    if not isinstance(task, str):
        raise TypeError(f"acting_as() takes a task name (a str), not {type(task).__name__}")
    token = _task.set(task)
    try:
        yield
    finally:
        _task.reset(token)
