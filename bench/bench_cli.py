#!/usr/bin/env python3
"""Start-up cost of ``qstate get STATE KEY`` and of one TAB of completion, as whole processes.

Compared in the same run, alternating, with:
* the floor of any Typer CLI: ``bench/floor_app.py``, a minimal two-command
  Typer app dispatching a command the same way (Typer 0.29 imports pydantic
  when it dispatches); on Redis it also imports redis;
* bare ``python -c pass``.

Completion is timed twice: of a command name (``qstate ge<TAB>``, pure
start-up) and of a state name (``qstate get B<TAB>``, which also lists the
states from the backend), each against the floor completing the same words.
Then the interactive shell, from start to its first prompt on a pty.

for the file backend and a private Redis. Target: qstate ≤ 1.05× the floor
(the shell has no floor; shown for the record). Medians of many runs. Exit
status 1 when a target is missed.

qstate is measured as users get it: installed (not editable: an editable
install adds an import hook that costs ~15 ms to every start) into a fresh
virtual environment built for the run, unless --python names an interpreter
whose environment already has qstate and redis installed.
Usage: python bench/bench_cli.py [--runs N] [--python PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_redis import private_server
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
TARGET = 1.05


def timed(command: list[str], env: dict[str, str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def fresh_environment(directory: Path) -> Path:
    """A new venv with qstate[redis] installed from this checkout (not editable)."""
    subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True)
    python = directory / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", f"{HERE.parent}[redis]"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return python


def completion_env(env: dict[str, str], variable: str, words: str) -> dict[str, str]:
    return {
        **env,
        variable: "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }


def measure(python: Path, url: str, redis_floor: bool, runs: int, cwd: str) -> dict[str, float]:
    env = {**os.environ, "QSTATE_URL": url}
    qstate = str(python.parent / "qstate")
    subprocess.run([qstate, "set", "Bench", "step", "1"], env=env, cwd=cwd, check=True)
    floor_app = [str(python), str(HERE / "floor_app.py")]
    redis_flag = ["--redis"] if redis_floor else []
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        "qstate get Bench step": ([qstate, "get", "Bench", "step"], env),
        "Typer floor app": ([*floor_app, "get", "Bench", "step", *redis_flag], env),
        "qstate ge<TAB>": ([qstate], completion_env(env, "_QSTATE_COMPLETE", "qstate ge")),
        "floor ge<TAB>": (floor_app, completion_env(env, "_FLOOR_COMPLETE", "floor ge")),
        "qstate get B<TAB>": (
            [qstate],
            completion_env(env, "_QSTATE_COMPLETE", "qstate get B"),
        ),
        "floor get B<TAB>": (
            [*floor_app, *redis_flag],
            completion_env(env, "_FLOOR_COMPLETE", "floor get B"),
        ),
        "python -c pass": ([str(python), "-c", "pass"], env),
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for command, environment in commands.values():  # warm the file cache
        timed(command, environment, cwd)
    for _ in range(runs):
        for name, (command, environment) in commands.items():
            times[name].append(timed(command, environment, cwd))
    medians = {name: statistics.median(values) for name, values in times.items()}
    medians["qstate shell, to its prompt"] = shell_start(qstate, env, runs, cwd)
    return medians


def shell_start(qstate: str, env: dict[str, str], runs: int, cwd: str) -> float:
    """Median time from starting ``qstate shell`` on a pty to its first prompt."""
    import pexpect

    environment = {**env, "PROMPT_TOOLKIT_NO_CPR": "1", "QSTATE_HISTFILE": f"{cwd}/history"}
    times = []
    for _ in range(max(runs // 3, 3)):
        start = time.perf_counter()
        child = pexpect.spawn(qstate, ["shell"], env=environment, cwd=cwd, encoding="utf-8")
        child.expect(r"qstate \S+>", timeout=60)
        times.append(time.perf_counter() - start)
        child.sendeof()
        child.expect(pexpect.EOF, timeout=60)
        child.close()
    return statistics.median(times)


FLOORS = {
    "qstate get Bench step": "Typer floor app",
    "qstate ge<TAB>": "floor ge<TAB>",
    "qstate get B<TAB>": "floor get B<TAB>",
    "qstate shell, to its prompt": "Typer floor app",
}
"""Each qstate row and the floor row it is compared with."""


def main() -> int:
    parser = argparse.ArgumentParser(description="qstate start-up vs the Typer floor")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--python", type=Path, help="an interpreter with qstate installed")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as cwd:
        python = args.python or fresh_environment(Path(cwd) / "venv")
        results["file"] = measure(python, f"file:{cwd}/state.db", False, args.runs, cwd)
        if shutil.which("redis-server"):
            with private_server() as url:
                results["redis"] = measure(python, url, True, args.runs, cwd)
    table = Table(title=f"qstate start-up, median of {args.runs} runs")
    for column in ("backend", "command", "median ms", "× floor", "× python -c pass"):
        table.add_column(column, justify="left" if column in ("backend", "command") else "right")
    ok = True
    for backend, medians in results.items():
        bare = medians["python -c pass"]
        for name, median in medians.items():
            floor = medians[FLOORS.get(name, "Typer floor app")]
            ratio = median / floor
            if name in FLOORS and "shell" not in name:
                ok &= ratio <= TARGET
            table.add_row(
                backend, name, f"{median * 1000:.1f}", f"{ratio:.2f}×", f"{median / bare:.1f}×"
            )
    Console(width=100).print(table)
    print(
        f"target: qstate ≤ {TARGET}× the Typer floor doing the same (completion rows: the "
        "floor completing the same words); the shell row is for the record"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
