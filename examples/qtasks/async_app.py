"""The seed's step1/step2 on a QTasks asyncio app, with the states kept by qstate.

Start a worker:   qtasks -A async_app:app run
Send a task:      python async_app.py step1        (see README.md)

No ``from __future__ import annotations`` here: QTasks 1.7's pydantic plugin
fails on string annotations and then stops the plugins after it.
"""

import argparse
import asyncio
import json
import os
import sys
from typing import Annotated, Any

from qtasks.asyncio import QueueTasks
from qtasks.plugins.states import AsyncState as QTasksAsyncState
from qtasks.results import AsyncResult

from qstate import AsyncState, Scope
from qstate.integrations.qtasks import register

app = QueueTasks(
    name="qstate_example_async",
    broker_url=os.environ.get("BROKER_URL", "redis://localhost:6379/0"),
)
register(app)  # no URL: qstate.toml says where the states are, as for `qstate`


class MyState(AsyncState):  # the seed's state: one document, shared by every worker
    pass


class Cart(AsyncState):  # one document per user: see Scope below
    pass


class Counter(AsyncState):
    pass


class Visits(QTasksAsyncState):  # QTasks' own class: code written for QTasks runs unchanged
    pass


@app.task
async def step1(state: MyState) -> str:
    await state.set("state", "await_phone")
    await state.update(step=1, prompt="Введите телефон")
    return "ok"


@app.task
async def step2(state: MyState) -> Any:
    seen = await state.get_all()
    if await state.get("state") != "await_phone":
        return {"error": "step1 has not run", "seen": seen}
    await state.update(step=2)
    await state.delete("state")  # the seed then clears the state; we keep it to look at
    return seen


@app.task
async def add_item(user_id: int, item: str, cart: Annotated[Cart, Scope("user_id")]) -> Any:
    return await cart.modify(lambda d: {**d, "items": [*d.get("items", []), item]})


@app.task
async def incr(counter: Counter) -> dict[str, Any]:
    return {"hits": await counter.incr("hits"), "worker": os.getpid()}


@app.task
async def visit(visits: Visits) -> Any:
    await visits.update(last_worker=os.getpid())
    return await visits.get_all()


async def send(task: str, kwargs: dict[str, Any], times: int) -> int:
    """Queue the task ``times`` times, so that the workers run them concurrently,
    then wait for each and print its result as JSON."""
    queued = [await app.add_task(task, **kwargs) for _ in range(times)]
    failed = 0
    for added in queued:  # one at a time: 200 waits at once would exhaust the Redis pool
        done = await AsyncResult(uuid=added.uuid, app=app).result(timeout=120)
        if done is None or done.status != "success":
            failed += 1
            print(f"{task}: {done.status if done else 'timed out'}", file=sys.stderr)
        else:
            print(json.dumps(done.returning, ensure_ascii=False))
    return 1 if failed else 0


def value(text: str) -> Any:
    """A NAME=VALUE argument's value: JSON if it parses (42, true, ["a"]), else text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def arguments() -> tuple[str, dict[str, Any], int]:
    parser = argparse.ArgumentParser(description="Send a task to the workers, print its result")
    parser.add_argument("task")
    parser.add_argument("kwargs", nargs="*", metavar="NAME=VALUE", help="VALUE is JSON or text")
    parser.add_argument("--times", type=int, default=1, help="queue it this many times at once")
    args = parser.parse_args()
    pairs = (pair.partition("=") for pair in args.kwargs)
    return args.task, {name: value(text) for name, _, text in pairs}, args.times


if __name__ == "__main__":
    sys.exit(asyncio.run(send(*arguments())))
