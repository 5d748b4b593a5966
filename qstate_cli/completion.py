"""Shell completion of state names and keys, read from the live backend.

Completion runs on every TAB, so it must never hang the shell: the backend is
opened with a short timeout, and any error simply yields no candidates.
"""

from __future__ import annotations

from typing import Any

COMPLETION_TIMEOUT = 1.0


def _registry(ctx: Any) -> Any:
    from qstate import StateRegistry, resolve_url

    root = ctx.find_root() if ctx is not None else None
    url = resolve_url(root.params.get("url") if root is not None else None)
    if url.startswith(("redis", "unix", "file:")) and "timeout=" not in url:
        url += ("&" if "?" in url else "?") + f"timeout={COMPLETION_TIMEOUT}"
    return StateRegistry(url)


def state_names(ctx: Any, incomplete: str) -> list[str]:
    try:
        with _registry(ctx) as registry:
            names = {info.name for info in registry.list_states(incomplete)}
    except Exception:  # completion must never fail the shell
        return []
    return sorted(names)


def state_scopes(ctx: Any, incomplete: str) -> list[str]:
    """Scopes of the state named on the line so far, else of every state."""
    params = ctx.params if ctx is not None else {}
    # While an option's value is completed, click leaves the arguments unparsed.
    typed = params.get("state") or params.get("states") or (ctx.args if ctx is not None else [])
    if isinstance(typed, (list, tuple)):  # export STATE..., or the unparsed words
        typed = typed[0] if len(typed) == 1 else None
    name = typed
    try:
        with _registry(ctx) as registry:
            infos = registry.list_states(name or "")
    except Exception:  # completion must never fail the shell
        return []
    return sorted(
        {i.scope for i in infos if i.scope.startswith(incomplete) and (not name or i.name == name)}
        - {""}
    )


def state_keys(ctx: Any, incomplete: str) -> list[str]:
    params = ctx.params if ctx is not None else {}
    name = params.get("state")
    if not name:
        return []
    try:
        with _registry(ctx) as registry:
            data = registry.state(name, scope=params.get("scope")).get_all()
    except Exception:  # completion must never fail the shell
        return []
    return [key for key in data if key.startswith(incomplete)]


def complete_state(ctx: Any, incomplete: str) -> list[str]:
    """Typer autocompletion for a STATE argument."""
    return state_names(ctx, incomplete)


def complete_key(ctx: Any, incomplete: str) -> list[str]:
    """Typer autocompletion for a KEY argument (of the state typed before it)."""
    return state_keys(ctx, incomplete)


def complete_scope(ctx: Any, incomplete: str) -> list[str]:
    """Typer autocompletion for --scope."""
    return state_scopes(ctx, incomplete)
