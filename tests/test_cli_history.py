"""``qstate history`` and ``qstate restore``, run as a user runs them.

The executable in a pipe (``subprocess``) on a file and on Redis, memory through
a piped shell (memory:// lives only as long as one process), and the
interactive shell in a real terminal (a pty through ``pexpect``).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from qstate import StateRegistry, acting_as
from qstate_cli.session import Session
from qstate_cli.shell.completer import ShellCompleter
from qstate_cli.shell.grammar import Current
from qstate_cli.shell.loop import Shell
from qstate_cli.shell.syntax import command_syntax

QSTATE = str(Path(sys.executable).parent / "qstate")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][AB012]")


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``qstate ARGS`` in a pipe: stdin, stdout and stderr are not terminals."""
    environment = {k: v for k, v in os.environ.items() if k != "QSTATE_URL"}
    environment.update(env or {})
    return subprocess.run(
        [QSTATE, *args], cwd=cwd, env=environment, input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


class Cli:
    """The executable on one backend, with helpers for what the tests read back."""

    def __init__(self, url: str, cwd: Path) -> None:
        self.url, self.cwd = url, cwd

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run("--url", self.url, *args, cwd=self.cwd, stdin=stdin)

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args))

    def revs(self, *args: str) -> list[int]:
        return [change["rev"] for change in self.json("history", *args)]


@pytest.fixture
def cli(url: str, tmp_path: Path) -> Cli:
    return Cli(url, tmp_path)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("qstate: error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


# -- history --------------------------------------------------------------------


def test_history_in_a_pipe_is_one_json_array_of_the_changes(cli: Cli) -> None:
    cli.ok("set", "Job", "a", "1")
    cli.ok("update", "Job", "b=2", "c=x")
    cli.ok("delete", "Job", "a")
    cli.ok("clear", "--yes", "Job")
    result = cli("history", "Job")
    assert (result.returncode, result.stderr) == (0, "")
    changes = json.loads(result.stdout)
    assert [c["rev"] for c in changes] == [1, 2, 3, 4]
    assert all(c["state"] == "Job" and c["scope"] == "" for c in changes)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", c["time"]) for c in changes)
    assert [c["changes"] for c in changes] == [
        [{"key": "a", "new": 1}],
        [{"key": "b", "new": 2}, {"key": "c", "new": "x"}],
        [{"key": "a", "old": 1}],
        [{"key": "b", "old": 2}, {"key": "c", "old": "x"}],  # a clear lists every key
    ]
    assert cli.json("--json", "history", "Job") == changes, "--json: the same document"
    plain = cli.ok("history", "Job", "--output", "plain").splitlines()
    assert [json.loads(line) for line in plain] == changes, "plain: one change per line"


def test_history_says_who_made_each_change(cli: Cli, tmp_path: Path) -> None:
    """Every change names its host and pid, and the task: the command for the CLI's own."""
    cli.ok("set", "Job", "a", "1")
    with StateRegistry(cli.url) as registry, acting_as("checkout.pay"):
        registry.state("Job").set("a", 2)
    first, second = cli.json("history", "Job")
    host = socket.gethostname()
    assert first["origin"]["host"] == host
    assert isinstance(first["origin"]["pid"], int)
    assert first["origin"]["task"] == "qstate set"
    assert second["origin"] == {"host": host, "pid": os.getpid(), "task": "checkout.pay"}
    table = pexpect.run(
        f"{QSTATE} --url {cli.url} history Job", cwd=str(tmp_path),
        env={**os.environ, "TERM": "xterm", "NO_COLOR": "1", "COLUMNS": "160"},
    ).decode()  # fmt: skip
    assert "┃ origin" in table, "on a terminal: a table"
    assert f"checkout.pay@{host}:{os.getpid()}" in table
    assert f"qstate set@{host}:{first['origin']['pid']}" in table


def test_history_limit_and_since(cli: Cli) -> None:
    for value in range(1, 6):
        cli.ok("set", "Job", "n", str(value))
    assert cli.revs("Job") == [1, 2, 3, 4, 5]
    assert cli.revs("Job", "--limit", "2") == [4, 5], "the last N"
    assert cli.revs("Job", "-n", "0") == []
    assert cli.revs("Job", "--since", "3") == [4, 5]
    assert cli.revs("Job", "--since", "1", "--limit", "1") == [5]
    assert cli.revs("Job", "--since", "5") == []
    assert cli.revs("Job", "--since", "9") == []
    assert cli.revs("Never") == [], "a state never written: no changes, not an error"


def test_history_of_a_scope_is_that_scope_s_alone(cli: Cli) -> None:
    cli.ok("set", "--scope", "u1", "Job", "k", "1")
    cli.ok("set", "Job", "k", "2")
    cli.ok("set", "Job", "k", "3")
    scoped = cli.json("history", "--scope", "u1", "Job")
    assert [(c["scope"], c["rev"], c["changes"]) for c in scoped] == [
        ("u1", 1, [{"key": "k", "new": 1}])
    ]
    assert cli.revs("Job") == [1, 2]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["history", "Job", "--since", "-1"], "--since"),
        (["history", "Job", "--limit", "-1"], "--limit"),
        (["restore", "Job", "--to", "-1", "--yes"], "--to"),
        (["restore", "Job", "--to", "one", "--yes"], "--to"),
        (["restore", "Job", "--yes"], "--to"),
    ],
)
def test_bad_numbers_are_a_clean_usage_error(tmp_path: Path, args: list[str], option: str) -> None:
    cli = Cli(f"file:{tmp_path}/state.db", tmp_path)
    cli.ok("set", "Job", "k", "1")
    result = cli(*args)
    assert result.returncode == 2
    assert option in one_error_line(result)
    assert cli.json("get", "Job") == {"k": 1}
    assert cli.revs("Job") == [1]


