"""qstate in a real QTasks app (PyPI ``qtasks``, the ``qstate[qtasks]`` extra).

    from qtasks.asyncio import QueueTasks
    from qstate.integrations.qtasks import register

    app = QueueTasks(broker_url="redis://localhost:6379/0")
    register(app, "redis://localhost:6379/1")

After ``register``, a task parameter annotated with a qstate ``AsyncState`` (or
``State`` in a sync app) subclass receives a state on the given backend, with
``Scope`` support as in :mod:`qstate.plugin`. Tasks written for QTasks' own
``qtasks.plugins.states.AsyncState`` / ``SyncState`` need no change either:
their states are built on an adapter, so their reads and writes go to qstate.

Without a URL, ``register(app)`` finds the store as the ``qstate`` command
does (``QSTATE_URL``, then ``qstate.toml`` or ``[tool.qstate]`` upward from the
current directory), so workers and ``qstate get`` started in one project agree.

In an async app, QTasks' worker runs its own state plugin first; this one is
added after it on the same ``task_executor_args_replace`` trigger, and QTasks
passes each plugin's arguments to the next, so the states the task finally
gets are these.

Sync apps cannot use that trigger: QTasks 1.7.3's sync executor drops every
``task_executor_args_replace`` result (it tests ``if not kw:`` where it means
``if kw:``), so even its own ``SyncState`` never reaches a task. The sync plugin
listens on ``task_executor_before_execute`` instead, which runs right after it
and gets the executor itself, and puts the states into the executor's
arguments. It works the same once QTasks honours the first trigger: what QTasks'
own plugin put there is replaced as on the async side, and each state is made
once.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from qtasks.plugins.base import BasePlugin
from qtasks.plugins.states import AsyncState as QTasksAsyncState
from qtasks.plugins.states import SyncState as QTasksSyncState

from .._async.registry import AsyncStateRegistry
from .._async.state import AsyncState
from .._inject import StateParameter, fill_states, find_state_parameters
from .._keys import check_name
from .._origin import acting_as
from .._sync.registry import StateRegistry
from .._sync.state import State

__all__ = ["AsyncQStatePlugin", "QStatePlugin", "register"]

TRIGGER = "task_executor_args_replace"
BEFORE_EXECUTE = "task_executor_before_execute"


class _QTasksRegistry:
    """QTasks' registry interface (``get(state_cls, key, default)``...) on qstate."""

    def __init__(self, registry: StateRegistry) -> None:
        self._registry = registry

    def _state(self, state_cls: type) -> State:
        return self._registry.state(check_name(state_cls.__name__))

    def get(self, state_cls: type, key: str, default: Any = None) -> Any:
        return self._state(state_cls).get(key, default)

    def set(self, state_cls: type, key: str, value: Any) -> None:
        self._state(state_cls).set(key, value)

    def update(self, state_cls: type, mapping: dict[str, Any]) -> dict[str, Any]:
        return self._state(state_cls).update(mapping)

    def get_all(self, state_cls: type) -> dict[str, Any]:
        return self._state(state_cls).get_all()

    def delete(self, state_cls: type, key: str) -> None:
        self._state(state_cls).delete(key)

    def clear(self, state_cls: type) -> None:
        self._state(state_cls).clear()


class _AsyncQTasksRegistry:
    """The async twin of :class:`_QTasksRegistry`."""

    def __init__(self, registry: AsyncStateRegistry) -> None:
        self._registry = registry

    def _state(self, state_cls: type) -> AsyncState:
        return self._registry.state(check_name(state_cls.__name__))

    async def get(self, state_cls: type, key: str, default: Any = None) -> Any:
        return await self._state(state_cls).get(key, default)

    async def set(self, state_cls: type, key: str, value: Any) -> None:
        await self._state(state_cls).set(key, value)

    async def update(self, state_cls: type, mapping: dict[str, Any]) -> dict[str, Any]:
        return await self._state(state_cls).update(mapping)

    async def get_all(self, state_cls: type) -> dict[str, Any]:
        return await self._state(state_cls).get_all()

    async def delete(self, state_cls: type, key: str) -> None:
        await self._state(state_cls).delete(key)

    async def clear(self, state_cls: type) -> None:
        await self._state(state_cls).clear()


