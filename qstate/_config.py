"""Where the backend URL comes from when none is given.

First match wins: an explicit URL, the ``QSTATE_URL`` environment variable, a
config file found from the current directory upward (``qstate.toml`` with a
top-level ``url``, or ``[tool.qstate] url`` in ``pyproject.toml``), then
``file:.qstate/state.db``. The library and the CLI share this code, so an app and
``qstate get`` run in the same project see the same states.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

from ._errors import ConfigError

ENV_VAR = "QSTATE_URL"
DEFAULT_URL = "file:.qstate/state.db"


class ResolvedURL(NamedTuple):
    """A backend URL and where it was found (for ``--debug`` and ``doctor``)."""

    url: str
    source: str


def resolve_url(explicit: str | None = None) -> str:
    """The backend URL to use (see the module docstring for the order)."""
    return locate_url(explicit).url


def locate_url(explicit: str | None = None, cwd: Path | None = None) -> ResolvedURL:
    """Like :func:`resolve_url`, also saying where the URL came from."""
    if explicit is not None:
        if not explicit.strip():
            raise ConfigError("the backend URL is empty; give one, or omit it for the default")
        return ResolvedURL(explicit, "argument")
    env = os.environ.get(ENV_VAR)
    if env:
        return ResolvedURL(env, f"${ENV_VAR}")
    start = cwd or Path.cwd()
    for directory in (start, *start.parents):
        found = _from_directory(directory)
        if found is not None:
            return found
    return ResolvedURL(DEFAULT_URL, "default")


def _from_directory(directory: Path) -> ResolvedURL | None:
    own = directory / "qstate.toml"
    if own.is_file():
        table = _load(own)
        if "url" in table:
            return ResolvedURL(_anchored(_url_in(table, own), directory), str(own))
    pyproject = directory / "pyproject.toml"
    if pyproject.is_file():
        try:
            text = pyproject.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read {pyproject}: {exc.strerror}") from None
        if "qstate" not in text:  # the common case; skip parsing the whole file
            return None
        table = _load(pyproject, text).get("tool", {}).get("qstate", {})
        if isinstance(table, dict) and "url" in table:
            return ResolvedURL(_anchored(_url_in(table, pyproject), directory), str(pyproject))
    return None


def _load(path: Path, text: str | None = None) -> dict[str, Any]:
    import tomllib

    try:
        if text is None:
            text = path.read_text(encoding="utf-8")
        return tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def _url_in(table: dict[str, Any], path: Path) -> str:
    url = table["url"]
    if not isinstance(url, str) or not url:
        raise ConfigError(f"{path}: url must be a non-empty string")
    return url


def _anchored(url: str, directory: Path) -> str:
    """Make a relative ``file:`` path relative to the config file's directory.

    Otherwise the same project would use a different database depending on the
    subdirectory a command happens to run in.
    """
    if url.startswith("file:") and not url.startswith(("file:/", "file:~")):
        return "file:" + str(directory / url[len("file:") :])
    return url
