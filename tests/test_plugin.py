"""The injection plugin on plain functions: annotation forms, passthrough, errors, scopes."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Optional

import pytest

from qstate import (
    AsyncState,
    AsyncStateRegistry,
    Scope,
    State,
    StateRegistry,
    UsageError,
)
from qstate.plugin import AsyncStatePlugin, StatePlugin


class Cart(State):
    pass


class AsyncCart(AsyncState, name="Cart"):
    pass


class Other(State):
    pass


@pytest.fixture
def plugin() -> StatePlugin:
    return StatePlugin("memory://")


def test_every_annotation_form(plugin: StatePlugin) -> None:
    @plugin.inject
    def plain(state: Cart) -> Cart:
        return state

    @plugin.inject
    def annotated(state: Annotated[Cart, "some other metadata"]) -> Cart:
        return state

    @plugin.inject
    def optional(state: Cart | None = None) -> Cart | None:
        return state

    @plugin.inject
    def old_optional(state: Optional[Cart] = None) -> Cart | None:  # noqa: UP045 - the old form
        return state

    @plugin.inject
    def annotated_optional(state: Annotated[Cart | None, "x"] = None) -> Cart | None:
        return state

    for func in (plain, annotated, optional, old_optional, annotated_optional):
        state = func()
        assert isinstance(state, Cart)
        assert state.registry is plugin.registry
        state.set("seen", func.__name__)
    assert Cart(plugin.registry).get("seen") == "annotated_optional", "one shared document"


def test_positional_keyword_and_other_arguments(plugin: StatePlugin) -> None:
    @plugin.inject
    def step(user: str, state: Cart, *, note: str = "") -> tuple[str, int | float, str]:
        return user, state.incr("calls"), note

    assert step("ann") == ("ann", 1, "")
    assert step("bob", note="x") == ("bob", 2, "x")
    assert step(user="cid") == ("cid", 3, "")
    assert step.__name__ == "step", "functools.wraps"


def test_a_state_passed_by_the_caller_is_left_alone(plugin: StatePlugin) -> None:
    mine = Cart(StateRegistry("memory://"), scope="mine")

    @plugin.inject
    def step(state: Cart) -> Cart:
        return state

    assert step(mine) is mine
    assert step(state=mine) is mine
    assert step(None) is not mine, "None asks for injection"


def test_scopes_from_the_call(plugin: StatePlugin) -> None:
    @plugin.inject
    def add(user_id: int, item: str, cart: Annotated[Cart, Scope("user_id")]) -> list[Any]:
        data = cart.modify(lambda d: {**d, "items": [*d.get("items", []), item]})
        return list(data["items"])

    @plugin.inject
    def chat(
        chat: int, user: int, cart: Annotated[Cart, Scope(lambda a: f"{a['chat']}:{a['user']}")]
    ) -> str:
        return cart.scope

    assert add(1, "tea") == ["tea"]
    assert add(2, "milk") == ["milk"]
    assert add(user_id=1, item="cake") == ["tea", "cake"]
    assert Cart(plugin.registry, scope=1).get("items") == ["tea", "cake"]
    assert chat(5, 7) == "5:7"

    @plugin.inject
    def unscoped_call(cart: Annotated[Cart, Scope("user_id")], user_id: int | None = None) -> None:
        pass

    with pytest.raises(UsageError, match="did not pass"):
        unscoped_call()


def test_async_plugin() -> None:
    plugin = AsyncStatePlugin("memory://")

    @plugin.inject
    async def step1(state: AsyncCart) -> str:
        await state.set("state", "await_phone")
        await state.update(step=1, prompt="Введите телефон")
        return "ok"

    @plugin.inject
    async def step2(user: int, state: Annotated[AsyncCart, Scope("user")]) -> Any:
        return await state.update(user=user)

    async def main() -> None:
        assert await step1() == "ok"
        assert await AsyncCart(plugin.registry).get_all() == {
            "state": "await_phone",
            "step": 1,
            "prompt": "Введите телефон",
        }
        assert await step2(7) == {"user": 7}
        past = await AsyncCart(plugin.registry).history()
        assert [c.as_dict()["origin"]["task"] for c in past] == [
            "test_async_plugin.<locals>.step1"
        ] * 2
        [scoped] = await AsyncCart(plugin.registry, scope=7).history()
        assert scoped.as_dict()["origin"]["task"].endswith("step2")
        await AsyncCart(plugin.registry).set("after", 1)
        [*_, after] = await AsyncCart(plugin.registry).history()
        assert "task" not in after.as_dict()["origin"], "the label ends with the call"

    asyncio.run(main())
    assert isinstance(plugin.registry, AsyncStateRegistry)


def test_flavour_mismatches_are_errors_at_decoration(plugin: StatePlugin) -> None:
    with pytest.raises(UsageError, match=r"parameter 'state' of .*AsyncState.*def function"):

        @plugin.inject
        def sync_with_async_state(state: AsyncCart) -> None:
            pass

    async_plugin = AsyncStatePlugin("memory://")
    with pytest.raises(UsageError, match=r"parameter 'cart' of .*is a State.*async def"):

        @async_plugin.inject
        async def async_with_sync_state(cart: Cart) -> None:
            pass

    with pytest.raises(UsageError, match="injects into def functions"):

        @plugin.inject
        async def coroutine(state: Cart) -> None:
            pass

    with pytest.raises(UsageError, match="injects into async def functions"):

        @async_plugin.inject  # type: ignore[arg-type]  # the mistake under test
        def not_a_coroutine(state: AsyncCart) -> None:
            pass


def test_ambiguous_and_unresolvable_annotations(plugin: StatePlugin) -> None:
    with pytest.raises(UsageError, match=r"parameter 'state'.*union"):

        @plugin.inject
        def two(state: Cart | Other) -> None:
            pass

    def broken(state: Missing) -> None:  # type: ignore[name-defined]  # noqa: F821
        pass

    with pytest.raises(UsageError, match="cannot read the annotations"):
        plugin.inject(broken)


def test_functions_without_states_are_left_as_they_are(plugin: StatePlugin) -> None:
    @plugin.inject
    def add(a: int, b: int = 2) -> int:
        return a + b

    assert add(1) == 3


def test_default_registry_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("QSTATE_URL", f"file:{tmp_path}/s.db")
    plugin = StatePlugin()

    @plugin.inject
    def step(state: Cart) -> None:
        state.set("a", 1)

    step()
    assert StateRegistry(f"file:{tmp_path}/s.db").state("Cart").get("a") == 1
