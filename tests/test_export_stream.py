"""``qstate export`` writes its document as it reads the states.

What is pinned: the bytes are those of the document built whole, the memory
does not grow with the number of states, and a failure part way never leaves
a half-written file or a whole-looking document. Small sizes only.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest
from typer.testing import CliRunner

from qstate import StateRegistry
from qstate.transfer import export_states, stream_export
from qstate_cli import render
from qstate_cli.main import app
from qstate_cli.render import export_json_chunks, json_text

QSTATE = str(Path(sys.executable).parent / "qstate")
NASTY = 'x\u202e\x9b\n\t"é'


@pytest.fixture(params=["file", pytest.param("redis", marks=pytest.mark.redis)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "file":
        return f"file:{tmp_path}/state.db"
    redis_url: str = request.getfixturevalue("redis_url")
    return redis_url


def _export(url: str, *args: str) -> Any:
    return CliRunner().invoke(app, ["--url", url, "export", *args])


@pytest.mark.parametrize("batch", [1, 2, 3, 1000])
def test_streamed_export_text_is_the_whole_document_text(
    batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render, "BATCH", batch)
    states: list[dict[str, Any]] = [
        {"state": "S", "scope": "é ü", "ttl": 12.5, "data": {"a": 1, NASTY: NASTY}},
        {"state": "T", "scope": "", "ttl": None, "data": {"l": [1, {"c": [], "d": {}}]}},
        {"state": "U", "scope": "u1", "ttl": 3.0, "data": {"deep": {"d": {"e": [2.5, None]}}}},
        {"data": {"a": 1, "b": {}, "c": {"x": 1}}, "after": [1], "empty": {}, "small": {"y": 2}},
    ]
    for size in range(len(states) + 1):
        head = {"qstate_export": 1}
        whole = json_text({**head, "states": states[:size]})
        assert "".join(export_json_chunks(head, states[:size])) == whole


@pytest.mark.parametrize(
    "value",
    [None, True, False, 0, -1, 2**63 - 1, 1.5, -0.0, 1e300, 5e-324, float("nan"),
     float("inf"), float("-inf"), "", NASTY, "\x00\u2028 \U0001f600"],
)  # fmt: skip
def test_a_scalar_is_written_as_json_dumps_writes_it(value: object) -> None:
    assert render._scalar_json(value) == json.dumps(value, ensure_ascii=False)


@pytest.mark.parametrize("batch", [2, 1000])
def test_cli_export_is_byte_for_byte_the_library_document(
    url: str, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render, "BATCH", batch)
    with StateRegistry(url) as registry:
        registry.state("Big").update({f"k{i:02d}": i * 1.5 for i in range(25)})
        registry.state("Big", scope="é ü").update(nested={"a": [1, None, {NASTY: True}]})
        registry.state("Small").set("s", NASTY)
        registry.state("Other", scope="u1").update(empty={}, none=None, big=2**63 - 1)
        whole = json_text(export_states(registry).document())
        assert [entry.state for entry in stream_export(registry, ["Small"])] == ["Small"]
    result = _export(url)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == whole + "\n"


def test_ttl_is_written_as_the_whole_document_writes_it(url: str) -> None:
    with StateRegistry(url) as registry:
        registry.state("Session", ttl=300).set("token", "abc")
    result = _export(url)
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert 250 < document["states"][0]["ttl"] <= 300
    assert result.stdout == json_text(document) + "\n"


# -- memory -------------------------------------------------------------------

KEYS, VALUE = 20, "v" * 1000
STATE_SIZE = KEYS * len(VALUE)
"""About what one state takes as text (each state is this big)."""

_PEAK = """
import sys, tracemalloc
from qstate import StateRegistry
from qstate.transfer import export_states
from qstate_cli.main import run
from qstate_cli.render import json_text
url, how = sys.argv[1], sys.argv[2]
registry = StateRegistry(url)
registry.list_states()  # connect and import before measuring
tracemalloc.start()
if how == "cli":
    assert run(["--url", url, "export"]) == 0
else:
    sys.stdout.write(json_text(export_states(registry).document()))
print(tracemalloc.get_traced_memory()[1], file=sys.stderr)
"""


def _peak(url: str, how: str) -> int:
    """Peak bytes the Python heap grew by while exporting, in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, url, how],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=True,
    )
    return int(done.stderr.split()[-1])


