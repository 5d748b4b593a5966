"""Completion as you type: commands, options, state names, scopes, keys, short values.

What each command takes comes from its click definition (``facts``); names,
scopes and keys come from the backend through the shared ``Catalog``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from ..catalog import Catalog
from .facts import SHELL_OWN, CommandFacts, all_facts
from .grammar import Current, LineError, split

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
        self._facts = all_facts(commands)
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
            own = [(name, summary) for name, (_, summary) in SHELL_OWN.items()]
            return sorted([*((f.name, f.summary) for f in self._facts.values()), *own])
        command, rest = words[0], words[1:]
        if command == "use":
            return [(name, "state") for name in self._catalog.state_names()] if not rest else []
        if command == "help":
            return [(name, "") for name in sorted(self._commands)] if not rest else []
        facts = self._facts.get(command)
        if facts is None:
            return []
        if incomplete.startswith("-"):
            return [
                (option, (param.help or "").split(".")[0])
                for param in self._commands[command].params
                for option in getattr(param, "opts", [])
                if option.startswith("--")
            ]
        current = self._current()
        name, scope = self._target(facts, rest)
        if rest and rest[-1] in ("--scope", "-s"):
            return [(s, "scope") for s in self._catalog.scopes(name)] if name else []
        if rest and rest[-1] in facts.value_options:
            return []  # the value of another option (--to REV, --ttl T): nothing to offer
        positionals = _positionals(rest, facts)
        if facts.takes_state and current.name is None and not positionals:
            return [(state, "state") for state in self._catalog.state_names()]
        if not facts.keys or name is None:
            return []
        data = self._catalog.state(name, scope)
        after_state = positionals if current.name is not None else positionals[1:]
        if facts.keys == "assign":
            return [(f"{key}=", _short(value)) for key, value in data.items()]
        if facts.value_follows_key and len(after_state) == 1:
            if after_state[0] not in data:
                return []
            text = json.dumps(data[after_state[0]], ensure_ascii=False)
            return [(text, "current value")] if len(text) <= MAX_VALUE_SUGGESTION else []
        if facts.keys == "one" and after_state:
            return []
        return [(key, _short(value)) for key, value in data.items()]

    def _target(self, facts: CommandFacts, rest: list[str]) -> tuple[str | None, str | None]:
        """The state (and scope) the line is about: the current one, or the one typed."""
        current = self._current()
        scope = _option_value(rest, ("--scope", "-s"))
        if current.name is not None:
            return current.name, scope if scope is not None else current.scope
        positionals = _positionals(rest, facts)
        return (positionals[0] if positionals else None), scope


def _positionals(words: list[str], facts: CommandFacts) -> list[str]:
    """Words that are not options or the values of the command's options."""
    result, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in facts.value_options:
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
