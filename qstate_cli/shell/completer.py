"""Completion as you type: commands, options, state names, keys, short values."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from .catalog import Catalog
from .grammar import SHELL_COMMANDS, STATE_COMMANDS, Current, LineError, split

KEY_COMMANDS = frozenset({"get", "set", "delete", "incr", "update", "wait"})
"""Commands whose arguments after STATE are keys (``update``/``wait``: KEY=...)."""
MAX_VALUE_SUGGESTION = 40


class ShellCompleter(Completer):
    """Completes a shell line from the CLI's own command definitions and the backend."""

    def __init__(
        self,
        commands: dict[str, Any],
        catalog: Catalog,
        current: Callable[[], Current],
    ) -> None:
        self._commands = commands  # name -> click command
        self._catalog = catalog
        self._current = current

    def get_completions(self, document: Document, event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor
        try:
            words = split(text)
        except LineError:
            return
        typing_a_word = bool(text) and not text[-1].isspace()
        incomplete = words.pop() if typing_a_word and words else ""
        for candidate, meta in self._candidates(words, incomplete):
            if candidate.startswith(incomplete):
                yield Completion(candidate, start_position=-len(incomplete), display_meta=meta)

    def _candidates(self, words: list[str], incomplete: str) -> list[tuple[str, str]]:
        if not words:
            names = sorted([*self._commands, *SHELL_COMMANDS])
            return [(name, self._summary(name)) for name in names]
        command, rest = words[0], words[1:]
        if command == "use":
            return [(name, "state") for name in self._catalog.state_names()] if not rest else []
        if command == "help":
            return [(name, "") for name in sorted(self._commands)] if not rest else []
        click_command = self._commands.get(command)
        if click_command is None:
            return []
        if incomplete.startswith("-"):
            return [
                (option, (param.help or "").split(".")[0])
                for param in click_command.params
                for option in getattr(param, "opts", [])
                if option.startswith("--")
            ]
        if rest and rest[-1] in ("--scope", "-s"):
            name = self._state_in(command, rest)
            return [(scope, "scope") for scope in self._catalog.scopes(name)] if name else []
        positionals = _positionals(rest)
        current = self._current()
        if command in STATE_COMMANDS and current.name is None and not positionals:
            return [(name, "state") for name in self._catalog.state_names()]
        if command not in KEY_COMMANDS:
            return []
        name, scope = self._target(command, rest)
        if name is None:
            return []
        data = self._catalog.state(name, scope)
        after_state = positionals if current.name is not None else positionals[1:]
        if command in ("update", "wait"):
            return [(f"{key}=", _short(value)) for key, value in data.items()]
        if command == "set" and len(after_state) == 1:
            value = data.get(after_state[0])
            text = json.dumps(value, ensure_ascii=False) if after_state[0] in data else ""
            return [(text, "current value")] if 0 < len(text) <= MAX_VALUE_SUGGESTION else []
        if command in ("get", "set", "incr") and after_state:
            return []
        return [(key, _short(value)) for key, value in data.items()]

    def _target(self, command: str, rest: list[str]) -> tuple[str | None, str | None]:
        current = self._current()
        scope = _option_value(rest, ("--scope", "-s"))
        if current.name is not None:
            return current.name, scope if scope is not None else current.scope
        positionals = _positionals(rest)
        return (positionals[0] if positionals else None), scope

    def _state_in(self, command: str, rest: list[str]) -> str | None:
        return self._target(command, rest)[0]

    def _summary(self, name: str) -> str:
        command = self._commands.get(name)
        if command is None:
            return {"use": "switch state", "help": "help", "exit": "leave", "quit": "leave"}[name]
        return (command.help or "").split(".")[0]


def _positionals(words: list[str]) -> list[str]:
    """Words that are not options or option values (options that take a value
    are the ones qstate has: --scope, --ttl, --json, --prefix, --timeout...)."""
    takes_value = {"--scope", "-s", "--ttl", "--json", "-j", "--prefix", "-p", "--timeout", "-t",
                   "--interval", "--count", "-n"}  # fmt: skip
    result, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in takes_value:
            skip = True
        elif not word.startswith("-") or word == "-":
            result.append(word)
    return result


def _option_value(words: list[str], names: tuple[str, ...]) -> str | None:
    for index, word in enumerate(words[:-1]):
        if word in names:
            return words[index + 1]
    return None


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_VALUE_SUGGESTION else text[: MAX_VALUE_SUGGESTION - 1] + "…"
