"""A real QTasks app for the end-to-end tests: a worker runs it as a script.

The seed's step1/step2, a task written for QTasks' own state class (unchanged
task code), a scoped task, and a counting task that records which worker ran it.
Environment: BROKER_URL (a Redis for QTasks' broker), QSTATE_URL (qstate's store).

No ``from __future__ import annotations`` here: QTasks' own pydantic plugin fails
on string annotations and then stops running the plugins after it (QTasks 1.7).
"""

import asyncio
import os
from typing import Annotated, Any

from qtasks.asyncio import QueueTasks
from qtasks.plugins.states import AsyncState as QTasksAsyncState

from qstate import AsyncState, Scope
from qstate.integrations.qtasks import register

app = QueueTasks(name="qstate_e2e", broker_url=os.environ["BROKER_URL"])
register(app, os.environ["QSTATE_URL"])


class MyState(AsyncState):
    pass


class Checkout(AsyncState):
    pass


class Legacy(QTasksAsyncState):  # QTasks' class: the task code knows nothing of qstate
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
        return {"error": seen}
    await state.update(step=2)
    await state.delete("state")
    return seen


@app.task
async def legacy(state: Legacy) -> Any:
    await state.update(step=1, worker=os.getpid())
    return await state.get_all()


@app.task
async def add_item(user_id: int, item: str, cart: Annotated[Checkout, Scope("user_id")]) -> Any:
    return await cart.modify(lambda d: {**d, "items": [*d.get("items", []), item]})


@app.task
async def count(state: MyState) -> int:
    await asyncio.sleep(0.1)  # long enough for the other worker to take the next task
    pid = str(os.getpid())
    data = await state.modify(
        lambda d: {
            **d,
            "count": d.get("count", 0) + 1,
            "workers": sorted({*d.get("workers", []), pid}),
        }
    )
    return int(data["count"])


if __name__ == "__main__":
    app.run_forever(num_workers=1)
