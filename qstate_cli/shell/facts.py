"""What the shell knows about each command, read from the click command objects (pure).

Which commands take a STATE first, which take keys (and in which form), which
options take a value: all of it follows from the Typer app's own parameters, so
a new command or option reaches the shell's completion, toolbar and state
filling without a second list to keep in step. The shell's own words
(``use``, ``help``, ``exit``, ``quit``) are described once, in ``SHELL_OWN``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SHELL_OWN: Mapping[str, tuple[str, str]] = {
    "use": ("use STATE [--scope SCOPE]", "switch the current state"),
    "help": ("help [COMMAND]", "the commands, or one command's options"),
    "exit": ("exit", "leave the shell (or Ctrl-D)"),
    "quit": ("quit", "leave the shell (or Ctrl-D)"),
}
"""The shell's own commands: their syntax and what they do."""


@dataclass(frozen=True)
class CommandFacts:
    """One CLI command as the shell sees it."""

    name: str
    summary: str
    takes_state: bool
    """Its first argument is a STATE, which the shell fills in after ``use``."""
    keys: str
    """``""`` (takes no key), ``"one"`` (KEY), ``"many"`` (KEY...) or ``"assign"`` (KEY=VALUE)."""
    value_follows_key: bool
    """A VALUE argument follows the key (``set``): the current value is a suggestion."""
    value_options: frozenset[str]
    """Its options that take a value (``--scope S``), so their values are not arguments."""


def _metavar(param: Any) -> str:
    return str(param.metavar or param.name.upper()).strip("[]").removesuffix("...").strip("[]")


def value_options_of(command: Any) -> frozenset[str]:
    """A click command's options that take a value (``--scope S``), every spelling."""
    return frozenset(
        opt for p in command.params if p.param_type_name == "option" and not p.is_flag
        for opt in p.opts
    )  # fmt: skip


def facts_of(name: str, command: Any) -> CommandFacts:
    """The facts of one click command."""
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    takes_state = bool(arguments) and arguments[0].name == "state" and arguments[0].required
    keys, value_follows_key = "", False
    for index, argument in enumerate(arguments):
        metavar = _metavar(argument)
        if metavar.startswith("KEY"):
            keys = "assign" if "=" in metavar else "many" if argument.nargs != 1 else "one"
            following = arguments[index + 1 : index + 2]
            value_follows_key = bool(following) and following[0].name == "value"
            break
    return CommandFacts(
        name=name,
        summary=(command.help or "").strip().split("\n")[0].split(". ")[0].rstrip("."),
        takes_state=takes_state,
        keys=keys,
        value_follows_key=value_follows_key,
        value_options=value_options_of(command),
    )


def all_facts(commands: Mapping[str, Any]) -> dict[str, CommandFacts]:
    """The facts of every command, by name."""
    return {name: facts_of(name, command) for name, command in commands.items()}
