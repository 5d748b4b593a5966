#!/usr/bin/env python3
"""Start-up cost of ``qstate get STATE KEY`` as a whole process.

Compared in the same run, alternating, with:
* the floor of any Typer CLI: ``bench/floor_app.py``, a minimal two-command
  Typer app dispatching a command the same way (Typer 0.29 imports pydantic
  when it dispatches); on Redis it also imports redis;
* bare ``python -c pass``.

for the file backend and a private Redis. Target: qstate ≤ 1.2× the floor.
Medians of many runs. Exit status 1 when the target is missed.

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
TARGET = 1.2


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


def measure(python: Path, url: str, redis_floor: bool, runs: int, cwd: str) -> dict[str, float]:
    env = {**os.environ, "QSTATE_URL": url}
    qstate = str(python.parent / "qstate")
    subprocess.run([qstate, "set", "Bench", "step", "1"], env=env, cwd=cwd, check=True)
    floor = [str(python), str(HERE / "floor_app.py"), "get", "Bench", "step"]
    if redis_floor:
        floor.append("--redis")
    commands = {
        "qstate get Bench step": [qstate, "get", "Bench", "step"],
        "Typer floor app": floor,
        "python -c pass": [str(python), "-c", "pass"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for command in commands.values():  # warm the file cache
        timed(command, env, cwd)
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(timed(command, env, cwd))
    return {name: statistics.median(values) for name, values in times.items()}


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
        floor, bare = medians["Typer floor app"], medians["python -c pass"]
        for name, median in medians.items():
            ratio = median / floor
            if name.startswith("qstate"):
                ok &= ratio <= TARGET
            table.add_row(
                backend, name, f"{median * 1000:.1f}", f"{ratio:.2f}×", f"{median / bare:.1f}×"
            )
    Console(width=100).print(table)
    print(f"target: qstate ≤ {TARGET}× the Typer floor app")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
