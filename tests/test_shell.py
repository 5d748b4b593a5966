"""The interactive shell: grammar and completer units, a real pty, piped mode."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pexpect
import pytest
from prompt_toolkit import PromptSession
from prompt_toolkit.application import create_app_session
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from typer.main import get_command

from qstate import StateRegistry
from qstate_cli.catalog import Catalog
from qstate_cli.main import app
from qstate_cli.session import Session
from qstate_cli.shell.completer import ShellCompleter
from qstate_cli.shell.facts import all_facts
from qstate_cli.shell.grammar import (
    Current,
    LineError,
    is_complete,
    parse_use,
    split,
    to_cli_args,
)
from qstate_cli.shell.loop import Shell
from qstate_cli.shell.prompt import make_prompt_session
from tests.conftest import ORDER_VARIABLE

QSTATE = str(Path(sys.executable).parent / "qstate")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][AB012]")


# -- grammar ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("get step", ["get", "step"]),
        ('set tags ["a", "b c"]', ["set", "tags", '["a", "b c"]']),
        ('update cart={"items": [1, 2]} n=1', ["update", 'cart={"items": [1, 2]}', "n=1"]),
        ('update a={"x":\n  [1, 2]}', ["update", 'a={"x":\n  [1, 2]}']),
        ("set k 'hello world'", ["set", "k", "hello world"]),
        ('set k "say \\"hi\\""', ["set", "k", 'say "hi"']),
        ('set k {"s": "]"}', ["set", "k", '{"s": "]"}']),
        ("set k a\\ b", ["set", "k", "a b"]),
        ("  ", []),
    ],
)
def test_split_keeps_json_whole(line: str, words: list[str]) -> None:
    assert split(line) == words


@pytest.mark.parametrize("line", ["set k 'open", 'set k {"a": 1', 'set k ["x"'])
def test_incomplete_lines(line: str) -> None:
    assert not is_complete(line)
    with pytest.raises(LineError):
        split(line)


COMMANDS: dict[str, Any] = dict(get_command(app).commands)  # type: ignore[attr-defined]
TAKES_STATE = frozenset(name for name, facts in all_facts(COMMANDS).items() if facts.takes_state)


def test_the_shell_reads_which_commands_take_what_from_the_cli() -> None:
    facts = all_facts(COMMANDS)
    assert {
        "get", "set", "update", "delete", "clear", "incr", "wait", "watch", "edit",
        "history", "restore",
    } == set(TAKES_STATE)  # fmt: skip
    assert {name: f.keys for name, f in facts.items() if f.keys} == {
        "get": "one", "set": "one", "incr": "one", "delete": "many",
        "update": "assign", "wait": "assign",
    }  # fmt: skip
    assert [name for name, f in facts.items() if f.value_follows_key] == ["set"]
    assert {"--scope", "--ttl", "--url", "-o"} <= facts["set"].value_options
    assert "--string" not in facts["set"].value_options


def test_current_state_is_filled_in() -> None:
    on = Current("MyState", "u1")
    assert to_cli_args(["get", "step"], on, TAKES_STATE) == [
        "get",
        "--scope",
        "u1",
        "MyState",
        "step",
    ]
    assert to_cli_args(["get", "--scope", "u2", "x"], on, TAKES_STATE) == [
        "get",
        "MyState",
        "--scope",
        "u2",
        "x",
    ]
    assert to_cli_args(["set", "delta", "--", "-1"], Current("S"), TAKES_STATE) == [
        "set",
        "S",
        "delta",
        "--",
        "-1",
    ]
    assert to_cli_args(["list"], on, TAKES_STATE) == ["list"]
    assert to_cli_args(["get", "S", "k"], Current(), TAKES_STATE) == ["get", "S", "k"]
    assert parse_use(["use", "S", "--scope", "u1"]) == Current("S", "u1")
    assert parse_use(["use", "--scope", "u1", "S"]) == Current("S", "u1")
    assert parse_use(["use"]) == Current()
    with pytest.raises(LineError):
        parse_use(["use", "a", "b"])


# -- completer ----------------------------------------------------------------


@pytest.fixture
def shell(tmp_path: Path) -> Shell:
    url = f"file:{tmp_path}/state.db"
    with StateRegistry(url) as registry:
        registry.state("Checkout").update(step=1, cart=[1, 2], note="x" * 100)
        registry.state("Checkout", scope="u1").set("mine", True)
        registry.state("Other").set("k", 1)
    return Shell(Session(url=url), Current())


def completions(shell: Shell, text: str) -> list[str]:
    completer = ShellCompleter(shell.commands, shell.catalog, lambda: shell.current)
    return [c.text for c in completer.get_completions(Document(text), CompleteEvent())]


def test_completer_knows_commands_states_keys_options(shell: Shell) -> None:
    assert completions(shell, "u") == ["update", "use"]
    assert completions(shell, "get ") == ["Checkout", "Other"]
    assert completions(shell, "get Ch") == ["Checkout"]
    assert completions(shell, "get Checkout ") == ["step", "cart", "note"]
    assert completions(shell, "delete Checkout st") == ["step"]
    assert completions(shell, "get --scope u1 Checkout ") == ["mine"]
    assert completions(shell, "get --scope ") == []
    assert completions(shell, "get Checkout --scope ") == ["u1"]
    assert "--ttl" in completions(shell, "set --")
    assert completions(shell, "use O") == ["Other"]
    shell.current = Current("Checkout")
    assert completions(shell, "get ") == ["step", "cart", "note"]
    assert completions(shell, "update ") == ["step=", "cart=", "note="]
    assert completions(shell, "set step ") == ["1"], "a short current value is offered"
    assert completions(shell, "set note ") == [], "a long one is not"


def test_catalog_caches_briefly_and_survives_a_dead_backend() -> None:
    now = [0.0]
    registry = StateRegistry("memory://")
    catalog = Catalog(registry, clock=lambda: now[0])
    registry.state("A").set("k", 1)
    assert catalog.state_names() == ["A"]
    registry.state("B").set("k", 1)
    assert catalog.state_names() == ["A"], "cached"
    now[0] += 5
    assert catalog.state_names() == ["A", "B"]
    dead = Catalog(StateRegistry("redis://127.0.0.1:1/0?timeout=0.2"))
    assert dead.state_names() == []
    assert dead.state("A", None) == {}


def test_completion_through_prompt_toolkit_pipe_input(
    shell: Shell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QSTATE_HISTFILE", str(tmp_path / "history"))

    async def typed(prompt: PromptSession[str], *keys: str) -> str:
        answer = asyncio.ensure_future(prompt.prompt_async("> "))
        for key in keys:  # key by key, as a person types: completion runs in between
            pipe.send_text(key)
            await asyncio.sleep(0.2)
        return await answer

    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        prompt = make_prompt_session(shell)
        assert asyncio.run(typed(prompt, "get Checkout st", "\t", "\r")) == "get Checkout step"
        assert asyncio.run(typed(prompt, "use Oth", "\t", "\r")) == "use Other"
        multi_line = asyncio.run(typed(prompt, "set Checkout cart [1,", "\r", " 2]", "\r"))
        assert multi_line == "set Checkout cart [1,\n 2]", "Enter inside [ ] continues the value"


# -- a real terminal ----------------------------------------------------------


class Terminal:
    """``qstate shell`` in a pseudo-terminal, driven like a person would."""

    def __init__(self, args: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> None:
        environment = {
            **os.environ,
            "PROMPT_TOOLKIT_NO_CPR": "1",
            "QSTATE_HISTFILE": str(tmp_path / "history"),
            "PAGER": "cat",
            "TERM": "xterm-256color",
            **(env or {}),
        }
        environment.pop("QSTATE_URL", None)
        self.child = pexpect.spawn(
            args[0], args[1:], cwd=str(tmp_path), env=environment, encoding="utf-8",
            timeout=15, dimensions=(40, 120),
        )  # fmt: skip

    def settle(self) -> str:
        """Everything shown until the screen is quiet for half a second, ANSI removed."""
        self.child.expect(r"\S", timeout=15)  # the first output may take a while
        shown = self.child.before + self.child.after
        while True:
            try:
                self.child.expect(r"\S", timeout=0.5)
                shown += self.child.before + self.child.after
            except pexpect.TIMEOUT:
                return ANSI.sub("", shown + self.child.before)

    def prompt(self, label: str = ">") -> str:
        shown = self.settle()
        assert label in shown, f"no prompt {label!r} in {shown!r}"
        return shown

    def run(self, line: str, label: str = ">") -> str:
        self.child.send(line + "\r")
        return self.prompt(label)

    def type_and_complete(self, text: str) -> None:
        self.child.send(text)
        time.sleep(0.4)  # as a person would: completion runs while typing
        self.child.send("\t")
        time.sleep(0.4)

    def exit_status(self) -> int | None:
        self.child.expect(pexpect.EOF)
        self.child.close()
        status: int | None = self.child.exitstatus
        return status


def test_shell_in_a_real_terminal(tmp_path: Path) -> None:
    url = f"file:{tmp_path}/state.db"
    with StateRegistry(url) as registry:
        registry.state("MyState").update(state="await_phone", step=1)
        registry.state("Other").set("k", 1)
    term = Terminal([QSTATE, "--url", url, "shell", "MyState"], tmp_path)
    term.prompt("MyState>")
    shown = term.run("get", "MyState>")
    assert "┃ key" in shown, "a rich table"
    assert '"await_phone"' in shown
    term.type_and_complete("get st")
    assert "step" in term.run("", "MyState>")  # Tab completed the key "step"
    assert "qstate: error: No such command 'gte'" in term.run("gte", "MyState>")
    term.run("set step 2", "MyState>")
    term.child.send("incr st")
    term.child.send("\x03")  # Ctrl-C cancels the line, the shell goes on
    term.prompt("MyState>")
    assert "2" in term.run("get step", "MyState>"), "the cancelled incr did not run"
    term.type_and_complete("use Oth")
    term.run("", "Other>")  # Tab completed the state name "Other"
    assert "│ k" in term.run("get", "Other>")
    term.child.sendeof()  # Ctrl-D leaves
    assert term.exit_status() == 0
    with StateRegistry(url) as registry:
        assert registry.state("MyState").get("step") == 2


def test_toolbar_shows_the_syntax_of_the_command_being_typed(tmp_path: Path) -> None:
    """The toolbar sits at the bottom of the window, which prompt-toolkit finds by asking
    the terminal where the cursor is (CPR); this terminal answers like a real one."""
    environment = {**os.environ, "QSTATE_HISTFILE": str(tmp_path / "h"), "TERM": "xterm"}
    environment.pop("PROMPT_TOOLKIT_NO_CPR", None)
    child = pexpect.spawn(
        QSTATE, ["--url", f"file:{tmp_path}/s.db", "shell", "MyState"], env=environment,
        encoding="utf-8", timeout=5, dimensions=(30, 60),
    )  # fmt: skip

    def screen_after(keys: str) -> str:
        """What the shell draws after ``keys`` (once quiet for 0.7 s), without white space:
        a wrapped toolbar line may be redrawn without the space it was broken at."""
        child.send(keys)
        shown = ""
        first_wait = 30.0  # the first redraw may be slow on a loaded machine
        while True:
            try:
                child.expect(["\x1b\\[6n", "\\S"], timeout=first_wait)
            except pexpect.TIMEOUT:
                return "".join(ANSI.sub("", shown).split())
            first_wait = 0.7
            if child.after == "\x1b[6n":
                child.send("\x1b[1;1R")  # where the cursor is: top left
            shown += child.before + child.after

    commands = screen_after("")
    assert "commands:" in commands
    assert "watch" in commands, "the list wraps to a second line instead of being cut"
    assert "incrKEY[AMOUNT][--ttlTTL][--scopeSCOPE]" in screen_after("incr ")
    assert "setKEYVALUE[--string][--ttlTTL][--scopeSCOPE]" in screen_after("\x15set ")
    assert "--url" not in screen_after("\x15set "), "global options are not repeated"
    assert "STATE[--scopeSCOPE]switchthecurrentstate" in screen_after("\x15use ")
    screen_after("\x15")  # an empty line, so that Ctrl-D leaves
    child.sendeof()
    child.expect(pexpect.EOF)


def test_tall_output_goes_through_the_pager(tmp_path: Path) -> None:
    url = f"file:{tmp_path}/state.db"
    with StateRegistry(url) as registry:
        registry.state("Big").update({f"key{i:02}": i for i in range(60)})
    paged = tmp_path / "paged.txt"
    term = Terminal(
        [QSTATE, "--url", url, "shell", "Big"], tmp_path, env={"PAGER": f"cat > {paged}"}
    )
    term.prompt("Big>")
    term.run("get key07", "Big>")
    assert not paged.exists(), "a short answer is printed directly"
    term.run("get", "Big>")
    assert "key59" in paged.read_text(), "60 rows in a 40-row window: paged"
    term.child.sendeof()
    assert term.exit_status() == 0


def test_history_survives_a_restart_and_never_keeps_a_password(tmp_path: Path) -> None:
    secret_url = "redis://default:s3cret@127.0.0.1:6379/0"  # noqa: S105
    first = Terminal([QSTATE, "--url", f"file:{tmp_path}/s.db", "shell"], tmp_path)
    first.prompt()
    first.run("set Job step 41")
    first.run(f"help {secret_url}")  # a line with a password in it
    first.child.sendeof()
    assert first.exit_status() == 0
    history = (tmp_path / "history").read_text()
    assert "set Job step 41" in history
    assert "s3cret" not in history
    assert "default:***@" in history
    second = Terminal([QSTATE, "--url", f"file:{tmp_path}/s.db", "shell"], tmp_path)
    second.prompt()
    second.child.send("\x12")  # Ctrl-R: search the history of the first session
    second.child.send("set Job")
    searching = second.settle()
    assert "I-search backward:" in searching
    assert "set Job step 41" in searching
    second.child.send("\r")  # accept the line found...
    second.settle()
    assert "set Job step 41" in second.run("")  # ...and run it
    second.child.send("\x1b[A")  # Up: the line just run
    assert "set Job step 41" in second.settle()
    second.child.send("\x15")  # Ctrl-U: clear it
    second.settle()
    assert "41" in second.run("get Job step")
    second.child.sendeof()
    assert second.exit_status() == 0


@pytest.mark.redis
def test_prompt_shows_the_backend_without_its_password(tmp_path: Path) -> None:
    from tests.redis_server import RedisServer

    server = RedisServer(tmp_path / "r", "--requirepass", "s3cret")
    server.start()
    try:
        url = f"redis://:s3cret@127.0.0.1:{server.port}/0"
        term = Terminal([QSTATE, "--url", url, "shell", "MyState"], tmp_path)
        shown = term.prompt("MyState>")
        assert f"qstate redis://:***@127.0.0.1:{server.port}/0 MyState" in shown
        assert "s3cret" not in shown
        term.run("set a 1", "MyState>")
        term.child.sendeof()
        assert term.exit_status() == 0
    finally:
        server.stop()


def test_colour_on_a_terminal_and_off_with_no_color(tmp_path: Path) -> None:
    url = f"file:{tmp_path}/state.db"
    subprocess.run([QSTATE, "--url", url, "set", "S", "k", "1"], check=True)
    coloured = pexpect.run(f"{QSTATE} --url {url} get S", env={**os.environ, "TERM": "xterm"})
    plain = pexpect.run(
        f"{QSTATE} --url {url} get S", env={**os.environ, "TERM": "xterm", "NO_COLOR": "1"}
    )
    flag = pexpect.run(
        f"{QSTATE} --no-color --url {url} get S", env={**os.environ, "TERM": "xterm"}
    )
    assert b"\x1b[" in coloured
    assert b"\x1b[" not in plain
    assert b"\x1b[" not in flag
    assert b"\xe2\x94\x83 key" in plain  # still a table: "┃ key"


# -- piped mode and the embedded shell ------------------------------------------


def piped(script: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [QSTATE, "--url", f"file:{tmp_path}/state.db", "shell", *args],
        input=script, capture_output=True, text=True,
        env={**os.environ, "QSTATE_HISTFILE": "/dev/null"},
    )  # fmt: skip


def test_piped_script_runs_every_line(tmp_path: Path) -> None:
    script = 'use Job\nset step 1\nupdate tags=["a",\n  "b"] done=false\nincr step\nget step\n'
    result = piped(script, tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.endswith("}\n2\n2\n"), "update prints the state, incr and get the value"
    with StateRegistry(f"file:{tmp_path}/state.db") as registry:
        assert registry.state("Job").get_all() == {"step": 2, "tags": ["a", "b"], "done": False}


def test_global_options_typed_first_keep_the_current_state(tmp_path: Path) -> None:
    """As the README shows: ``--json get step`` after ``use Job`` is ``get step`` in JSON."""
    script = "--json use Job\nset step 7\n--json get step\n-o plain get\n--output=json get\n"
    result = piped(script, tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert lines[0] == "7", "the value as JSON"
    assert lines[1] == "step\t7", "the state, as plain text"
    assert '"step": 7' in result.stdout, "the state as JSON"


def test_piped_script_fails_with_the_first_failure(tmp_path: Path) -> None:
    result = piped("set Job a 1\nget Job nope\nset Job b 2\nclear Job\n", tmp_path)
    assert result.returncode == 1, "get of a missing key: 1, as the CLI"
    assert "key 'nope' not found" in result.stderr
    assert "refusing to clear" in result.stderr, "no terminal: clear is refused (5)"
    with StateRegistry(f"file:{tmp_path}/state.db") as registry:
        assert registry.state("Job").get_all() == {"a": 1, "b": 2}, "later lines still ran"
    assert piped("bogus\n", tmp_path).returncode == 2
    assert piped("clear --yes Job\nexit\nset Job c 3\n", tmp_path).returncode == 0
    assert piped('set Job k {"open": \n', tmp_path).returncode == 2


def test_embedded_shell_sees_memory_states(tmp_path: Path) -> None:
    code = (
        "from qstate import StateRegistry\n"
        "from qstate_cli import open_shell\n"
        "registry = StateRegistry('memory://')\n"
        "registry.state('Live').update(step=7, who='worker')\n"
        "status = open_shell(registry, 'Live')\n"
        "print('after', registry.state('Live').get('step'), status)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], input="get step\nset step 8\n", capture_output=True,
        text=True, env={**os.environ, "QSTATE_HISTFILE": "/dev/null"},
    )  # fmt: skip
    assert result.stdout.splitlines() == ["7", "after 8 0"], result.stderr


def test_embedded_shell_needs_a_sync_registry() -> None:
    from qstate import AsyncStateRegistry, UsageError
    from qstate_cli import open_shell

    with pytest.raises(UsageError, match="StateRegistry"):
        open_shell(AsyncStateRegistry("memory://"))  # type: ignore[arg-type]


def test_progress_bar_and_live_watch_on_a_terminal(tmp_path: Path) -> None:
    """export shows a progress bar on a terminal (stderr) while stdout goes to a file;
    watch redraws a live table as the state changes."""
    url = f"file:{tmp_path}/state.db"
    states = [{"state": f"S{i}", "data": {"k": i}} for i in range(300)]
    dump = json.dumps({"qstate_export": 1, "states": states})
    imported = subprocess.run(
        [QSTATE, "--url", url, "import", "-"], input=dump, capture_output=True, text=True
    )
    assert (
        imported.stderr
        == "imported 300 state(s): 300 keys added, 0 keys changed, 0 keys removed\n"
    )
    shown = pexpect.run(
        f"bash -c '{QSTATE} --url {url} export > {tmp_path}/out.json'",
        env={**os.environ, "TERM": "xterm"}, timeout=30,
    ).decode()  # fmt: skip
    assert "exporting" in shown
    assert "100%" in shown
    assert len(json.loads((tmp_path / "out.json").read_text())["states"]) == 300
    watch = pexpect.spawn(
        QSTATE, ["--url", url, "watch", "--count", "1", "S1"],
        env={**os.environ, "TERM": "xterm"}, encoding="utf-8", timeout=15,
    )  # fmt: skip
    watch.expect("│ 1 ")
    subprocess.run([QSTATE, "--url", url, "set", "S1", "k", "changed"], check=True)
    watch.expect('"changed"')
    watch.expect(pexpect.EOF)


@pytest.mark.slow
def test_the_shell_tests_pass_in_reverse_order() -> None:
    """No test here may depend on what another left behind, or on running after it."""
    if os.environ.get(ORDER_VARIABLE) == "reverse":
        pytest.skip("this is the reversed run")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__],
        env={**os.environ, ORDER_VARIABLE: "reverse"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in result.stdout
