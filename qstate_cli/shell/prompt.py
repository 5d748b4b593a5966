"""The prompt-toolkit session of the shell: completion, history, keys, toolbar."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.enums import DEFAULT_BUFFER
from prompt_toolkit.filters import has_focus
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

from .completer import ShellCompleter
from .grammar import is_complete
from .history import RedactingFileHistory, history_path

if TYPE_CHECKING:
    from .loop import Shell


def _key_bindings() -> KeyBindings:
    bindings = KeyBindings()

    @bindings.add("enter", filter=has_focus(DEFAULT_BUFFER))  # not in Ctrl-R search
    def _(event: KeyPressEvent) -> None:
        """Run the line as shown (with a selected completion), unless a quote or a
        JSON bracket is still open: then Enter starts a new line of the value."""
        buffer = event.current_buffer
        state = buffer.complete_state
        if state is not None and state.current_completion is not None:
            buffer.apply_completion(state.current_completion)
        if is_complete(buffer.text):
            buffer.validate_and_handle()
        else:
            buffer.insert_text("\n")

    return bindings


def make_prompt_session(shell: Shell) -> PromptSession[str]:
    """History in the user's state directory (``QSTATE_HISTFILE``), never a password;
    Ctrl-R searches it; suggestions come from it; Tab completes from the backend."""
    session: PromptSession[str] = PromptSession(
        history=RedactingFileHistory(history_path()),
        auto_suggest=AutoSuggestFromHistory(),
        completer=ShellCompleter(shell.commands, shell.catalog, lambda: shell.current),
        complete_while_typing=True,
        complete_in_thread=True,  # a slow or dead backend never freezes the typing
        multiline=True,
        key_bindings=_key_bindings(),
        bottom_toolbar=lambda: shell.toolbar(session.default_buffer.text),
        enable_history_search=False,
        prompt_continuation="... ",
    )
    return session
