"""examples/qtasks run as its README says: two QTasks workers, the tasks, then ``qstate``.

The commands are read from the README's ``<!-- commands: NAME -->`` blocks, so
the README and this test cannot drift apart. The example is copied to a
temporary directory and run there with the substitutions its README documents:

* a private redis-server on a free loopback port stands in for step 1 (the
  apps read ``BROKER_URL``); the machine's own Redis is never touched;
* ``sync_app`` in place of ``async_app`` for the sync flavour;
* ``qstate.toml`` as shipped (a SQLite file next to it), or with its Redis line
  in place of the ``file:`` one, pointed at the private server.

``QSTATE_URL`` is removed from the environment: the workers and ``qstate`` find
the store through ``qstate.toml`` alone, as a user's would.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "qtasks"
BIN = Path(sys.executable).parent
SEED = {"state": "await_phone", "step": 1, "prompt": "Введите телефон"}


def readme_commands() -> dict[str, list[str]]:
    text = (EXAMPLE / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- commands: (\w+) -->\n```sh\n(.*?)```", text, re.DOTALL)
    return {name: [line for line in body.splitlines() if line.strip()] for name, body in blocks}


COMMANDS = readme_commands()


def test_the_readme_has_every_step() -> None:
    assert list(COMMANDS) == ["broker", "worker", "send", "inspect", "debug"]
    assert COMMANDS["broker"][0].startswith("redis-server"), "the step this test replaces"
    assert COMMANDS["worker"] == ["qtasks -A async_app:app run"]


class Example:
    """A copy of the example with its workers, run in its own directory."""

    def __init__(self, directory: Path, module: str, store: str, broker_url: str) -> None:
        self.directory = directory
        self.module = module
        self.store = store
        self.env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # python, qtasks, qstate
            "BROKER_URL": broker_url,
            "QSTATE_HISTFILE": os.devnull,
        }
        self.env.pop("QSTATE_URL", None)
        self.workers: list[subprocess.Popen[bytes]] = []

    def argv(self, line: str) -> list[str]:
        return shlex.split(line.replace("async_app", self.module))

    def start_workers(self, line: str, count: int) -> None:
        for _ in range(count):
            with (self.directory / f"worker{len(self.workers)}.log").open("wb") as log:
                worker = subprocess.Popen(
                    self.argv(line), cwd=self.directory, env=self.env,
                    stdout=log, stderr=subprocess.STDOUT,
                )  # fmt: skip
            self.workers.append(worker)
        deadline = time.monotonic() + 60
        for index, worker in enumerate(self.workers):
            log_file = self.directory / f"worker{index}.log"
            while "Starting QueueTasks" not in log_file.read_text(errors="replace"):
                assert worker.poll() is None, f"worker {index} exited:\n{self.logs()}"
                assert time.monotonic() < deadline, f"worker {index} did not start:\n{self.logs()}"
                time.sleep(0.2)

    @property
    def pids(self) -> set[int]:
        return {worker.pid for worker in self.workers}

    def run(self, line: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            self.argv(line), cwd=self.directory, env=self.env, input=stdin,
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert result.returncode == 0, f"{line}: {result.stderr}\n{self.logs()}"
        return result.stdout

    def logs(self) -> str:
        return "\n".join(
            log.read_text(errors="replace")[-3000:] for log in self.directory.glob("*.log")
        )

    def stop(self) -> None:
        for worker in self.workers:
            worker.terminate()
        for worker in self.workers:
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def use_redis(config: Path, url: str) -> None:
    """Put qstate.toml's Redis line in place of the file: one, as the README says."""
    text = config.read_text(encoding="utf-8")
    file_line = re.search(r'^url = "file:.*"$', text, re.MULTILINE)
    redis_line = re.search(r'^# url = "redis://.*"$', text, re.MULTILINE)
    assert file_line, "qstate.toml has a file: line"
    assert redis_line, "qstate.toml has a commented Redis line"
    text = text.replace(file_line[0], f"# {file_line[0]}")
    config.write_text(text.replace(redis_line[0], f'url = "{url}"'), encoding="utf-8")


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A private server for this test only: the broker's queues and, maybe, the states."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def example(
    request: pytest.FixtureRequest, redis: RedisServer, tmp_path: Path
) -> Iterator[Example]:
    flavour, store = request.param
    directory = tmp_path / "qtasks"
    shutil.copytree(EXAMPLE, directory, ignore=shutil.ignore_patterns(".qstate", "__pycache__"))
    if store == "redis":
        use_redis(directory / "qstate.toml", f"redis://127.0.0.1:{redis.port}/1")
    running = Example(directory, f"{flavour}_app", store, f"redis://127.0.0.1:{redis.port}/0")
    yield running
    running.stop()


