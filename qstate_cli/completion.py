"""Shell completion (bash, zsh, fish) of state names, scopes and keys from the live backend.

Completion runs on every TAB, so it must never hang the shell: the backend is
opened with a short timeout, and any error simply yields no candidates. The
suggestions come from the same ``Catalog`` as the interactive shell's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .catalog import Catalog

COMPLETION_TIMEOUT = 1.0


@contextmanager
def _catalog(ctx: Any) -> Iterator[Catalog]:
    from qstate import StateRegistry, resolve_url

    root = ctx.find_root() if ctx is not None else None
    url = resolve_url(root.params.get("url") if root is not None else None)
    if url.startswith(("redis", "unix", "file:")) and "timeout=" not in url:
        url += ("&" if "?" in url else "?") + f"timeout={COMPLETION_TIMEOUT}"
    with StateRegistry(url) as registry:
        yield Catalog(registry)


def _typed_state(ctx: Any) -> str | None:
    """The state named on the line so far (click leaves arguments unparsed while an
    option's value is completed: then they are in ``ctx.args``)."""
    params = ctx.params if ctx is not None else {}
    typed = params.get("state") or params.get("states") or (ctx.args if ctx is not None else [])
    if isinstance(typed, (list, tuple)):  # export STATE..., or the unparsed words
        return str(typed[0]) if len(typed) == 1 else None
    return str(typed) if typed else None


def _suggest(ctx: Any, incomplete: str, fetch: Callable[[Catalog], list[str]]) -> list[str]:
    try:
        with _catalog(ctx) as catalog:
            found = fetch(catalog)
    except Exception:  # completion must never fail the shell
        return []
    return [item for item in found if item.startswith(incomplete)]


def complete_state(ctx: Any, incomplete: str) -> list[str]:
    """Typer autocompletion for a STATE argument."""
    return _suggest(ctx, incomplete, Catalog.state_names)


def complete_scope(ctx: Any, incomplete: str) -> list[str]:
    """Typer autocompletion for --scope: scopes of the state typed, else of every state."""
    return _suggest(ctx, incomplete, lambda catalog: catalog.scopes(_typed_state(ctx)))


def complete_key(ctx: Any, incomplete: str) -> list[str]:
    """Typer autocompletion for a KEY argument (of the state typed before it)."""
    name = (ctx.params if ctx is not None else {}).get("state")
    if not name:
        return []
    scope = ctx.params.get("scope")
    return _suggest(ctx, incomplete, lambda catalog: list(catalog.state(name, scope)))