# -- restore --------------------------------------------------------------------


def test_restore_round_trip(cli: Cli) -> None:
    cli.ok("set", "--scope", "u1", "Job", "a", "1")  # revision 1
    cli.ok("set", "--scope", "u1", "Job", "a", "2")  # 2
    cli.ok("update", "--scope", "u1", "Job", "b=3", "tags=[1]")  # 3
    cli.ok("set", "Job", "other", "scope")  # another document: never touched
    result = cli("restore", "--scope", "u1", "Job", "--to", "1", "--yes")
    assert (result.returncode, result.stdout) == (0, ""), result.stderr
    assert result.stderr == "restored Job [u1] to revision 1, now revision 4\n"
    assert cli.json("get", "--scope", "u1", "Job") == {"a": 1}
    latest = cli.json("history", "--scope", "u1", "Job", "--since", "3")
    assert [c["rev"] for c in latest] == [4], "the restore is a new revision"
    assert sorted(latest[0]["changes"], key=lambda c: c["key"]) == [
        {"key": "a", "old": 2, "new": 1},
        {"key": "b", "old": 3},
        {"key": "tags", "old": [1]},
    ]
    assert cli.revs("--scope", "u1", "Job") == [1, 2, 3, 4], "nothing rewritten in the past"
    restored = cli.json("--json", "restore", "-s", "u1", "Job", "--to", "3", "--yes")
    assert restored == {
        "state": "Job", "scope": "u1", "restored_to": 3, "rev": 5,
        "data": {"a": 2, "b": 3, "tags": [1]},
    }  # fmt: skip
    assert cli.json("get", "--scope", "u1", "Job") == {"a": 2, "b": 3, "tags": [1]}
    assert cli.json("get", "Job") == {"other": "scope"}


def test_restore_to_zero_removes_the_state(cli: Cli) -> None:
    cli.ok("update", "Job", "a=1", "b=2")
    assert cli("restore", "Job", "--to", "0", "--yes").returncode == 0
    assert cli("get", "Job").returncode == 1, "revision 0 is the state before its first change"


