"""Property-based tests (hypothesis): values, names and CLI arguments, arbitrary ones."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from qstate import MAX_INTEGER, InvalidNameError, StateRegistry, _keys
from qstate._keys import MAX_SCOPE
from qstate_cli.main import invoke

VALUE_EXAMPLES, NAME_EXAMPLES, CLI_EXAMPLES = 200, 200, 300

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_INTEGER, MAX_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def examples(count: int) -> settings:
    """``count`` examples, no deadline (backends do I/O), fixtures shared by examples."""
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


@pytest.fixture
def registry(backend_url: str) -> Any:
    with StateRegistry(backend_url) as registry:
        yield registry


@examples(VALUE_EXAMPLES)
@given(value=json_values)
def test_any_json_value_round_trips_exactly(registry: StateRegistry, value: Any) -> None:
    state = registry.state("Prop")
    state.set("v", value)
    got = state.get("v")
    # json.dumps tells 1 from 1.0 from True and 0.0 from -0.0: exact, type included
    assert json.dumps(got) == json.dumps(value)
    assert json.dumps(state.get_all()) == json.dumps({"v": value})


names = st.one_of(st.text(max_size=12), st.sampled_from(["MyState", "a.b-c_1", "_x", "A" * 129]))
scopes = st.one_of(st.none(), st.text(max_size=12), st.integers(-5, 5), st.booleans())
keys = st.text(max_size=12)


def _scope_key(scope: Any) -> str:
    return "" if scope is None else str(scope)


@examples(NAME_EXAMPLES)
@given(entries=st.lists(st.tuples(names, scopes, keys), min_size=1, max_size=6))
def test_any_name_scope_key_is_stored_exactly_or_refused(
    registry: StateRegistry, backend_url: str, entries: list[tuple[Any, Any, Any]]
) -> None:
    model: dict[tuple[str, str], dict[str, int]] = {}
    for number, (name, scope, key) in enumerate(entries):
        try:
            state = registry.state(name, scope=scope)
            state.set(key, number)
        except InvalidNameError:
            continue
        model.setdefault((name, _scope_key(scope)), {})[key] = number
    for (name, scope), expected in model.items():
        assert registry.state(name, scope=scope or None).get_all() == expected, (
            "each (name, scope) is its own document: no two map to one"
        )
    for name, scope in model:
        registry.state(name, scope=scope or None).clear()
    if backend_url.startswith("file:"):
        directory = Path(backend_url[len("file:") :]).parent
        assert not directory.exists() or all(
            p.name.startswith("state.db") for p in directory.iterdir()
        ), "names never become files"


VOCABULARY = [
    "list", "get", "set", "update", "delete", "clear", "incr", "export", "import", "doctor",
    "MyState", "step", "1", "-1", "[1", "{}", '{"a": 1}', "k=v", "a=[1,2]", "-", "--",
    "--scope", "-s", "--ttl", "0", "1e9", "--json", "--string", "--yes", "--prefix",
    "-o", "table", "json", "plain", "--replace", "--dry-run", "--help", "--debug",
    "--url", "memory://", "nowhere", "--no-color", "--version", "--bogus",
]  # fmt: skip
INTERACTIVE = {"watch", "edit", "shell", "wait"}  # they wait on a person or on time


@examples(CLI_EXAMPLES)
@given(args=st.lists(st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=10)), max_size=7))
def test_any_command_line_exits_with_a_documented_code(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    if INTERACTIVE & set(args):
        return
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"qstate_export": 1, "states": []}'))
    code = invoke(["--url", f"file:{tmp_path}/fuzz.db", *args])
    captured = capsys.readouterr()
    assert code in (0, 1, 2, 3, 4, 5), (args, captured.err)
    if "--debug" not in args:  # --debug (anywhere on the line) asks for tracebacks
        assert "Traceback" not in captured.err
    assert "internal error" not in captured.err, (args, captured.err)


@given(
    st.text(st.sampled_from(["a", " ", "{", "}", "\x00", "\n", "\x7f"]))  # ASCII
    | st.text(st.sampled_from(["a", "é", "\x7f", "\x9b", "\u202e", "\u2028"]))
    | st.text()
)
def test_a_scope_is_refused_exactly_when_it_holds_a_control_or_a_brace(scope: str) -> None:
    # check_scope skips the pattern for printable ASCII without braces: the two agree.
    assume(0 < len(scope) <= MAX_SCOPE)
    if re.search(_keys._CONTROL, scope):
        with pytest.raises(InvalidNameError, match="control characters"):
            _keys.check_scope(scope)
    else:
        assert _keys.check_scope(scope) == scope