# The sync flavour runs on the file store only: QTasks 1.7.3's sync worker takes
# about a second per task per process, so its 200 tasks are the slowest part of
# the suite; the Redis store is the same qstate code in both flavours.
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.parametrize(
    "example", [("async", "file"), ("sync", "file"), ("async", "redis")],
    ids=["async-file", "sync-file", "async-redis"], indirect=True,
)  # fmt: skip
def test_the_readme_walkthrough(example: Example, redis: RedisServer) -> None:
    [worker] = COMMANDS["worker"]
    example.start_workers(worker, count=2)

    results: dict[str, list[Any]] = {}
    for line in COMMANDS["send"]:
        task = example.argv(line)[2]
        results[task] = [json.loads(out) for out in example.run(line).splitlines()]
    assert results.keys() == {"step1", "step2", "add_item", "visit", "incr"}
    assert results["step1"] == ["ok"]
    assert results["step2"] == [SEED], "step2 saw step1's state, whichever worker ran it"
    assert results["add_item"] == [{"items": ["tea"]}]
    [visited] = results["visit"]
    assert visited["last_worker"] in example.pids, "QTasks' own state class, on qstate"
    hits = results["incr"]
    assert sorted(hit["hits"] for hit in hits) == list(range(1, 201)), "no lost increment"
    assert {hit["worker"] for hit in hits} == example.pids, "both workers shared the counter"

    expected: dict[str, Any] = {
        "qstate list": lambda out: (
            {s["state"] for s in json.loads(out)} == {"MyState", "Cart", "Counter", "Visits"}
        ),
        "qstate get MyState": lambda out: json.loads(out) == {"step": 2, "prompt": SEED["prompt"]},
        "qstate get Counter hits": lambda out: out == "200\n",
        "qstate get --scope 42 Cart": lambda out: json.loads(out) == {"items": ["tea"]},
        "qstate get Visits": lambda out: json.loads(out) == visited,
    }
    for line in COMMANDS["inspect"]:
        if line == "qstate shell":
            out = example.run(line, stdin="use MyState\nget step\n")
            assert out.endswith("2\n"), out
            continue
        assert expected[line](example.run(line)), line
    assert set(expected) | {"qstate shell"} == set(COMMANDS["inspect"])

    debug(example)

    in_redis = redis.command("-n", "1", "--scan", "--pattern", "qstate:*")
    in_file = (example.directory / ".qstate" / "state.db").is_file()
    if example.store == "redis":
        assert ("qstate:{MyState}" in in_redis, in_file) == (True, False), "as qstate.toml says"
    else:
        assert (in_redis, in_file) == ("", True), "as qstate.toml says"


def debug(example: Example) -> None:
    """Step 5: a stuck step2, its history, a restore, and step2 again under watch."""
    lines = iter(COMMANDS["debug"])
    [stuck] = [json.loads(out) for out in example.run(next(lines)).splitlines()]
    assert stuck["error"] == "step1 has not run"
    assert json.loads(example.run(next(lines))) == {"step": 2, "prompt": SEED["prompt"]}
    history = json.loads(example.run(next(lines)))
    assert [c["rev"] for c in history] == [1, 2, 3, 4]
    assert [c["origin"]["task"] for c in history] == ["step1", "step1", "step2", "step2"]
    assert {c["origin"]["pid"] for c in history} <= example.pids, "written by the workers"
    assert history[-1]["changes"] == [{"key": "state", "old": "await_phone"}], "step2 took it"
    assert example.run(next(lines)) == "", "restore: its summary goes to stderr"
    watch_line = next(lines)
    assert watch_line.startswith("qstate watch")
    watcher = subprocess.Popen(
        example.argv(watch_line), cwd=example.directory, env=example.env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert [json.loads(out) for out in example.run(next(lines)).splitlines()] == [SEED]
        out, err = watcher.communicate(timeout=60)
    finally:
        watcher.kill()
    assert watcher.returncode == 0, err
    seen = [json.loads(line) for line in out.splitlines()]
    assert [(c["rev"], c["origin"]["task"]) for c in seen] == [(6, "step2"), (7, "step2")]
    assert next(lines, None) is None