def test_restore_in_a_pipe_without_yes_refuses_and_changes_nothing(cli: Cli) -> None:
    cli.ok("set", "Job", "a", "1")
    cli.ok("set", "Job", "a", "2")
    result = cli("restore", "Job", "--to", "1", stdin="y\n")
    assert result.returncode == 5, "stdin is not a terminal: nobody can confirm"
    assert "pass --yes" in one_error_line(result)
    assert result.stdout == ""
    assert cli.json("get", "Job") == {"a": 2}
    assert cli.revs("Job") == [1, 2]


def test_restore_ahead_of_the_latest_revision_is_refused(cli: Cli) -> None:
    cli.ok("set", "Job", "a", "1")
    cli.ok("set", "Job", "a", "2")
    for extra in (["--yes"], []):  # the library's check, and the question's own
        result = cli("restore", "Job", "--to", "3", *extra)
        assert result.returncode == 2, result.stderr
        assert "ahead" in one_error_line(result)
    assert cli.json("get", "Job") == {"a": 2}
    assert cli.revs("Job") == [1, 2]
    empty = cli("restore", "Never", "--to", "1", "--yes")
    assert empty.returncode == 2
    one_error_line(empty)


def test_restore_beyond_the_kept_log_is_refused(tmp_path: Path) -> None:
    """The log keeps the last 1,000 or so changes: revision 1 of 1,100 is gone."""
    url = f"file:{tmp_path}/state.db"
    with StateRegistry(url) as registry:
        state = registry.state("Job")
        for value in range(1100):
            state.set("n", value)
        oldest = state.history()[0].rev
    assert oldest > 2
    cli = Cli(url, tmp_path)
    for extra in (["--yes"], []):  # the library's check, and the question's own
        result = cli("restore", "Job", "--to", "1", *extra)
        assert result.returncode == 4, result.stderr
        assert "revision 1" in one_error_line(result)
    assert cli.json("get", "Job") == {"n": 1099}
    assert cli.revs("Job", "--since", "1099") == [1100]
    assert cli("restore", "Job", "--to", str(oldest), "--yes").returncode == 0


# -- memory, in a piped shell ------------------------------------------------------


def test_history_and_restore_on_memory_in_a_piped_shell(tmp_path: Path) -> None:
    script = (
        "use Job\nset a 1\nset a 2\nupdate b=3\nhistory --limit 2\n"
        "restore --to 1 --yes\nget\nhistory --since 3\n"
    )
    result = run("--url", "memory://", "shell", cwd=tmp_path, stdin=script)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "restored Job to revision 1, now revision 4\n"
    decoder, text, documents = json.JSONDecoder(), result.stdout, []
    while text.strip():  # update, history, get and history each print one document
        document, end = decoder.raw_decode(text.lstrip())
        documents.append(document)
        text = text.lstrip()[end:]
    _, limited, got, latest = documents
    assert [c["rev"] for c in limited] == [2, 3]
    assert got == {"a": 1}
    assert [(c["rev"], len(c["changes"])) for c in latest] == [(4, 2)]


# -- completion --------------------------------------------------------------------


def test_shell_and_bash_completion_know_both_commands(tmp_path: Path) -> None:
    url = f"file:{tmp_path}/state.db"
    with StateRegistry(url) as registry:
        registry.state("Job").set("k", 1)
    shell = Shell(Session(url=url), Current())

    def completions(text: str) -> list[str]:
        completer = ShellCompleter(shell.commands, shell.catalog, lambda: shell.current)
        return [c.text for c in completer.get_completions(Document(text), CompleteEvent())]

    assert completions("h") == ["help", "history"]
    assert completions("re") == ["restore"]
    assert completions("history ") == ["Job"]
    assert completions("restore --to ") == [], "a revision, not a state name"
    assert {"--limit", "--since", "--scope"} <= set(completions("history --"))
    shell.current = Current("Job")
    assert {"--to", "--yes"} <= set(completions("restore --"))
    assert completions("history ") == [], "history takes no key"
    restore = shell.commands["restore"]
    assert command_syntax("restore", restore, implicit_state=True) == (
        "restore --to REV [--scope SCOPE] [--yes]"
    ), "the toolbar: a required option without brackets"
    env = {
        **os.environ, "_QSTATE_COMPLETE": "complete_bash",
        "COMP_WORDS": f"qstate --url {url} restore ", "COMP_CWORD": "4",
    }  # fmt: skip
    bash = subprocess.run([QSTATE], capture_output=True, text=True, env=env, check=True)
    assert bash.stdout.split() == ["Job"]


