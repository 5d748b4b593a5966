"""Injecting states into functions: the QTasks mechanism, for any function.

    plugin = AsyncStatePlugin("redis://localhost:6379/0")

    @plugin.inject
    async def step1(user_id: int, state: Annotated[Checkout, Scope("user_id")]) -> None:
        await state.set("step", 1)

    await step1(42)              # state is Checkout(registry, scope="42")

The signature is read once, at decoration; each call then creates the states
bound to the plugin's registry, unless the caller passed one (or anything that
is not None) for that parameter. ``StatePlugin`` does the same for ``def``
functions and ``State`` classes. Changes made inside an injected function are
logged with its name as their ``origin``'s task (see ``qstate history``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ._async.registry import AsyncStateRegistry
from ._async.state import AsyncState
from ._errors import UsageError
from ._inject import Scope, StateParameter, fill_states, find_state_parameters
from ._origin import acting_as
from ._sync.registry import StateRegistry
from ._sync.state import State

__all__ = ["AsyncStatePlugin", "Scope", "StatePlugin"]

T = TypeVar("T")


def _is_class_of(base: type) -> Callable[[Any], bool]:
    return lambda annotation: isinstance(annotation, type) and issubclass(annotation, base)


class _Injector:
    """What both plugins share: reading signatures and binding states per call."""

    _state_base: type
    _other_base: type
    _wants_coroutine: bool

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def _parameters(
        self, func: Callable[..., Any]
    ) -> tuple[inspect.Signature, list[StateParameter]]:
        kind = "async def" if self._wants_coroutine else "def"
        if inspect.iscoroutinefunction(func) != self._wants_coroutine:
            raise UsageError(
                f"{type(self).__name__} injects into {kind} functions; "
                f"{func.__qualname__} is not one (use the other plugin)"
            )
        _, wrong = find_state_parameters(func, _is_class_of(self._other_base))
        if wrong:
            raise UsageError(
                f"parameter {wrong[0].name!r} of {func.__qualname__} is a "
                f"{self._other_base.__name__}, but {func.__qualname__} is a {kind} function: "
                f"annotate it with a {self._state_base.__name__} subclass"
            )
        return find_state_parameters(func, _is_class_of(self._state_base))

    def bind(
        self,
        signature: inspect.Signature,
        parameters: list[StateParameter],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> tuple[list[Any], dict[str, Any]]:
        """The call's arguments with a state for every state parameter not passed."""
        return fill_states(signature, parameters, args, kwargs, self._make, _given)

    def _make(self, parameter: StateParameter, scope: str | None) -> object:
        return parameter.state_class(self.registry, scope=scope)


def _given(value: Any) -> bool:
    """A caller's value for a state parameter is kept, unless it is None."""
    return value is not None


class StatePlugin(_Injector):
    """Injects ``State`` parameters of ``def`` functions (QTasks' SyncStatePlugin)."""

    _state_base = State
    _other_base = AsyncState
    _wants_coroutine = False

    def __init__(self, registry: StateRegistry | str | None = None) -> None:
        super().__init__(
            registry if isinstance(registry, StateRegistry) else StateRegistry(registry)
        )

    def inject(self, func: Callable[..., T]) -> Callable[..., T]:
        """Decorate ``func`` so that its state parameters are filled in.

        The result is typed ``Callable[..., T]``: type checkers cannot express
        "the same parameters, minus the injected ones".
        """
        signature, parameters = self._parameters(func)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            new_args, new_kwargs = self.bind(signature, parameters, args, kwargs)
            with acting_as(func.__qualname__):
                return func(*new_args, **new_kwargs)

        return wrapper


class AsyncStatePlugin(_Injector):
    """Injects ``AsyncState`` parameters of ``async def`` functions (QTasks' AsyncStatePlugin)."""

    _state_base = AsyncState
    _other_base = State
    _wants_coroutine = True

    def __init__(self, registry: AsyncStateRegistry | str | None = None) -> None:
        super().__init__(
            registry if isinstance(registry, AsyncStateRegistry) else AsyncStateRegistry(registry)
        )

    def inject(self, func: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        """Decorate ``func`` so that its state parameters are filled in."""
        signature, parameters = self._parameters(func)

        @functools.wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> T:
            new_args, new_kwargs = self.bind(signature, parameters, args, kwargs)
            with acting_as(func.__qualname__):
                return await func(*new_args, **new_kwargs)

        return wrapper