def _add_states(url: str, names: range) -> None:
    with StateRegistry(url) as registry:
        for i in names:
            registry.state(f"S{i:03d}").update({f"k{j}": VALUE + str(i) for j in range(KEYS)})


def test_export_memory_does_not_grow_with_the_number_of_states(url: str) -> None:
    """Four times the states: the whole document's peak grows by the data, the
    stream's by less than one state (the listing and noise)."""
    _add_states(url, range(10))
    few = {how: _peak(url, how) for how in ("whole", "cli")}
    _add_states(url, range(10, 40))
    many = {how: _peak(url, how) for how in ("whole", "cli")}
    added = 30 * STATE_SIZE
    assert many["whole"] - few["whole"] > added, "the measure sees the data held whole"
    assert many["cli"] - few["cli"] < STATE_SIZE, (few, many)


# -- failures part way ----------------------------------------------------------


@pytest.fixture
def half_readable(tmp_path: Path) -> str:
    """A file store whose last state holds text qstate did not write (after
    enough data that some of the export reaches the output before it)."""
    path = tmp_path / "state.db"
    with StateRegistry(f"file:{path}") as registry:
        for name in ("Alpha", "Beta"):
            registry.state(name).update({f"k{i}": "x" * 1000 for i in range(60)})
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO qstate_values (state, scope, key, value) VALUES ('Zulu', '', 'k', '{no')"
        )
    conn.close()
    return f"file:{path}"


def _qstate(*args: str, stdout: Any) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "QSTATE_URL"}
    return subprocess.run(
        [QSTATE, *args], stdout=stdout, stderr=subprocess.PIPE, text=True, env=env, timeout=60
    )


@pytest.mark.parametrize("mode", ["w", "a"])
def test_a_failed_export_leaves_the_file_as_it_was(
    half_readable: str, tmp_path: Path, mode: str
) -> None:
    dump = tmp_path / "dump.json"
    dump.write_text("kept\n")
    with dump.open(mode) as out:  # `> dump.json` / `>> dump.json`
        result = _qstate("--url", half_readable, "export", stdout=out)
    assert result.returncode == 3
    assert "Zulu" in result.stderr
    assert "--skip-unreadable" in result.stderr
    assert dump.read_text() == ("" if mode == "w" else "kept\n")


def test_a_failed_export_into_a_pipe_is_no_json_document(half_readable: str) -> None:
    result = _qstate("--url", half_readable, "export", stdout=subprocess.PIPE)
    assert result.returncode == 3
    assert result.stdout.startswith('{\n  "qstate_export": 1,'), "written as it was read"
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout)


def test_skip_unreadable_exports_the_rest(half_readable: str) -> None:
    result = _qstate("--url", half_readable, "export", "--skip-unreadable", stdout=subprocess.PIPE)
    assert result.returncode == 0
    assert [s["state"] for s in json.loads(result.stdout)["states"]] == ["Alpha", "Beta"]
    assert result.stderr == "qstate: warning: skipped unreadable data: Zulu\n"


def test_an_export_failing_at_its_first_state_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateRegistry(f"file:{path}") as registry:
        registry.state("Zulu").set("k", 1)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE qstate_values SET value = '{no'")
    conn.close()
    result = _qstate("--url", f"file:{path}", "export", stdout=subprocess.PIPE)
    assert (result.returncode, result.stdout) == (3, "")


def test_the_progress_bar_leaves_the_data_in_the_file(tmp_path: Path) -> None:
    """With stderr on a terminal the bar is shown; the data still goes to the file."""
    url = f"file:{tmp_path}/state.db"
    _add_states(url, range(3))
    dump = tmp_path / "dump.json"
    child = pexpect.spawn(
        "/bin/sh",
        ["-c", f'"{QSTATE}" --url "{url}" export > "{dump}"'],
        env={**os.environ, "TERM": "xterm-256color", "NO_COLOR": "1"},
        encoding="utf-8",
        timeout=60,
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert '"qstate_export"' not in str(child.before)
    piped = _qstate("--url", url, "export", stdout=subprocess.PIPE)
    assert dump.read_text() == piped.stdout
