"""Rendering: rich tables printed at a fixed width without colour, and plain text."""

from __future__ import annotations

import io
import json
import re

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from qstate import Change, StateInfo
from qstate_cli import render
from qstate_cli.render import (
    Mode,
    choose_mode,
    differences_table,
    format_ttl,
    history_table,
    list_plain,
    list_table,
    origin_label,
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


def test_history_table_one_row_per_changed_key() -> None:
    changes = [
        Change(1, "2026-11-30T05:42:21.123Z", [{"key": "step", "new": 1}]),
        Change(
            2, "2026-11-30T05:42:22.000Z", [{"key": "step", "old": 1}, {"key": "x\n", "old": "a"}]
        ),
    ]
    assert printed(history_table("Job", "u1", changes)) == (
        "Job [u1]: history                                          \n"
        "┏━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━┳━━━━━━━━━━━━━━━━━┓\n"
        "┃ rev ┃ time                     ┃ key  ┃ old → new       ┃\n"
        "┡━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━╇━━━━━━━━━━━━━━━━━┩\n"
        "│   1 │ 2026-11-30 05:42:21.123Z │ step │ (none) → 1      │\n"
        "├─────┼──────────────────────────┼──────┼─────────────────┤\n"
        "│   2 │ 2026-11-30 05:42:22.000Z │ step │ 1 → (removed)   │\n"
        '│     │                          │ x\\n  │ "a" → (removed) │\n'
        "└─────┴──────────────────────────┴──────┴─────────────────┘\n"
    ), "no origin column when no change has one; controls escaped"


def test_origin_is_shown_compactly() -> None:
    assert origin_label(None) == ""
    assert origin_label({"host": "w1", "pid": 42, "task": "pay"}) == "pay@w1:42"
    assert origin_label({"host": "w1", "pid": 42}) == "w1:42"
    assert origin_label({"task": "pay"}) == "pay"
    assert origin_label({"who": "cron"}) == '{"who":"cron"}'
    assert origin_label({"host": "w\x1b[2J", "pid": 1}) == "w\\u001b[2J:1"
    change = Change(3, "2026-11-30T05:42:21.123Z", [{"key": "k", "new": 1}], {"host": "w1"})
    shown = printed(history_table("Job", "", [change]))
    assert "origin" in shown
    assert "│ w1 " in shown


def test_differences_table() -> None:
    absent = object()
    rows = [("a", 2, 1), ("b", 3, absent), ("c", absent, [1])]
    assert printed(differences_table("Job", "", 1, rows, absent)) == (
        "Job: now → at revision 1          \n"
        "┏━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━━━━━┓\n"
        "┃ key ┃ now      ┃ at revision 1 ┃\n"
        "┡━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━━━━━┩\n"
        "│ a   │ 2        │ 1             │\n"
        "│ b   │ 3        │ (absent)      │\n"
        "│ c   │ (absent) │ [1]           │\n"
        "└─────┴──────────┴───────────────┘\n"
    )


_ESCAPABLE = (
    st.text(st.sampled_from(["a", " ", "{", "}", "\x00", "\n", "\x1b", "\x7f"]))  # ASCII
    | st.text(st.sampled_from(["a", "é", "\x7f", "\x9b", "\u202e", "\u2028"]))
    | st.text()
)
"""Text for the fast paths (printable ASCII) and the patterns they skip."""


@given(_ESCAPABLE)
def test_plain_ascii_skips_the_control_pattern_only_when_it_would_change_nothing(
    text: str,
) -> None:
    # The fast paths (printable ASCII) must agree with the patterns they skip.
    assert render.escape_controls(text) == re.sub(render._CONTROLS, render._escape, text)
    as_json = json.dumps(text, ensure_ascii=False)
    assert render._escaped_json(as_json) == re.sub(
        render._CONTROLS_JSON_LEAVES, render._escape, as_json
    )
    assert json.loads(render._escaped_json(as_json)) == text
