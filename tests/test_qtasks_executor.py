"""QTasks' real task executors, in process: how states reach a sync task.

QTasks 1.7.3's sync executor drops every ``task_executor_args_replace`` result
(``if not kw:`` where it means ``if kw:``), so qstate's sync plugin also fills
the states in on ``task_executor_before_execute``. These tests run QTasks' own
executor as shipped, and the same executor with that line fixed, and count the
states made: exactly one per parameter either way, so a QTasks release with the
fix changes nothing.

No ``from __future__ import annotations``: QTasks' pydantic plugin cannot read
string annotations (QTasks 1.7).
"""

import uuid
from typing import Annotated, Any, ClassVar

import pytest
from qtasks import QueueTasks
from qtasks.executors.sync_task_executor import SyncTaskExecutor
from qtasks.plugins.states import SyncState as QTasksSyncState
from qtasks.schemas.task_exec import TaskPrioritySchema

from qstate import Scope, State, StateRegistry
from qstate.integrations.qtasks import QStatePlugin, register


class Counted(State):
    """Counts how many states the plugins make for one call."""

    made: ClassVar[int] = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        type(self).made += 1
        super().__init__(*args, **kwargs)


class Legacy(QTasksSyncState):  # QTasks' own class, as tasks written for QTasks use it
    made: ClassVar[int] = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        type(self).made += 1
        super().__init__(*args, **kwargs)


class FixedSyncTaskExecutor(SyncTaskExecutor):
    """QTasks' sync executor with its bug fixed: the args_replace result is used,
    as the async executor does. (No ``echo`` support: the tests do not use it.)"""

    _args: list[Any]
    _kwargs: dict[str, Any]

    def before_execute(self) -> None:
        func_args = self._extract_args_kwargs_from_func(self.task_func.func)
        replaced = self._plugin_trigger(
            "task_executor_args_replace",
            task_executor=self,
            args=self._args,
            kw=self._kwargs,
            args_info=self._build_args_info(*func_args),
            return_last=True,
        )
        if replaced:
            self._args = replaced.get("args") or self._args
            self._kwargs = replaced.get("kw", self._kwargs)
        self._plugin_trigger("task_executor_before_execute", task_executor=self)


@pytest.fixture
def app() -> QueueTasks:
    """A sync app; nothing connects to its broker, the executors are driven by hand."""
    Counted.made = Legacy.made = 0
    return QueueTasks(name="qstate_executor_test", broker_url="redis://127.0.0.1:1/0")


def execute(
    app: QueueTasks, executor: type[SyncTaskExecutor], name: str, *args: Any, **kwargs: Any
) -> Any:
    """Run one task the way QTasks' sync worker does, minus the broker."""
    task = TaskPrioritySchema(priority=0, uuid=uuid.uuid4(), name=name, args=list(args),
                              kwargs=kwargs)  # fmt: skip
    return executor(
        task_func=app.tasks[name], task_broker=task, plugins=app.worker.plugins
    ).execute(decode=False)


EXECUTORS = [
    pytest.param(SyncTaskExecutor, id="qtasks-1.7.3"),
    pytest.param(FixedSyncTaskExecutor, id="qtasks-fixed"),
]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_sync_tasks_get_one_qstate_state_per_parameter(
    app: QueueTasks, executor: type[SyncTaskExecutor]
) -> None:
    registry = StateRegistry("memory://")
    register(app, registry)

    @app.task
    def step1(state: Counted) -> Any:
        state.update(step=1, prompt="Введите телефон")
        return type(state).__name__

    @app.task
    def add_item(user_id: int, item: str, cart: Annotated[Counted, Scope("user_id")]) -> Any:
        return cart.modify(lambda d: {**d, "items": [*d.get("items", []), item]})

    assert execute(app, executor, "step1") == "Counted"
    assert Counted.made == 1, "made once: not again on the second hook"
    assert registry.state("Counted").get_all() == {"step": 1, "prompt": "Введите телефон"}
    assert execute(app, executor, "add_item", 42, item="tea") == {"items": ["tea"]}
    assert Counted.made == 2
    assert registry.state("Counted", scope="42").get_all() == {"items": ["tea"]}
    tasks = [change.as_dict()["origin"]["task"] for change in registry.state("Counted").history()]
    assert tasks == ["step1"], "each change is labelled with the task that made it"
    assert (
        registry.state("Counted", scope="42").history()[0].as_dict()["origin"]["task"]
        == "add_item"
    )
    registry.state("Counted").set("after", True)
    assert "task" not in registry.state("Counted").history()[-1].as_dict()["origin"], (
        "not after the task"
    )

    @app.task
    def fails(state: Counted) -> None:
        state.set("tried", True)
        raise RuntimeError("the task's own failure")

    with pytest.raises(RuntimeError, match="own failure"):
        execute(app, executor, "fails")
    registry.state("Counted").set("after", False)
    *_, tried, after = registry.state("Counted").history()
    assert tried.as_dict()["origin"]["task"] == "fails"
    assert "task" not in after.as_dict()["origin"], "a failed task leaves no label behind"


@pytest.mark.parametrize("executor", EXECUTORS)
def test_qtasks_sync_state_classes_are_backed_by_qstate(
    app: QueueTasks, executor: type[SyncTaskExecutor]
) -> None:
    registry = StateRegistry("memory://")
    register(app, registry)

    @app.task
    def visit(visits: Legacy) -> Any:
        visits.update(step=1)
        return visits.get_all()

    assert execute(app, executor, "visit") == {"step": 1}
    # QTasks' own plugin makes one on its in-memory registry (dropped by QTasks
    # 1.7.3, replaced by qstate's once fixed); qstate makes one, on its adapter.
    assert Legacy.made == 2
    assert registry.state("Legacy").get_all() == {"step": 1}


def test_a_state_passed_by_the_caller_is_kept(app: QueueTasks) -> None:
    plugin = register(app, StateRegistry("memory://"))
    assert isinstance(plugin, QStatePlugin)
    mine = Counted(StateRegistry("memory://"), scope="mine")

    @app.task
    def step(state: Counted) -> Any:
        return state.scope

    assert execute(app, FixedSyncTaskExecutor, "step", mine) == "mine"
