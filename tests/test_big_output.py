"""Big states and many states print fast and small: a table that fits the
terminal, keys chosen with --limit/--prefix, JSON and plain text streamed.

Small sizes only (performance lives in bench/bench_scale.py): what is tested
is the shape of the output, run as the user runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from qstate import StateInfo, StateRegistry
from qstate_cli import render
from qstate_cli.render import (
    json_text,
    list_json,
    list_json_chunks,
    list_plain,
    list_plain_chunks,
    state_json_chunks,
    state_plain,
    state_plain_chunks,
)

QSTATE = str(Path(sys.executable).parent / "qstate")
KEYS = 200


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"file:{tmp_path}/s.db"
    with StateRegistry(url) as registry:
        registry.state("Big").update({f"k{i:03d}": i for i in range(KEYS)})
        for i in range(40):
            registry.state("Many", scope=f"u{i:02d}").set("k", i)
    return url


def qstate(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "QSTATE_URL"}
    return subprocess.run(
        [QSTATE, "--url", url, *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def on_a_terminal(*args: str, rows: int = 24) -> list[str]:
    """The lines ``qstate`` writes to a real terminal of ``rows`` x 100, colour off."""
    child = pexpect.spawn(
        QSTATE,
        list(args),
        env={**os.environ, "TERM": "xterm-256color", "NO_COLOR": "1"},
        encoding="utf-8",
        dimensions=(rows, 100),
        timeout=60,
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return [line.rstrip() for line in str(child.before).splitlines()]


def test_a_big_state_on_a_terminal_shows_the_rows_that_fit(url: str) -> None:
    lines = on_a_terminal("--url", url, "get", "Big", rows=24)
    rows = [line for line in lines if line.startswith("│ k")]
    assert len(lines) < 24, "the table and its last line fit the screen"
    assert len(rows) == 24 - 7
    assert rows[0].split()[1:4] == ["k000", "│", "0"]
    assert lines[-1] == f"… {KEYS - len(rows)} more keys: --limit N, --prefix P, --json, or " + (
        "--output plain | less"
    )


def test_many_states_on_a_terminal_show_the_rows_that_fit(url: str) -> None:
    lines = on_a_terminal("--url", url, "list", rows=20)
    assert len([line for line in lines if line.startswith("│ ")]) == 20 - 6
    assert lines[-1].startswith(f"… {41 - 14} more states: ")


def test_a_small_state_on_a_terminal_is_shown_whole(url: str) -> None:
    lines = on_a_terminal("--url", url, "get", "Many", "--scope", "u01")
    assert not any(line.startswith("…") for line in lines)


def test_limit_and_prefix_choose_the_keys(url: str) -> None:
    first = qstate("get", "Big", "--limit", "3", url=url)
    assert (first.returncode, json.loads(first.stdout)) == (0, {"k000": 0, "k001": 1, "k002": 2})
    prefixed = qstate("get", "Big", "--prefix", "k19", "-o", "plain", url=url)
    assert prefixed.stdout == "".join(f"k{i}\t{i}\n" for i in range(190, 200))
    both = qstate("get", "Big", "-p", "k1", "-n", "2", "--json", url=url)
    assert json.loads(both.stdout) == {"k100": 100, "k101": 101}
    table = qstate("get", "Big", "--limit", "2", "-o", "table", url=url).stdout.splitlines()
    assert [line.split()[1] for line in table if line.startswith("│")] == ["k000", "k001"]
    assert table[-1].startswith(f"… {KEYS - 2} more keys: ")
    none = qstate("get", "Big", "--prefix", "zz", url=url)
    assert (none.returncode, none.stdout) == (1, "")
    assert "no key of state Big starts with 'zz'" in none.stderr
    with_key = qstate("get", "Big", "k001", "--limit", "1", url=url)
    assert with_key.returncode == 2
    assert "give no KEY" in with_key.stderr


def test_whole_output_in_a_pipe_is_every_key(url: str) -> None:
    whole = qstate("get", "Big", url=url)
    assert json.loads(whole.stdout) == {f"k{i:03d}": i for i in range(KEYS)}
    listed = qstate("list", "--json", url=url)
    assert len(json.loads(listed.stdout)) == 41


@pytest.mark.parametrize("batch", [1, 2, 3, 1000])
def test_streamed_text_is_the_whole_document_text(
    batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pieces written one by one add up to exactly what one dump would print."""
    monkeypatch.setattr(render, "BATCH", batch)
    nasty = 'x\u202e\x9b\n\t"é'
    data = {
        "a": 1,
        nasty: nasty,
        "list": [1, {"c": [], "d": {}}],
        "deep": {"d": {"e": [1, 2.5, None, True]}},
        "none": None,
        "float": 1.5,
        "big": 2**63 - 1,
    }
    for size in range(len(data) + 1):
        part = dict(list(data.items())[:size])
        assert "".join(state_json_chunks(part.items())) == json_text(part)
        assert "".join(state_plain_chunks(part.items())) == (
            state_plain(part) + "\n" if part else ""
        )
    infos = [StateInfo("S", nasty, 2, 1.5), StateInfo("T", "", 3, None), StateInfo("é", "x", 1, 0)]
    for size in range(len(infos) + 1):
        part_infos = infos[:size]
        assert "".join(list_json_chunks(part_infos)) == json_text(list_json(part_infos))
        assert "".join(list_plain_chunks(part_infos)) == (
            list_plain(part_infos) + "\n" if part_infos else ""
        )


def test_a_reader_that_goes_away_is_not_an_error(tmp_path: Path) -> None:
    """``qstate get Huge | head -c 10``: streamed output stops quietly, exit 0."""
    url = f"file:{tmp_path}/huge.db"
    with StateRegistry(url) as registry:  # about 600 KB of JSON, more than a pipe holds
        registry.state("Huge").update({f"k{i}": "x" * 100 for i in range(5000)})
    reader = subprocess.Popen(
        [QSTATE, "--url", url, "get", "Huge"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert reader.stdout is not None
    head = reader.stdout.read(10)
    reader.stdout.close()
    _, stderr = reader.communicate(timeout=60)
    assert (reader.returncode, stderr, head[:1]) == (0, b"", b"{")
