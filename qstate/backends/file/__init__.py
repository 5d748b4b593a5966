"""``file:``: states in one SQLite database, shared by every process on the machine.

URL forms: ``file:///abs/path/state.db``, ``file:relative/path.db``,
``file:~/state.db``, with optional query parameters ``synchronous=normal|full``
(default ``normal``), ``timeout=SECONDS`` (how long a write waits for the
lock held by another writer, default 10) and ``history=N`` (how many changes of
each state the log keeps, default 1,000).

The package: ``layout`` (the SQLite layout, its statements, the inspection of
an existing file and the error mapping), ``_sync`` (the backend) and ``_async``
(its async twin, running the sync calls in worker threads).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote

from ..._changes import history_option
from ..._errors import ConfigError
from ..._urls import redact
from ._sync import FileBackend

if TYPE_CHECKING:
    from ._async import AsyncFileBackend

__all__ = ["FileBackend", "open_async", "open_sync", "parse_url"]

_SYNCHRONOUS = {"normal": "NORMAL", "full": "FULL"}


def parse_url(url: str) -> tuple[Path, str, float, int | None]:
    """Path, synchronous level, busy timeout and history size of a ``file:`` URL."""
    rest = url[len("file:") :]
    rest, _, query = rest.partition("?")
    if rest.startswith("//"):
        host, _, path = rest[2:].partition("/")
        if host not in ("", "localhost"):
            raise ConfigError(
                f"file URL must name a local path, not host {host.rpartition('@')[2]!r}: "
                f"{redact(url)!r}"
            )
        rest = "/" + path
    if not rest or rest.endswith("/"):
        raise ConfigError(f"file URL needs a database file path: {url!r}")
    options = dict(parse_qsl(query, keep_blank_values=True))
    level = options.pop("synchronous", "normal").lower()
    if level not in _SYNCHRONOUS:
        raise ConfigError(f"synchronous must be normal or full, not {level!r}")
    try:
        timeout = float(options.pop("timeout", "10"))
    except ValueError:
        raise ConfigError(f"timeout must be a number of seconds in {url!r}") from None
    if not 0 < timeout <= 3600:
        raise ConfigError(f"timeout must be between 0 and 3600 seconds in {url!r}")
    history = history_option(options, url)
    if options:
        raise ConfigError(f"unknown file URL option(s) {', '.join(options)} in {url!r}")
    return Path(unquote(rest)).expanduser(), _SYNCHRONOUS[level], timeout, history


def open_sync(url: str) -> FileBackend:
    path, synchronous, timeout, history = parse_url(url)
    return FileBackend(path, synchronous, timeout, history)


def open_async(url: str) -> AsyncFileBackend:
    from ._async import AsyncFileBackend  # asyncio costs start-up time: only when used

    return AsyncFileBackend(open_sync(url))
