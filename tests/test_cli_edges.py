"""The CLI as newcomers and scripts meet it: each rough edge, run as the user runs it.

Every test here starts the installed ``qstate`` executable: in a pipe
(``subprocess``) or on a real terminal (a pty through ``pexpect``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
from typer.main import get_command

from qstate import StateRegistry
from qstate_cli.main import app

QSTATE = str(Path(sys.executable).parent / "qstate")
COMMANDS = sorted(get_command(app).commands)  # type: ignore[attr-defined]


def qstate(
    *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("QSTATE_URL", "EDITOR")}
    environment.update(env or {})
    return subprocess.run(
        [QSTATE, *args],
        cwd=cwd,
        env=environment,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bare_qstate_prints_a_short_usage_with_the_commands(tmp_path: Path) -> None:
    result = qstate(cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Usage: qstate")
    assert 10 < len(lines) < 40, "a short usage, several lines, not the whole help on one"
    for command in COMMANDS:
        assert any(line.split()[:1] == [command] for line in lines), command
    assert qstate("--url", f"file:{tmp_path}/s.db", cwd=tmp_path).returncode == 2
    assert os.listdir(tmp_path) == []


def test_global_options_work_anywhere_on_the_line(tmp_path: Path) -> None:
    url = f"file:{tmp_path}/state.db"
    assert qstate("set", "MyState", "step", "2", "--url", url, cwd=tmp_path).returncode == 0
    at_the_end = qstate("get", "MyState", "step", "--json", "--url", url, cwd=tmp_path)
    assert (at_the_end.returncode, json.loads(at_the_end.stdout)) == (0, 2)
    whole = qstate("get", "--url", url, "MyState", "-o", "plain", cwd=tmp_path)
    assert whole.stdout == "step\t2\n"
    listed = qstate("list", "--output", "json", "--url", url, cwd=tmp_path)
    assert json.loads(listed.stdout)[0]["state"] == "MyState"
    # update's own --json still takes the document
    updated = qstate("update", "MyState", "--json", '{"a": 1}', "--url", url, cwd=tmp_path)
    assert updated.returncode == 0, updated.stderr
    help_text = qstate("get", "--help", cwd=tmp_path).stdout
    for option in ("--json", "--output", "--url", "--no-color", "--debug"):
        assert option in help_text


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["wait", "--timeout", "-1", "S", "k=1"], "'--timeout'"),
        (["set", "--ttl", "abc", "S", "k", "1"], "'--ttl'"),
        (["--output", "xml", "list"], "'--output'"),
        (["list", "--output", "xml"], "'--output'"),
        (["watch", "--count", "0", "S"], "'--count'"),
    ],
)
def test_option_errors_name_the_option(tmp_path: Path, args: list[str], named: str) -> None:
    result = qstate("--url", f"file:{tmp_path}/s.db", *args, cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert named in line


def test_a_value_that_looks_like_json_must_parse(tmp_path: Path) -> None:
    url = f"file:{tmp_path}/s.db"
    result = qstate("--url", url, "set", "S", "k", "{bad", cwd=tmp_path)
    assert result.returncode == 2
    assert "--string" in result.stderr
    assert qstate("--url", url, "get", "S", "k", cwd=tmp_path).returncode == 1


def test_not_found_names_the_backend_and_where_its_url_came_from(tmp_path: Path) -> None:
    default = qstate("get", "MyState", cwd=tmp_path)
    assert default.returncode == 1
    assert "file:.qstate/state.db (the default" in default.stderr
    from_env = qstate(
        "get", "MyState", "k", cwd=tmp_path, env={"QSTATE_URL": f"file:{tmp_path}/e.db"}
    )
    assert f"file:{tmp_path}/e.db (from $QSTATE_URL)" in from_env.stderr
    (tmp_path / "qstate.toml").write_text('url = "file:conf.db"\n')
    configured = qstate("get", "MyState", cwd=tmp_path)
    assert f"(from {tmp_path / 'qstate.toml'})" in configured.stderr
    secret = "redis://:hunter2@127.0.0.1:1/0?timeout=0.5"  # noqa: S105
    explicit = qstate("--url", f"file:{tmp_path}/x.db", "get", "MyState", cwd=tmp_path)
    assert f"in file:{tmp_path}/x.db\n" in explicit.stderr, "given explicitly: no source"
    assert "hunter2" not in qstate("--url", secret, "get", "S", cwd=tmp_path).stderr


def test_edit_without_an_editor_or_a_terminal_is_a_clear_error(tmp_path: Path) -> None:
    url = f"file:{tmp_path}/s.db"
    qstate("--url", url, "set", "S", "k", "1", cwd=tmp_path)
    result = qstate("--url", url, "edit", "S", cwd=tmp_path, env={"VISUAL": "", "EDITOR": ""})
    assert result.returncode == 2
    assert "$EDITOR" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_memory_urls_are_refused_outside_the_shell(tmp_path: Path) -> None:
    for args in (["--url", "memory://", "set", "S", "k", "1"], ["--url", "memory://", "list"]):
        result = qstate(*args, cwd=tmp_path)
        assert result.returncode == 2
        assert "memory://" in result.stderr
        assert "shell" in result.stderr
    in_shell = qstate(
        "--url", "memory://", "shell", cwd=tmp_path, stdin="set S k 1\nget S k\n",
        env={"QSTATE_HISTFILE": "/dev/null"},
    )  # fmt: skip
    assert (in_shell.returncode, in_shell.stdout) == (0, "1\n")


def test_doctor_reports_a_bad_configuration(tmp_path: Path) -> None:
    result = qstate("--url", "nonsense://x", "--json", "doctor", cwd=tmp_path)
    assert result.returncode == 3
    report = json.loads(result.stdout)
    assert report["healthy"] is False
    assert "nonsense" in report["problem"]


def test_the_shell_takes_global_options_per_line_and_speaks_shell(tmp_path: Path) -> None:
    url = f"file:{tmp_path}/s.db"
    with StateRegistry(url) as registry:
        registry.state("A").set("k", "v")
    script = "--json get A k\nget A k\nget A k --output json\n--url file:other.db get A\nget A k\n"
    result = qstate(
        "--url", url, "shell", cwd=tmp_path, stdin=script, env={"QSTATE_HISTFILE": "/dev/null"}
    )
    assert result.stdout == '"v"\nv\n"v"\nv\n', "options last for their own line"
    assert result.returncode == 2
    assert "--url cannot change inside the shell" in result.stderr
    bad = qstate(
        "--url", url, "shell", cwd=tmp_path, stdin="get --bogus A\n",
        env={"QSTATE_HISTFILE": "/dev/null"},
    )  # fmt: skip
    assert "(see: help get)" in bad.stderr
    assert "qstate get --help" not in bad.stderr


# -- terminal safety ----------------------------------------------------------

NASTY = {
    "esc": "\x1b[2J",
    "osc": "\x1b]0;pwned\x07",
    "csi": "\x9b31m",
    "bidi": "\u202eevil",
    "lines": "one\ntwo",
    "tab": "a\tb",
}
RAW = ("\x1b[2J", "\x1b]0;", "\x1b[5m", "\x1b[1m", "\x07", "\x9b", "\u202e")
"""What the stored data would send to the terminal (qstate's own progress bar may use ESC)."""


@pytest.fixture
def nasty_url(tmp_path: Path) -> str:
    url = f"file:{tmp_path}/s.db"
    with StateRegistry(url) as registry:
        registry.state("Evil").update({**NASTY, "key\x1b]0;x\x07\u202e\n": 1})
        registry.state("Evil", scope="user-42").set("k\u202e", "v\x1b[5m")
    return url


def _on_a_terminal(*args: str) -> str:
    """What ``qstate`` writes to a real terminal (a pty), colour off."""
    output = pexpect.run(
        QSTATE,
        args=list(args),
        env={**os.environ, "TERM": "xterm-256color", "NO_COLOR": "1", "COLUMNS": "200"},
        encoding="utf-8",
        timeout=60,
    )
    assert isinstance(output, str)
    return output


@pytest.mark.parametrize(
    "args",
    [
        ["get", "Evil"],
        ["-o", "json", "get", "Evil"],
        ["-o", "plain", "get", "Evil"],
        ["-o", "plain", "get", "Evil", "osc"],
        ["get", "Evil", "csi"],
        ["-o", "json", "get", "Evil", "bidi"],
        ["list"],
        ["-o", "json", "list"],
        ["-o", "plain", "list"],
        ["get", "--scope", "user-42", "Evil"],
        ["export"],
        ["get", "Evil", "nope\x1b]0;x\x07\u202e"],
        ["get", "--scope", "sc\x9bope\u202e\n\x1b[1m", "Evil"],
        ["set", "--scope", "sc\x9bope\u202e", "Evil", "k", "v"],
    ],
)
def test_no_control_character_reaches_the_terminal(nasty_url: str, args: list[str]) -> None:
    shown = _on_a_terminal("--url", nasty_url, *args)
    for char in RAW:
        assert char not in shown, (args, char, shown)
    assert "Traceback" not in shown


def test_escaped_json_is_still_the_same_data(nasty_url: str, tmp_path: Path) -> None:
    piped = qstate("--url", nasty_url, "--json", "get", "Evil", cwd=tmp_path)
    assert "\u202e" not in piped.stdout
    assert "\x9b" not in piped.stdout
    assert json.loads(piped.stdout)["csi"] == NASTY["csi"]
    exact = qstate("--url", nasty_url, "get", "Evil", "osc", cwd=tmp_path)
    assert exact.stdout == NASTY["osc"] + "\n", "a bare value in a pipe stays exact"


def test_key_tab_value_lines_stay_one_line_per_key_in_a_pipe(
    nasty_url: str, tmp_path: Path
) -> None:
    plain = qstate("--url", nasty_url, "-o", "plain", "get", "Evil", cwd=tmp_path)
    lines = plain.stdout.splitlines()
    assert len(lines) == len(NASTY) + 1
    assert "lines\tone\\ntwo" in lines
    assert "tab\ta\\tb" in lines
    listed = qstate("--url", nasty_url, "-o", "plain", "list", cwd=tmp_path)
    assert len(listed.stdout.splitlines()) == 2


# -- set-up and order ---------------------------------------------------------


def test_the_try_command_installs_only_what_running_the_tool_needs() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    try_command = readme.split("<!-- try-command -->", 1)[1].split("```sh\n", 1)[1]
    install = try_command.split("&&")[1]
    assert install.split() == [".venv/bin/pip", "install", "-e", "."], install


def test_a_refused_connection_says_nothing_was_sent(tmp_path: Path) -> None:
    url = "redis://127.0.0.1:1/0?timeout=0.5"  # nothing listens on port 1
    for args in (["get", "S", "k"], ["set", "S", "k", "1"]):
        result = qstate("--url", url, *args, cwd=tmp_path)
        assert result.returncode == 3
        assert "nothing was sent" in result.stderr
        assert "may not have been applied" not in result.stderr
