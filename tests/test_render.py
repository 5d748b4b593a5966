"""Rendering: rich tables printed at a fixed width without colour, and plain text."""

from __future__ import annotations

import io

from rich.console import Console

from qstate import StateInfo
from qstate_cli.render import (
    Mode,
    choose_mode,
    format_ttl,
    list_plain,
    list_table,
    plain_value,
    state_plain,
    state_table,
)


def printed(renderable: object) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=60, color_system=None, markup=False).print(renderable)
    return buffer.getvalue()


def test_state_table() -> None:
    data = {"state": "await_phone", "step": 1, "prompt": "Введите телефон", "tags": ["a"]}
    assert printed(state_table("MyState", "u1", data)) == (
        "MyState [u1]                  \n"
        "┏━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┓\n"
        "┃ key    ┃ value             ┃\n"
        "┡━━━━━━━━╇━━━━━━━━━━━━━━━━━━━┩\n"
        '│ state  │ "await_phone"     │\n'
        "│ step   │ 1                 │\n"
        '│ prompt │ "Введите телефон" │\n'
        '│ tags   │ ["a"]             │\n'
        "└────────┴───────────────────┘\n"
    )


def test_list_table() -> None:
    infos = [StateInfo("MyState", "", 3, None), StateInfo("Session", "u1", 1, 75.0)]
    assert printed(list_table(infos)) == (
        "┏━━━━━━━━━┳━━━━━━━┳━━━━━━┳━━━━━━━┓\n"
        "┃ state   ┃ scope ┃ keys ┃   ttl ┃\n"
        "┡━━━━━━━━━╇━━━━━━━╇━━━━━━╇━━━━━━━┩\n"
        "│ MyState │       │    3 │     - │\n"
        "│ Session │ u1    │    1 │ 1m15s │\n"
        "└─────────┴───────┴──────┴───────┘\n"
    )


def test_markup_and_control_characters_are_shown_literally() -> None:
    text = printed(state_table("S", "", {"[red]k[/]": "[bold]x[/]", "bell\x07": "\x1b[2J"}))
    assert "[red]k[/]" in text
    assert '"[bold]x[/]"' in text
    assert "bell\\u0007" in text
    assert '"\\u001b[2J"' in text
    assert "\x1b" not in text
    assert "\x07" not in text


def test_plain_forms() -> None:
    assert plain_value("text") == "text"
    assert plain_value({"a": [1, None]}) == '{"a":[1,null]}'
    assert plain_value(1.5) == "1.5"
    assert state_plain({"a": "x", "b": 2}) == "a\tx\nb\t2"
    assert list_plain([StateInfo("S", "u", 2, 1.5)]) == "S\tu\t2\t1.500"


def test_mode_defaults() -> None:
    assert choose_mode(None, terminal=True, single_value=True) is Mode.table
    assert choose_mode(None, terminal=False, single_value=True) is Mode.plain
    assert choose_mode(None, terminal=False, single_value=False) is Mode.json
    assert choose_mode(Mode.plain, terminal=True, single_value=False) is Mode.plain


def test_ttl_formatting() -> None:
    assert [format_ttl(t) for t in (None, 1.25, 75, 3725)] == ["-", "1.2s", "1m15s", "1h02m"]
