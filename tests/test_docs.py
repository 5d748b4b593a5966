"""The docs and generated files stay true: README, help texts, completion scripts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command

from qstate_cli.main import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
QSTATE = str(Path(sys.executable).parent / "qstate")
COMMANDS = sorted(get_command(app).commands)  # type: ignore[attr-defined]


def test_there_are_commands() -> None:
    assert {"list", "get", "set", "update", "delete", "clear", "incr"} <= set(COMMANDS)
    assert {"export", "import", "wait", "watch", "edit"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_is_in_the_readme(command: str) -> None:
    click_command = get_command(app).commands[command]  # type: ignore[attr-defined]
    assert click_command.help, f"qstate {command} has no help text"
    assert re.search(rf"qstate(?: [-\w=:/.]+)* {command}\b", README), (
        f"the README never shows `qstate {command}`"
    )


def test_every_exit_code_is_documented() -> None:
    from qstate_cli.exit_codes import ExitCode

    for code in ExitCode:
        assert re.search(rf"^\| {code.value} \|", README, re.MULTILINE), (
            f"exit code {code.value} ({code.name}) is not in the README's table"
        )


@pytest.mark.parametrize(
    ("shell", "file"), [("bash", "qstate.bash"), ("zsh", "_qstate"), ("fish", "qstate.fish")]
)
def test_completion_scripts_are_in_step(shell: str, file: str) -> None:
    env = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    generated = subprocess.run(
        [QSTATE, "--show-completion", shell], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert generated == (ROOT / "completions" / file).read_text(), (
        f"completions/{file} is stale: see completions/README.md to regenerate it"
    )


def _complete(words: str, cwd: Path) -> list[str]:
    env = {
        **os.environ,
        "_QSTATE_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }
    env.pop("QSTATE_URL", None)
    out = subprocess.run([QSTATE], capture_output=True, text=True, env=env, cwd=cwd, check=True)
    return out.stdout.split()


def test_completion_reads_states_and_keys_from_the_backend(tmp_path: Path) -> None:
    url = f"file:{tmp_path}/state.db"
    run = [QSTATE, "--url", url]
    subprocess.run([*run, "set", "Checkout", "step", "1"], check=True)
    subprocess.run([*run, "set", "--scope", "u1", "Checkout", "cart", "[]"], check=True)
    subprocess.run([*run, "set", "Other", "x", "1"], check=True)
    assert _complete(f"qstate --url {url} get ", tmp_path) == ["Checkout", "Other"]
    assert _complete(f"qstate --url {url} get Ch", tmp_path) == ["Checkout"]
    assert _complete(f"qstate --url {url} get Checkout ", tmp_path) == ["step"]
    assert _complete(f"qstate --url {url} delete --scope u1 Checkout ", tmp_path) == ["cart"]
    assert "update" in _complete("qstate up", tmp_path)
    assert "--scope" in _complete("qstate get --sc", tmp_path)
    assert _complete(f"qstate --url {url} get --scope ", tmp_path) == ["u1"]
    assert _complete(f"qstate --url {url} get Checkout --scope ", tmp_path) == ["u1"]
    assert _complete(f"qstate --url {url} get Other --scope ", tmp_path) == []
    assert _complete(f"qstate --url {url} export ", tmp_path) == ["Checkout", "Other"]
    assert _complete(f"qstate --url {url} get --scope u1 Checkout ", tmp_path) == ["cart"]
    assert _complete(f"qstate --url {url} get -s u1 Checkout ", tmp_path) == ["cart"]


def test_completion_never_hangs_on_a_dead_backend(tmp_path: Path) -> None:
    """A listening socket that never answers: the connection opens, no reply comes."""
    import socket
    import time

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        started = time.monotonic()
        assert _complete(f"qstate --url redis://127.0.0.1:{port}/0 get ", tmp_path) == []
        assert time.monotonic() - started < 10, "the one-second completion timeout holds"
