"""One-line syntax of each command, for the shell's bottom toolbar (pure)."""

from __future__ import annotations

import textwrap
from typing import Any

from ..main import GLOBAL_OPTIONS
from .facts import SHELL_OWN


def command_syntax(name: str, command: Any, *, implicit_state: bool) -> str:
    """``set [--scope S] KEY VALUE [--string] [--ttl T]``-style usage of a click command."""
    arguments, options = [], []
    for param in command.params:
        if param.name in GLOBAL_OPTIONS:
            continue  # every command has them: they would crowd out its own syntax
        if getattr(param, "param_type_name", "") == "argument":
            metavar = param.metavar or param.name.upper()
            repeated = metavar.endswith("...")
            metavar = metavar.removesuffix("...").strip("[]") + ("..." if repeated else "")
            if implicit_state and metavar == "STATE":
                continue
            arguments.append(metavar if param.required else f"[{metavar}]")
        else:
            long = [opt for opt in param.opts if opt.startswith("--")]
            if not long or long[0] == "--help":
                continue
            value = "" if param.is_flag else " " + (param.metavar or param.name.upper())
            options.append(f"{long[0]}{value}" if param.required else f"[{long[0]}{value}]")
    return " ".join([name, *arguments, *options])


def line_syntax(
    words: list[str], commands: dict[str, Any], *, implicit_state: bool, width: int = 80
) -> str:
    """The hint for the line being typed, wrapped to ``width`` (empty for an unknown command)."""
    return textwrap.fill(
        _syntax(words, commands, implicit_state=implicit_state), width=max(width - 1, 20)
    )


def _syntax(words: list[str], commands: dict[str, Any], *, implicit_state: bool) -> str:
    if not words:
        return "commands: " + " ".join(sorted([*commands, *SHELL_OWN])) + "   help CMD for details"
    name = words[0]
    if name in SHELL_OWN:
        syntax, summary = SHELL_OWN[name]
        return f"{syntax}   {summary}"
    command = commands.get(name)
    if command is None:
        return ""
    return command_syntax(name, command, implicit_state=implicit_state)