# -- the shell in a real terminal ----------------------------------------------------


class Terminal:
    """``qstate shell`` in a pseudo-terminal; each step waits for what it expects."""

    def __init__(self, args: list[str], tmp_path: Path) -> None:
        environment = {
            **os.environ, "PROMPT_TOOLKIT_NO_CPR": "1", "QSTATE_HISTFILE": str(tmp_path / "h"),
            "PAGER": "cat", "TERM": "xterm-256color", "NO_COLOR": "1",
        }  # fmt: skip
        environment.pop("QSTATE_URL", None)
        self.child = pexpect.spawn(
            QSTATE, args, cwd=str(tmp_path), env=environment, encoding="utf-8",
            timeout=30, dimensions=(40, 120),
        )  # fmt: skip

    def until(self, pattern: str) -> str:
        """What the terminal shows up to ``pattern`` (a regular expression), ANSI removed."""
        self.child.expect(pattern)
        return ANSI.sub("", self.child.before + self.child.after)

    def line(self, text: str, until: str) -> str:
        self.child.send(text + "\r")
        return self.until(until)


def test_history_and_restore_in_the_shell(tmp_path: Path) -> None:
    url = f"file:{tmp_path}/state.db"
    with StateRegistry(url) as registry:
        state = registry.state("Job")
        state.set("a", 1)
        state.set("a", 2)
        state.update(b=3)
    term = Terminal(["--url", url, "shell"], tmp_path)
    term.until(r"state\.db>")
    term.line("use Job", r"Job>")
    shown = term.line("history", "┘")  # the table's last corner
    assert "old → new" in shown
    assert "(none) → 1" in shown
    assert "1 → 2" in shown
    term.until("Job>")
    asked = term.line("restore --to 1", r"\[y/N\]")
    assert "at revision 1" in asked, "what the restore changes is shown first"
    assert re.search(r"│ b +│ 3 +│ \(absent\)", asked)
    assert "did not restore Job: not confirmed" in term.line("n", "not confirmed")
    term.until("Job>")
    with StateRegistry(url) as registry:
        assert registry.state("Job").get_all() == {"a": 2, "b": 3}, "no: nothing changed"
    term.line("restore --to 1", r"\[y/N\]")
    assert "restored Job to revision 1" in term.line("y", "now revision 4")
    term.until("Job>")
    assert "2 → 1" in term.line("history --since 3", "┘")
    term.until("Job>")
    term.child.sendeof()
    term.child.expect(pexpect.EOF)
    term.child.close()
    assert term.child.exitstatus == 0
    with StateRegistry(url) as registry:
        assert registry.state("Job").get_all() == {"a": 1}
        assert registry.state("Job").revision() == 4


@pytest.mark.usefixtures("example_backend_installed")
def test_a_backend_without_revisions_refuses_both_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A third-party backend may keep no revisions (tests/example_backend.py keeps none)."""
    from qstate_cli.main import invoke
    from tests import example_backend

    try:
        assert invoke(["--url", "example://", "set", "Job", "k", "1"]) == 0
        for args in (["history", "Job"], ["restore", "Job", "--to", "0"]):
            capsys.readouterr()
            assert invoke(["--url", "example://", *args]) == 2
            err = capsys.readouterr().err
            assert err.startswith("qstate: error: ")
            assert "keeps no revisions" in err
            assert len(err.splitlines()) == 1
        assert invoke(["--url", "example://", "restore", "Job", "--to", "0", "--yes"]) == 2
        with StateRegistry("example://") as registry:
            assert registry.state("Job").get_all() == {"k": 1}
    finally:
        example_backend.forget_everything()