class _Replacer:
    """The work of the trigger, shared by the sync and async plugins."""

    def __init__(self, registry: Any, qstate_base: type, qtasks_base: type, adapter: Any) -> None:
        self.registry = registry
        self._qstate_base = qstate_base
        self._qtasks_base = qtasks_base
        self._adapter = adapter
        self._cache: dict[Callable[..., Any], tuple[inspect.Signature, list[StateParameter]]] = {}

    def _is_state(self, annotation: Any) -> bool:
        return isinstance(annotation, type) and issubclass(
            annotation, (self._qstate_base, self._qtasks_base)
        )

    def replace(self, task_executor: Any, args: list[Any], kw: dict[str, Any]) -> dict[str, Any]:
        func = task_executor.task_func.func
        if func not in self._cache:  # read once per task function
            self._cache[func] = find_state_parameters(func, self._is_state)
        signature, parameters = self._cache[func]
        new_args, new_kw = fill_states(signature, parameters, args, kw, self._make, self._is_ours)
        return {"args": new_args, "kw": new_kw}

    def fill(self, task_executor: Any) -> None:
        """Put the states into the executor's own arguments, which it calls the task with."""
        result = self.replace(task_executor, task_executor._args, task_executor._kwargs)
        task_executor._args, task_executor._kwargs = result["args"], result["kw"]

    def _make(self, parameter: StateParameter, scope: str | None) -> object:
        state_class: Any = parameter.state_class
        if issubclass(state_class, self._qtasks_base):
            return state_class(self._adapter, state_class)  # QTasks' constructor
        return state_class(self.registry, scope=scope)

    def _is_ours(self, value: Any) -> bool:
        """A qstate state is kept; QTasks' own plugin's states are replaced."""
        return isinstance(value, self._qstate_base)


class AsyncQStatePlugin(BasePlugin):  # type: ignore[misc]
    """The plugin for ``qtasks.asyncio.QueueTasks`` apps."""

    def __init__(self, registry: AsyncStateRegistry | str | None = None) -> None:
        super().__init__(name="qstate")
        registry = (
            registry if isinstance(registry, AsyncStateRegistry) else AsyncStateRegistry(registry)
        )
        self.registry = registry
        self._replacer = _Replacer(
            registry, AsyncState, QTasksAsyncState, _AsyncQTasksRegistry(registry)
        )

    async def start(self, *args: Any, **kwargs: Any) -> None:
        pass

    async def stop(self, *args: Any, **kwargs: Any) -> None:
        pass

    async def trigger(self, name: str, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        if name == TRIGGER:
            return self._replacer.replace(kwargs["task_executor"], kwargs["args"], kwargs["kw"])
        if name == BEFORE_EXECUTE:
            _label(kwargs["task_executor"])
        return None


class QStatePlugin(BasePlugin):  # type: ignore[misc]
    """The plugin for sync ``qtasks.QueueTasks`` apps (on ``task_executor_before_execute``:
    see the module docstring for why)."""

    def __init__(self, registry: StateRegistry | str | None = None) -> None:
        super().__init__(name="qstate")
        registry = registry if isinstance(registry, StateRegistry) else StateRegistry(registry)
        self.registry = registry
        self._replacer = _Replacer(registry, State, QTasksSyncState, _QTasksRegistry(registry))

    def start(self, *args: Any, **kwargs: Any) -> None:
        pass

    def stop(self, *args: Any, **kwargs: Any) -> None:
        pass

    def trigger(self, name: str, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        if name == BEFORE_EXECUTE:
            self._replacer.fill(kwargs["task_executor"])
            _label(kwargs["task_executor"])
        return None


def _label(task_executor: Any) -> None:
    """Log the changes the task makes with its name (the ``origin`` ``qstate history`` shows).

    QTasks calls the executor's ``run_task`` right after this hook, in the
    task's own context or, for a sync task with ``max_time``, in a thread of
    its own; wrapping it in ``acting_as`` labels exactly the task's writes,
    and the label ends with it, also when the task raises.
    """
    run = task_executor.run_task
    name = task_executor.task_func.name
    labelled: Callable[[], Any]
    if inspect.iscoroutinefunction(run):

        async def labelled() -> Any:
            with acting_as(name):
                return await run()

    else:

        def labelled() -> Any:
            with acting_as(name):
                return run()

    task_executor.run_task = labelled


def register(app: Any, registry: Any = None) -> AsyncQStatePlugin | QStatePlugin:
    """Add qstate to a QTasks app's worker; ``registry`` is a registry or a URL
    (default: the same resolution as everywhere, QSTATE_URL and so on)."""
    from qtasks.asyncio import QueueTasks as AsyncQueueTasks

    plugin: AsyncQStatePlugin | QStatePlugin
    if isinstance(app, AsyncQueueTasks):
        plugin = AsyncQStatePlugin(registry)
        triggers = [TRIGGER, BEFORE_EXECUTE]
    else:
        plugin = QStatePlugin(registry)
        triggers = [BEFORE_EXECUTE]
    app.add_plugin(plugin, trigger_names=triggers, component="worker")
    return plugin
