"""A real QTasks app: worker processes, tasks through a Redis broker, qstate states.

After the tasks ran, the CLI (another process) sees what they wrote, on the
Redis backend and on the file backend; two workers share one state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qstate import StateRegistry

pytestmark = [pytest.mark.redis, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
QSTATE = str(Path(sys.executable).parent / "qstate")


class Workers:
    """QTasks worker processes running tests/qtasks_app.py, and a client for them."""

    def __init__(self, broker_url: str, qstate_url: str, log_dir: Path) -> None:
        self.env = {
            **os.environ,
            "BROKER_URL": broker_url,
            "QSTATE_URL": qstate_url,
            "PYTHONPATH": str(HERE),
        }
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, count: int = 1) -> None:
        started = []
        for index in range(count):
            log_path = self.log_dir / f"worker{len(self.processes)}-{index}.log"
            with log_path.open("wb") as log:
                worker = subprocess.Popen(
                    [sys.executable, str(HERE / "qtasks_app.py")],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            self.processes.append(worker)
            started.append((worker, log_path))
        deadline = time.monotonic() + 60  # the workers import QTasks and connect
        for worker, log_path in started:
            while "Starting QueueTasks" not in log_path.read_text(errors="replace"):
                assert worker.poll() is None, f"a worker exited:\n{self.logs()}"
                assert time.monotonic() < deadline, f"a worker did not start:\n{self.logs()}"
                time.sleep(0.2)

    def run(self, *calls: tuple[Any, ...]) -> list[Any]:
        """Add tasks (name, *kwargs pairs) concurrently; wait for their results."""
        script = (
            "import asyncio, json, sys\n"
            "from qtasks_app import app\n"
            "async def main():\n"
            "    calls = json.loads(sys.argv[1])\n"
            "    adding = (app.add_task(n, timeout=30, **kw) for n, kw in calls)\n"
            "    tasks = await asyncio.gather(*adding)\n"
            "    print(json.dumps([[t.status, t.returning] for t in tasks]))\n"
            "asyncio.run(main())\n"
        )
        payload = json.dumps([[call[0], call[1] if len(call) > 1 else {}] for call in calls])
        out = subprocess.run(
            [sys.executable, "-c", script, payload], env=self.env, capture_output=True,
            text=True, timeout=120, check=True,
        )  # fmt: skip
        results = json.loads(out.stdout.strip().splitlines()[-1])
        assert all(status == "success" for status, _ in results), (results, self.logs())
        return [value for _, value in results]

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in self.log_dir.glob("*.log"))

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(params=["redis", "file"])
def workers(request: pytest.FixtureRequest, redis_url: str, tmp_path: Path) -> Iterator[Workers]:
    broker = redis_url.rsplit("/", 1)[0] + "/1"
    store = redis_url if request.param == "redis" else f"file:{tmp_path}/state.db"
    running = Workers(broker, store, tmp_path)
    yield running
    running.stop()


def cli(workers: Workers, *args: str) -> Any:
    out = subprocess.run(
        [QSTATE, "--json", *args], env=workers.env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_seed_scenario_through_a_real_worker(workers: Workers) -> None:
    workers.start()
    assert workers.run(("step1",)) == ["ok"]
    assert cli(workers, "get", "MyState") == {
        "state": "await_phone",
        "step": 1,
        "prompt": "Введите телефон",
    }
    [seen] = workers.run(("step2",))
    assert seen == {"state": "await_phone", "step": 1, "prompt": "Введите телефон"}
    assert cli(workers, "get", "MyState") == {"step": 2, "prompt": "Введите телефон"}
    with StateRegistry(workers.env["QSTATE_URL"]) as registry:
        past = registry.state("MyState").history()
    assert [c.as_dict()["origin"]["task"] for c in past] == ["step1", "step1", "step2", "step2"]
    assert len({c.as_dict()["origin"]["pid"] for c in past}) == 1, (
        "the worker's pid, not the test's"
    )
    assert past[0].as_dict()["origin"]["pid"] != os.getpid()


def test_unchanged_qtasks_state_classes_are_backed_by_qstate(workers: Workers) -> None:
    workers.start()
    [written] = workers.run(("legacy",))
    assert written["step"] == 1
    assert cli(workers, "get", "Legacy") == written, "another process sees it: not in-memory"
    with StateRegistry(workers.env["QSTATE_URL"]) as registry:
        [change] = registry.state("Legacy").history()
    assert change.as_dict()["origin"]["task"] == "legacy"


def test_scopes_from_task_arguments(workers: Workers) -> None:
    workers.start()
    workers.run(
        ("add_item", {"user_id": 1, "item": "tea"}),
        ("add_item", {"user_id": 2, "item": "milk"}),
    )
    workers.run(("add_item", {"user_id": 1, "item": "cake"}))
    assert cli(workers, "get", "--scope", "1", "Checkout") == {"items": ["tea", "cake"]}
    assert cli(workers, "get", "--scope", "2", "Checkout") == {"items": ["milk"]}


def test_two_workers_share_one_state(workers: Workers) -> None:
    workers.start(2)
    results = workers.run(*[("count",)] * 12)
    assert sorted(results) == list(range(1, 13)), "no lost update across workers"
    state = cli(workers, "get", "MyState")
    assert state["count"] == 12
    assert len(state["workers"]) == 2, f"both workers ran tasks: {state}"


def test_state_survives_a_worker_restart(workers: Workers) -> None:
    workers.start()
    workers.run(("step1",))
    workers.stop()
    workers.processes.clear()
    workers.start()
    [seen] = workers.run(("step2",))
    assert seen["state"] == "await_phone", "the new worker read what the old one wrote"
