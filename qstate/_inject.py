"""Finding the state parameters of a function, once, when it is decorated (pure).

A parameter asks for a state by its annotation: ``state: MyState``,
``state: Annotated[MyState, Scope("user_id")]`` or ``state: MyState | None``.
Misuse (a sync State on an ``async def``, two state classes in one union) is
reported at decoration time with the parameter's name, not at the first call.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from ._errors import UsageError
from ._keys import check_scope


@dataclass(frozen=True)
class Scope:
    """Makes an injected state one document per value of a call argument.

    ``Annotated[CheckoutState, Scope("user_id")]`` gives each ``user_id`` its own
    checkout; ``Scope(lambda args: f"{args['chat']}:{args['user']}")`` computes
    the scope from all the call's arguments (a mapping of name to value).
    """

    source: str | Callable[[Mapping[str, Any]], object]

    def value(self, arguments: Mapping[str, Any], parameter: str) -> str:
        if callable(self.source):
            raw = self.source(arguments)
        else:
            if self.source not in arguments:
                raise UsageError(
                    f"parameter {parameter!r} is scoped by argument {self.source!r}, "
                    "which this call did not pass"
                )
            raw = arguments[self.source]
        return check_scope(raw) or ""


@dataclass(frozen=True)
class StateParameter:
    """One parameter that receives a state."""

    name: str
    state_class: type
    scope: Scope | None
    index: int | None
    """Its position when it can be passed positionally, else None."""


def _unwrap(annotation: Any) -> tuple[Any, Scope | None]:
    """``Annotated[X, ...]`` → X and its Scope; ``X | None`` → X."""
    scope = None
    if get_origin(annotation) is Annotated:
        annotation, *extras = get_args(annotation)
        scope = next((extra for extra in extras if isinstance(extra, Scope)), None)
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            inner, inner_scope = _unwrap(members[0])
            return inner, scope or inner_scope
        return tuple(members), scope
    return annotation, scope


def find_state_parameters(
    func: Callable[..., Any], is_state_class: Callable[[Any], bool]
) -> tuple[inspect.Signature, list[StateParameter]]:
    """The parameters of ``func`` whose annotation ``is_state_class`` accepts."""
    try:
        signature = inspect.signature(func, eval_str=True)
    except (NameError, TypeError) as exc:
        raise UsageError(f"cannot read the annotations of {func.__qualname__}: {exc}") from None
    found = []
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    for index, parameter in enumerate(signature.parameters.values()):
        annotation, scope = _unwrap(parameter.annotation)
        if isinstance(annotation, tuple):
            states = [member for member in annotation if is_state_class(member)]
            if states:
                raise UsageError(
                    f"parameter {parameter.name!r} of {func.__qualname__}: a union of "
                    "several types cannot be injected; annotate it with one state class"
                )
            continue
        if not is_state_class(annotation):
            continue
        found.append(
            StateParameter(
                parameter.name,
                annotation,
                scope,
                index if parameter.kind in positional else None,
            )
        )
    return signature, found


def fill_states(
    signature: inspect.Signature,
    parameters: list[StateParameter],
    args: tuple[Any, ...] | list[Any],
    kwargs: Mapping[str, Any],
    make: Callable[[StateParameter, str | None], object],
    keep: Callable[[Any], bool],
) -> tuple[list[Any], dict[str, Any]]:
    """A call's arguments with ``make(parameter, scope)`` for each state parameter,
    except where the call already holds a value that ``keep`` accepts."""
    new_args, new_kwargs = list(args), dict(kwargs)
    arguments: dict[str, Any] | None = None
    for parameter in parameters:
        index = parameter.index
        positional = index is not None and index < len(new_args)
        given = new_args[index] if positional else new_kwargs.get(parameter.name)  # type: ignore[index]
        if keep(given):
            continue
        scope = None
        if parameter.scope is not None:
            if arguments is None:  # only scoped calls pay for binding the signature
                arguments = dict(signature.bind_partial(*args, **kwargs).arguments)
            scope = parameter.scope.value(arguments, parameter.name) or None
        state = make(parameter, scope)
        if positional:
            new_args[index] = state  # type: ignore[index]
        else:
            new_kwargs[parameter.name] = state
    return new_args, new_kwargs
