"""The floor of any Typer CLI: a minimal two-command app dispatching like qstate.

A global option in a callback, then a command with a STATE and an optional KEY
argument and an option, which prints a value. ``--redis`` makes the command
import redis, as ``qstate get`` on a Redis URL does. Used by bench_cli.py.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

app = typer.Typer(pretty_exceptions_enable=False, rich_markup_mode=None)


@app.callback()
def main(url: Annotated[str | None, typer.Option("--url")] = None) -> None:
    pass


@app.command()
def get(
    state: str,
    key: Annotated[str | None, typer.Argument()] = None,
    scope: Annotated[str | None, typer.Option("--scope")] = None,
) -> None:
    if "--redis" in sys.argv:
        import redis  # noqa: F401

    print(state, key)


@app.command()
def set(state: str, key: str, value: str) -> None:
    print(state, key, value)


if __name__ == "__main__":
    redis_flag = "--redis" in sys.argv
    if redis_flag:
        sys.argv.remove("--redis")
    if redis_flag:
        import redis  # noqa: F401
    app(prog_name="floor")  # completion reads $_FLOOR_COMPLETE
