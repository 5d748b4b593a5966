"""The installed ``qstate`` executable in a real process: pipes, stdin, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

QSTATE = str(Path(sys.executable).parent / "qstate")


def run_qstate(
    *args: str, cwd: Path, input: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "QSTATE_URL"}
    environment.update(env or {})
    return subprocess.run(
        [QSTATE, *args], cwd=cwd, input=input, capture_output=True, text=True, env=environment
    )


qstate = run_qstate


def test_the_default_backend_needs_no_setup(tmp_path: Path) -> None:
    """The README's first command: set, then get, with nothing configured."""
    assert qstate("update", "MyState", "state=await_phone", "step=1", cwd=tmp_path).returncode == 0
    result = qstate("get", "MyState", cwd=tmp_path)
    assert result.returncode == 0
    assert json.loads(result.stdout) == {"state": "await_phone", "step": 1}
    assert (tmp_path / ".qstate" / "state.db").is_file()


@pytest.fixture(params=["file", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The environment that points the executable at each backend (QSTATE_URL)."""
    if request.param == "file":
        return {"QSTATE_URL": f"file:{tmp_path}/state.db"}
    return {"QSTATE_URL": request.getfixturevalue("redis_url")}


def test_the_console_script_freezes_the_import_and_runs_commands_collected(
    tmp_path: Path,
) -> None:
    # The objects the import created are out of the collector's way; what a
    # command allocates (the shell, watch: long runs) is collected as usual.
    probe = (
        "import gc, sys\n"
        "from qstate_cli import console, main\n"
        "main.run = lambda: print(gc.isenabled(), gc.get_freeze_count()) or 0\n"
        "console.entry_point()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    enabled, frozen = result.stdout.split()
    assert enabled == "True"
    assert int(frozen) > 10_000
    assert Path(QSTATE).read_text().count("qstate_cli.console import entry_point") == 1


def test_stdout_is_pure_in_a_pipe(tmp_path: Path, backend: dict[str, str]) -> None:
    def qstate(*args: str) -> subprocess.CompletedProcess[str]:
        return run_qstate(*args, cwd=tmp_path, env=backend)

    qstate("update", "MyState", "a=1", "b=Юникод")
    whole = qstate("get", "MyState")
    assert json.loads(whole.stdout) == {"a": 1, "b": "Юникод"}, "one JSON document"
    assert whole.stderr == ""
    assert qstate("get", "MyState", "b").stdout == "Юникод\n", "plain value"
    forced = qstate("--json", "get", "MyState", "b")
    assert json.loads(forced.stdout) == "Юникод"
    listed = qstate("--output", "json", "list")
    assert json.loads(listed.stdout)[0]["state"] == "MyState"
    assert qstate("delete", "MyState", "a").stdout == ""


def test_exit_codes_in_a_real_process(tmp_path: Path, backend: dict[str, str]) -> None:
    def qstate(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_qstate(*args, cwd=tmp_path, env=backend, input=input)

    qstate("set", "MyState", "a", "1")
    assert qstate("get", "MyState", "a").returncode == 0
    assert qstate("get", "MyState", "missing").returncode == 1
    assert qstate("get", "Missing").returncode == 1
    assert qstate("frobnicate").returncode == 2
    assert qstate("--url", "redis://127.0.0.1:1/0", "get", "S").returncode == 3
    assert qstate("wait", "-t", "0.1", "MyState", "a=2").returncode == 4
    refused = qstate("clear", "MyState", input="y\n")
    assert refused.returncode == 5, "stdin is not a terminal: nobody can confirm"
    assert qstate("get", "MyState", "a").stdout == "1\n"
    for result in (refused, qstate("frobnicate")):
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stderr.startswith("qstate: error: ")


def test_value_from_stdin(tmp_path: Path) -> None:
    assert (
        qstate("set", "Doc", "body", "-", cwd=tmp_path, input="line one\nline two\n").returncode
        == 0
    )
    assert qstate("get", "Doc", "body", cwd=tmp_path).stdout == "line one\nline two\n"


def test_environment_and_config_file(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "qstate.toml").write_text('url = "file:data/shared.db"\n')
    qstate("set", "S", "k", "1", cwd=project / "src")
    assert (project / "data" / "shared.db").is_file(), "relative to the config file"
    assert qstate("get", "S", "k", cwd=project).stdout == "1\n"
    env_db = tmp_path / "env.db"
    env = {"QSTATE_URL": f"file:{env_db}"}
    qstate("set", "S", "k", "2", cwd=project, env=env)
    assert qstate("get", "S", "k", cwd=project, env=env).stdout == "2\n"
    assert qstate("get", "S", "k", cwd=project).stdout == "1\n"
    bad = project / "pyproject.toml"
    (project / "qstate.toml").unlink()
    bad.write_text("[tool.qstate]\nurl = [\n")
    result = qstate("get", "S", "k", cwd=project)
    assert result.returncode == 2
    assert "not valid TOML" in result.stderr


def test_debug_shows_a_traceback_without_the_password(tmp_path: Path) -> None:
    url = "redis://:hunter2@127.0.0.1:1/0?timeout=0.5"
    plain = qstate("--url", url, "get", "S", "k", cwd=tmp_path)
    debug = qstate("--debug", "--url", url, "get", "S", "k", cwd=tmp_path)
    assert "Traceback" not in plain.stderr
    assert "Traceback" in debug.stderr
    assert plain.returncode == debug.returncode == 3
    assert "hunter2" not in plain.stderr + debug.stderr


def test_broken_pipe_is_not_an_error(tmp_path: Path) -> None:
    states = [{"state": f"S{i}", "data": {"k": "x" * 2000}} for i in range(300)]
    dump = json.dumps({"qstate_export": 1, "states": states})
    assert qstate("import", "-", cwd=tmp_path, input=dump).returncode == 0
    lister = subprocess.Popen(
        [QSTATE, "export"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert lister.stdout is not None
    head = lister.stdout.read(10)  # the reader goes away early, like `| head -c 10`
    lister.stdout.close()
    _, stderr = lister.communicate(timeout=30)
    assert head.startswith(b"{")
    assert stderr == b""
    assert lister.returncode == 0


@pytest.mark.parametrize("command", ["get", "set", "update", "export", "import", "watch", "edit"])
def test_help_of_each_command(command: str, tmp_path: Path) -> None:
    result = qstate(command, "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "Usage: qstate " + command in result.stdout
