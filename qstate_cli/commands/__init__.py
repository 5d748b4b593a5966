"""The commands: one table of names, each command's module imported when it is used.

``COMMANDS`` is the single list of what ``qstate`` can do. A run of ``qstate
get`` imports and builds only ``get``; the help, the shell and the docs test
build every command from the same table when they need them all. Help texts
and options live with each function, in its module, and nowhere else.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import typer

COMMANDS: dict[str, tuple[str, str]] = {
    "list": ("read", "list_states"),
    "get": ("read", "get"),
    "set": ("write", "set_value"),
    "update": ("write", "update"),
    "delete": ("write", "delete"),
    "clear": ("write", "clear"),
    "incr": ("write", "incr"),
    "export": ("transfer", "export"),
    "import": ("transfer", "import_states"),
    "wait": ("live", "wait"),
    "watch": ("live", "watch"),
    "history": ("past", "history"),
    "restore": ("past", "restore"),
    "edit": ("edit", "edit"),
    "shell": ("shell", "shell"),
    "doctor": ("doctor", "doctor"),
}
"""Command name → (module in this package, function), in the order help lists them."""


def build(name: str) -> Any:
    """The click command for ``name``, built by Typer from its function as
    ``app.command()`` would (same help and output settings as the app)."""
    module_name, function_name = COMMANDS[name]
    module = importlib.import_module(f"{__name__}.{module_name}")
    single = typer.Typer(
        add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None
    )
    single.command(name)(getattr(module, function_name))
    return typer.main.get_command(single)


class LazyCommands(MutableMapping[str, Any]):
    """A group's ``name → click command`` mapping that builds a command on first access.

    Listing it (``list(commands)``, ``name in commands``) imports nothing, so
    click's dispatch, completion of command names and the bare usage's list of
    names stay cheap; reading a value (``commands["get"]``) builds that command.
    """

    def __init__(self, load: Callable[[str], Any]) -> None:
        self._load = load
        self._names = list(COMMANDS)
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._built:
            self._built[name] = self._load(name)
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        if name not in self._names:
            self._names.append(name)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._names.remove(name)
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names
