"""Security properties, checked on the code base and on real runs."""

from __future__ import annotations

import ast
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from qstate import StateRegistry

ROOT = Path(__file__).resolve().parent.parent
QSTATE = str(Path(sys.executable).parent / "qstate")
SOURCES = sorted(
    path for package in ("qstate", "qstate_cli") for path in (ROOT / package).rglob("*.py")
)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_pickle_eval_exec_or_unsafe_yaml(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [alias.name for alias in node.names]
            module = getattr(node, "module", None) or ""
            for name in [module, *names]:
                assert name.split(".")[0] not in ("pickle", "marshal", "shelve", "dill"), (
                    f"{path}: imports {name}"
                )
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):  # the builtins (re.compile is fine)
                assert func.id not in ("eval", "exec", "compile", "__import__"), (
                    f"{path}: calls {func.id}"
                )
            name = getattr(func, "attr", "")
            assert name not in ("eval", "exec"), f"{path}: calls .{name}"
            if name == "load" and isinstance(func, ast.Attribute):
                owner = getattr(func.value, "id", "")
                assert owner != "yaml", f"{path}: yaml.load"


def test_data_directory_and_database_permissions(tmp_path: Path) -> None:
    db = tmp_path / "fresh" / "dir" / "state.db"
    subprocess.run([QSTATE, "--url", f"file:{db}", "set", "S", "k", "1"], check=True)
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_a_password_never_shows(tmp_path: Path) -> None:
    """Not in errors, not in --debug tracebacks, not in the registry's repr or URL."""
    url = "redis://admin:pa55word-XYZ@127.0.0.1:1/0?timeout=0.3"
    for args in (["get", "S", "k"], ["--debug", "get", "S", "k"], ["doctor"], ["list"]):
        result = subprocess.run([QSTATE, "--url", url, *args], capture_output=True, text=True)
        assert result.returncode == 3
        assert "pa55word" not in result.stdout + result.stderr
    registry = StateRegistry(url)
    assert "pa55word" not in repr(registry) + registry.url + repr(registry.state("S"))
    env = {**os.environ, "QSTATE_URL": url, "QSTATE_HISTFILE": str(tmp_path / "history")}
    shell = subprocess.run(
        [QSTATE, "shell"], input=f"help {url}\nget S k\n", capture_output=True, text=True, env=env
    )
    assert "pa55word" not in shell.stdout + shell.stderr


def test_values_are_data_in_every_output(tmp_path: Path) -> None:
    url = f"file:{tmp_path}/s.db"
    nasty = ["[bold red]x[/]", "\x1b[2J\x1b[H", "$(touch pwned)", "`id`", "{{7*7}}"]
    for i, text in enumerate(nasty):
        subprocess.run([QSTATE, "--url", url, "set", "--string", "S", f"k{i}", text], check=True)
    for i, text in enumerate(nasty):
        out = subprocess.run(
            [QSTATE, "--url", url, "get", "S", f"k{i}"], capture_output=True, text=True
        )
        assert out.stdout == text + "\n", "plain output is the value itself"
    table = subprocess.run(
        [QSTATE, "--url", url, "-o", "table", "get", "S"], capture_output=True, text=True
    ).stdout
    assert "[bold red]x[/]" in table
    assert "\x1b" not in table
    assert not (tmp_path / "pwned").exists()
