"""The contract every backend honours, in both flavours.

A backend is correct when it passes these tests like the others. Each test runs
for every (backend, flavour) pair from ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import FrozenInstanceError
from datetime import datetime
from typing import Any

import pytest

from qstate import (
    MAX_DEPTH,
    MAX_INTEGER,
    MIN_INTEGER,
    ChangesLostError,
    ConfigError,
    InvalidNameError,
    InvalidValueError,
    StateInfo,
    UsageError,
    acting_as,
)
from qstate._changes import LOG_SIZE
from qstate._txguard import OPEN_COUNT
from qstate.backends.file import FileBackend
from qstate.backends.file._async import AsyncFileBackend
from tests.conftest import Flavour

SEED_OUTPUT = {"state": "await_phone", "step": 1, "prompt": "Введите телефон"}


def test_seed_scenario(flavour: Flavour, make_state: Any) -> None:
    """The QTasks documentation's step1/step2, with its exact get_all() output."""
    run = flavour.run
    state = make_state("MyState")

    assert run(state.set("state", "await_phone")) is None
    updated = run(state.update(step=1, prompt="Введите телефон"))
    assert updated == SEED_OUTPUT

    # step2, in a fresh object as a second task would get it
    state = make_state("MyState")
    seen = run(state.get_all())
    assert seen == SEED_OUTPUT
    assert repr(seen) == "{'state': 'await_phone', 'step': 1, 'prompt': 'Введите телефон'}"
    assert run(state.get("state")) == "await_phone"
    assert run(state.update(step=2)) == {**SEED_OUTPUT, "step": 2}
    assert run(state.delete("state")) is True
    assert run(state.get_all()) == {"step": 2, "prompt": "Введите телефон"}
    assert run(state.clear()) is True
    assert run(state.get_all()) == {}


def test_get_forms(flavour: Flavour, make_state: Any) -> None:
    run = flavour.run
    state = make_state()
    assert run(state.get("missing")) is None
    assert run(state.get("missing", 7)) == 7
    assert run(state.get()) == {}
    run(state.set("a", None))
    assert run(state.get("a", "default")) is None, "a stored None is a value, not absence"
    assert run(state.get()) == {"a": None}


@pytest.mark.parametrize(
    "value",
    [
        0,
        -1,
        MAX_INTEGER,
        MIN_INTEGER,
        2**62,
        -(2**63) + 1,
        2**53 + 1,
        1.5,
        -0.0,
        1e308,
        5e-324,
        True,
        False,
        None,
        "",
        "plain",
        'Юникод ✓ 😀 \u0000 \t\n \u2028 "quotes" \\',
        [],
        {},
        [1, "two", [3.0, {"four": None}]],
        {"nested": {"deep": [True, {"x": ""}]}, "": "empty key"},
    ],
)
def test_values_round_trip_exactly(flavour: Flavour, make_state: Any, value: Any) -> None:
    run = flavour.run
    state = make_state()
    run(state.set("k", value))
    got = run(state.get("k"))
    assert got == value
    assert type(got) is type(value)
    if isinstance(value, float):
        assert math.copysign(1, got) == math.copysign(1, value)
    assert run(make_state().get("k")) == value


def test_update_forms(flavour: Flavour, make_state: Any) -> None:
    run = flavour.run
    state = make_state()
    assert run(state.update({"a": 1})) == {"a": 1}
    assert run(state.update({"b": 2}, c=3)) == {"a": 1, "b": 2, "c": 3}
    assert run(state.update(a=10)) == {"a": 10, "b": 2, "c": 3}
    assert run(state.update()) == {"a": 10, "b": 2, "c": 3}
    assert run(state.update({"mapping": 1})) == {"a": 10, "b": 2, "c": 3, "mapping": 1}


def test_delete_and_clear_report_what_existed(flavour: Flavour, make_state: Any) -> None:
    run = flavour.run
    state = make_state()
    assert run(state.delete("nope")) is False
    assert run(state.clear()) is False
    run(state.update(a=1, b=2, c=3))
    assert run(state.delete_many(["a", "b", "zz"])) == 2
    assert run(state.get_all()) == {"c": 3}
    assert run(state.delete("c")) is True
    assert run(state.get_all()) == {}
    assert run(state.registry.list_states()) == []


def test_incr(flavour: Flavour, make_state: Any) -> None:
    run = flavour.run
    state = make_state()
    assert run(state.incr("n")) == 1
    assert run(state.incr("n", 41)) == 42
    assert run(state.incr("n", -2)) == 40
    assert run(state.incr("f", 0.5)) == 0.5
    assert run(state.incr("n", 0.5)) == 40.5
    run(state.update(s="text", b=True, big=MAX_INTEGER))
    for key in ("s", "b"):
        with pytest.raises(InvalidValueError, match="not a number"):
            run(state.incr(key))
    with pytest.raises(InvalidValueError, match="overflow"):
        run(state.incr("big"))
    run(state.set("low", MIN_INTEGER))
    with pytest.raises(InvalidValueError, match="overflow"):
        run(state.incr("low", -1))
    assert run(state.get_all())["big"] == MAX_INTEGER, "a refused incr changes nothing"
    assert run(state.incr("low", 2**62)) == MIN_INTEGER + 2**62
    with pytest.raises(InvalidValueError, match="amount"):
        run(state.incr("n", "1"))
    with pytest.raises(InvalidValueError, match="amount"):
        run(state.incr("n", True))
    assert run(state.get_all()) == {
        "n": 40.5,
        "f": 0.5,
        "s": "text",
        "b": True,
        "big": MAX_INTEGER,
        "low": MIN_INTEGER + 2**62,
    }


def test_modify(flavour: Flavour, make_state: Any) -> None:
    run = flavour.run
    state = make_state()
    run(state.set("step", 1))
    assert run(state.modify(lambda d: {**d, "step": d["step"] + 1})) == {"step": 2}

    def in_place(data: dict[str, Any]) -> None:
        data["seen"] = True

    assert run(state.modify(in_place)) == {"step": 2, "seen": True}
    assert run(state.modify(lambda d: {})) == {}
    assert run(state.get_all()) == {}


def test_modify_failures_change_nothing(flavour: Flavour, make_state: Any) -> None:
    run = flavour.run
    state = make_state()
    run(state.set("step", 1))

    def boom(data: dict[str, Any]) -> dict[str, Any]:
        data["step"] = 99
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run(state.modify(boom))
    with pytest.raises(InvalidValueError):
        run(state.modify(lambda d: {"step": object()}))
    with pytest.raises(InvalidValueError):
        run(state.modify(lambda d: ["not", "a", "dict"]))
    with pytest.raises(InvalidNameError):
        run(state.modify(lambda d: {"": 1}))
    assert run(state.get_all()) == {"step": 1}


def test_transaction(flavour: Flavour, make_state: Any) -> None:
    run = flavour.run
    state = make_state()
    run(state.set("step", 1))
    with flavour.transaction(state) as data:
        assert data == {"step": 1}
        data["step"] += 1
        data["new"] = [1]
    assert run(state.get_all()) == {"step": 2, "new": [1]}

    def abandon() -> None:
        with flavour.transaction(state) as data:
            data["step"] = 100
            raise KeyError("abandon")

    with pytest.raises(KeyError):
        abandon()
    assert run(state.get_all()) == {"step": 2, "new": [1]}

    with pytest.raises(InvalidValueError), flavour.transaction(state) as data:
        data["step"] = {1, 2}
    assert run(state.get_all()) == {"step": 2, "new": [1]}

    with flavour.transaction(state) as data:
        data.clear()
    assert run(state.get_all()) == {}


def test_state_used_inside_its_own_transaction_is_refused(
    flavour: Flavour, make_state: Any
) -> None:
    run = flavour.run
    state = make_state()
    other = make_state("Other")
    run(state.set("a", 1))
    with flavour.transaction(state) as data:
        with pytest.raises(UsageError, match="inside its own transaction"):
            run(state.set("a", 2))
        with pytest.raises(UsageError):
            run(make_state().get("a"))
        assert run(other.get_all()) == {}, "reading another state is fine"
        if getattr(state.registry.backend, "locks_store_in_transaction", False):
            with pytest.raises(UsageError, match="write after the block"):
                run(other.set("b", 1))
        else:
            run(other.set("b", 1))
        data["a"] = 3
    assert run(state.get_all()) == {"a": 3}
    run(other.set("b", 1))
    assert run(other.get_all()) == {"b": 1}


def test_the_guard_counts_every_block_until_it_closes(flavour: Flavour, make_state: Any) -> None:
    """Hot paths skip the guard while the count is 0: an undercount would turn
    the guard's UsageError into a self-deadlock."""
    run = flavour.run
    state = make_state()
    before = OPEN_COUNT[0]

    def fail_inside() -> None:
        with flavour.transaction(state) as data:
            assert OPEN_COUNT[0] == before + 1
            with pytest.raises(UsageError):
                run(state.set("a", 1))
            data["a"] = 2
            raise RuntimeError("discarded")

    with pytest.raises(RuntimeError, match="discarded"):
        fail_inside()
    assert OPEN_COUNT[0] == before
    run(state.set("a", 1))
    assert run(state.get_all()) == {"a": 1}


def test_copies_in_and_out(flavour: Flavour, make_state: Any) -> None:
    run = flavour.run
    state = make_state()
    value: dict[str, Any] = {"list": [1, 2], "dict": {"x": 1}}
    run(state.set("v", value))
    value["list"].append(3)
    value["dict"]["x"] = 2
    got = run(state.get("v"))
    assert got == {"list": [1, 2], "dict": {"x": 1}}
    got["list"].append(4)
    everything = run(state.get_all())
    everything["v"]["dict"]["y"] = 1
    everything["other"] = 1
    updated = run(state.update(n=1))
    updated["v"]["list"].clear()
    with flavour.transaction(state) as data:
        kept = data
    kept["v"]["list"].append("late")
    assert run(state.get_all()) == {"v": {"list": [1, 2], "dict": {"x": 1}}, "n": 1}


class _Obj:
    pass


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ((1, 2), "tuple is not a JSON value; pass a list"),
        ({1, 2}, "set is not a JSON value"),
        (_Obj(), "_Obj is not a JSON value"),
        (b"bytes", "bytes is not a JSON value"),
        (float("nan"), "not a JSON number"),
        (float("inf"), "not a JSON number"),
        (MAX_INTEGER + 1, "outside"),
        (MIN_INTEGER - 1, "outside"),
        (_nested(MAX_DEPTH + 1), "nested deeper than 100 levels"),
        (_nested(10_000), "nested deeper than 100 levels"),
        ({1: "int key"}, "JSON object keys must be str"),
        ({"a": [1, {"b": float("-inf")}]}, r"value\['a'\]\[1\]\['b'\]"),
        ("lone \ud800 surrogate", "surrogate"),
    ],
)
def test_bad_values_are_refused_and_change_nothing(
    flavour: Flavour, make_state: Any, value: Any, message: str
) -> None:
    run = flavour.run
    state = make_state()
    run(state.set("keep", 1))
    with pytest.raises(InvalidValueError, match=message):
        run(state.set("k", value))
    with pytest.raises(InvalidValueError):
        run(state.update(k=value, other=2))
    assert run(state.get_all()) == {"keep": 1}


def test_deep_nesting_is_refused(flavour: Flavour, make_state: Any) -> None:
    value: Any = []
    for _ in range(150):
        value = [value]
    with pytest.raises(InvalidValueError, match="nested deeper"):
        flavour.run(make_state().set("deep", value))


@pytest.mark.parametrize("name", ["", "1abc", "has space", "a:b", "a/b", "../x", "{x}", "é", 5])
def test_bad_state_names_are_refused(flavour: Flavour, registry: Any, name: Any) -> None:
    with pytest.raises(InvalidNameError, match="invalid state name"):
        registry.state(name)


@pytest.mark.parametrize("scope", ["", "a{b", "tab\there", "x" * 201, 1.5, True, b"x"])
def test_bad_scopes_are_refused(flavour: Flavour, registry: Any, scope: Any) -> None:
    with pytest.raises(InvalidNameError, match="invalid scope"):
        registry.state("Ok", scope=scope)


@pytest.mark.parametrize("key", ["", 1, None, "x" * 1001, "\udc80"])
def test_bad_keys_are_refused(flavour: Flavour, make_state: Any, key: Any) -> None:
    run = flavour.run
    state = make_state()
    run(state.set("keep", 1))
    with pytest.raises(InvalidNameError, match="invalid key"):
        run(state.set(key, 1))
    if isinstance(key, str):
        with pytest.raises(InvalidNameError):
            run(state.update({key: 1}))
    assert run(state.get_all()) == {"keep": 1}


def test_names_from_class_and_override(flavour: Flavour, registry: Any) -> None:
    run = flavour.run
    plain = flavour.state_class("CheckoutState")(registry)
    renamed = flavour.state_class("Whatever", name="checkout.v2")(registry)
    assert (plain.name, renamed.name) == ("CheckoutState", "checkout.v2")
    run(plain.set("a", 1))
    run(renamed.set("b", 2))
    assert run(registry.state("CheckoutState").get_all()) == {"a": 1}
    assert run(registry.state("checkout.v2").get_all()) == {"b": 2}
    with pytest.raises(UsageError, match="no state name"):
        flavour.base(registry)


def test_scopes_are_separate_documents(flavour: Flavour, make_state: Any) -> None:
    run = flavour.run
    unscoped, alice, bob, numeric = (
        make_state(),
        make_state(scope="alice"),
        make_state(scope="bob"),
        make_state(scope=42),
    )
    run(unscoped.set("who", "nobody"))
    run(alice.set("who", "alice"))
    run(bob.set("who", "bob"))
    run(numeric.set("who", 42))
    assert run(make_state(scope="alice").get("who")) == "alice"
    assert run(make_state(scope="42").get("who")) == 42
    assert run(unscoped.get_all()) == {"who": "nobody"}
    run(alice.clear())
    assert run(bob.get("who")) == "bob"
    assert [(i.name, i.scope, i.keys) for i in run(unscoped.registry.list_states())] == [
        ("MyState", "", 1),
        ("MyState", "42", 1),
        ("MyState", "bob", 1),
    ]


def test_list_states(flavour: Flavour, make_state: Any, registry: Any) -> None:
    run = flavour.run
    run(make_state("Alpha").update(a=1, b=2))
    run(make_state("Beta", scope="s").set("x", 1))
    run(make_state("alphabet").set("x", 1))
    assert run(registry.list_states()) == [
        StateInfo("Alpha", "", 2, None),
        StateInfo("Beta", "s", 1, None),
        StateInfo("alphabet", "", 1, None),
    ]
    assert [i.name for i in run(registry.list_states("Al"))] == ["Alpha"]
    assert run(registry.list_states("Nope")) == []


def test_ttl_expires_and_is_refreshed_by_writes(flavour: Flavour, make_state: Any) -> None:
    run = flavour.run
    # Margins of a second or more: a loaded machine may stall any step that long.
    state = make_state(ttl=2.5)
    run(state.set("a", 1))
    [info] = run(state.registry.list_states())
    assert info.ttl is not None
    assert 0 < info.ttl <= 2.5
    time.sleep(1.5)
    run(state.set("b", 2))  # refreshes: the state now lives 2.5 s from here
    time.sleep(1.5)  # past the first expiry, a second before the refreshed one
    assert run(state.get_all()) == {"a": 1, "b": 2}, "a write refreshed the expiry"
    time.sleep(1.5)
    assert run(state.get("a")) is None, "reads do not refresh the expiry"
    assert run(state.get_all()) == {}
    assert run(state.registry.list_states()) == []
    assert run(state.incr("n")) == 1, "expired data is gone, not resurrected by a write"
    assert run(state.get_all()) == {"n": 1}


def test_ttl_from_class_and_write_without_ttl_keeps_expiry(
    flavour: Flavour, registry: Any
) -> None:
    run = flavour.run
    short = flavour.state_class("Session", ttl=0.3)(registry)
    assert short.ttl == 0.3
    forever = flavour.state_class("Session")(registry, ttl=None)
    run(short.set("a", 1))
    run(forever.set("b", 2))
    time.sleep(0.4)
    assert run(forever.get_all()) == {}
    with pytest.raises(InvalidValueError, match="ttl"):
        flavour.state_class("Session")(registry, ttl=-1)


def test_every_kind_of_write_applies_ttl(flavour: Flavour, make_state: Any) -> None:
    run = flavour.run
    writes: dict[str, Callable[[Any], Any]] = {
        "set": lambda s: s.set("k", 1),
        "update": lambda s: s.update(k=1),
        "incr": lambda s: s.incr("k"),
        "modify": lambda s: s.modify(lambda d: {"k": 1}),
    }
    for name, write in writes.items():
        state = make_state(f"T_{name}", ttl=30)
        run(write(state))
        [info] = run(state.registry.list_states(f"T_{name}"))
        assert info.ttl is not None, name
        assert 25 < info.ttl <= 30, name
    state = make_state("T_tx", ttl=30)
    with flavour.transaction(state) as data:
        data["k"] = 1
    [info] = run(state.registry.list_states("T_tx"))
    assert info.ttl is not None
    assert 25 < info.ttl <= 30


def test_repr_and_properties(flavour: Flavour, make_state: Any, backend_url: str) -> None:
    state = make_state("Shown", scope="u1", ttl=5)
    assert (state.name, state.scope, state.ttl) == ("Shown", "u1", 5.0)
    assert "'Shown' scope='u1'" in repr(state)
    assert state.registry.url.split(":")[0] == backend_url.split(":")[0]


def test_registry_refuses_the_other_flavour(flavour: Flavour, backend_url: str) -> None:
    other = Flavour("sync" if flavour.is_async else "async")
    try:
        with pytest.raises(TypeError, match="Registry"):
            flavour.state_class("X")(other.registry(backend_url))
    finally:
        other.close()


# -- revisions and watch --------------------------------------------------------


def _keeps_revisions(registry: Any) -> bool:
    return bool(registry.backend.keeps_revisions)


def test_every_change_gets_the_next_revision(
    flavour: Flavour, registry: Any, make_state: Any
) -> None:
    """Writes number 1, 2, 3...; a write that changes nothing takes no number."""
    run = flavour.run
    state = make_state()
    if not _keeps_revisions(registry):
        with pytest.raises(UsageError, match="keeps no revisions"):
            run(state.revision())
        with pytest.raises(UsageError, match="keeps no revisions"):
            state.watch()
        return
    assert run(state.revision()) == 0
    steps: list[tuple[Callable[[], Any], int]] = [
        (lambda: state.set("a", 1), 1),
        (lambda: state.set("a", 1), 2),  # a set is a write, even of the same value
        (lambda: state.update(b=[1], c="x"), 3),
        (lambda: state.update(), 3),  # nothing written
        (lambda: state.delete("missing"), 3),
        (lambda: state.delete("c"), 4),
        (lambda: state.incr("a", 2), 5),
        (lambda: state.replace({"a": 3, "b": [1]}), 5),  # the same document
        (lambda: state.replace({"a": 3, "b": [2]}), 6),
        (lambda: state.modify(lambda d: d), 6),
        (lambda: state.modify(lambda d: {**d, "d": None}), 7),
        (lambda: state.clear(), 8),
        (lambda: state.clear(), 8),
        (lambda: state.set("a", True), 9),  # the count goes on after a clear
    ]
    for number, (step, expected) in enumerate(steps):
        run(step())
        assert run(state.revision()) == expected, f"step {number}"
    with flavour.transaction(state) as data:
        data["a"] = 1
    assert run(state.revision()) == 10
    with flavour.transaction(state):
        pass
    assert run(state.revision()) == 10, "a transaction that changed nothing"
    assert run(make_state(scope="other").revision()) == 0, "per state and scope"


def test_watch_yields_each_change_with_what_changed(
    flavour: Flavour, registry: Any, make_state: Any
) -> None:
    if not _keeps_revisions(registry):
        pytest.skip("checked by test_every_change_gets_the_next_revision")
    run = flavour.run
    state = make_state()
    run(state.set("step", 1))
    run(state.update(step=2, prompt="Введите телефон", nested={"a": [1, None]}))
    run(state.incr("n", 2**62))
    run(state.delete_many(["prompt", "missing"]))
    with flavour.transaction(state) as data:
        data["step"] = 3
        del data["nested"]
    run(state.clear())
    changes = flavour.take(state.watch(since=0), 6)
    assert [c.rev for c in changes] == [1, 2, 3, 4, 5, 6]
    assert [c.changes for c in changes] == [
        [{"key": "step", "new": 1}],
        [
            {"key": "step", "old": 1, "new": 2},
            {"key": "prompt", "new": "Введите телефон"},
            {"key": "nested", "new": {"a": [1, None]}},
        ],
        [{"key": "n", "new": 2**62}],
        [{"key": "prompt", "old": "Введите телефон"}],
        [{"key": "step", "old": 2, "new": 3}, {"key": "nested", "old": {"a": [1, None]}}],
        [{"key": "step", "old": 3}, {"key": "n", "old": 2**62}],  # a clear lists every key
    ]
    for change in changes:
        assert change.time.endswith("Z")
        moment = datetime.fromisoformat(change.time.replace("Z", "+00:00"))
        assert abs(moment.timestamp() - time.time()) < 600
        with pytest.raises(FrozenInstanceError):
            change.rev = 0
    assert flavour.take(state.watch(since=4), 1)[0].rev == 5, "since=REV resumes after REV"
    with pytest.raises(UsageError, match="ahead"):
        flavour.take(state.watch(since=7), 1)
    with pytest.raises(InvalidValueError):
        state.watch(since=-1)


def test_watch_sees_changes_made_while_it_waits(
    flavour: Flavour, registry: Any, make_state: Any
) -> None:
    """A watcher blocked on the log is woken by writes made meanwhile, and misses none."""
    if not _keeps_revisions(registry):
        pytest.skip("checked by test_every_change_gets_the_next_revision")
    state = make_state()
    flavour.run(state.set("n", 0))
    count = 50
    if flavour.is_async:

        async def scenario() -> list[Any]:
            watcher = state.watch(since=1)

            async def write() -> None:
                for i in range(count):
                    await asyncio.sleep(0.001 if i % 10 else 0.05)
                    await state.incr("n")

            writer = asyncio.create_task(write())
            got = [await asyncio.wait_for(anext(watcher), 60) for _ in range(count)]
            await writer
            await watcher.aclose()
            return got

        changes = flavour.run(scenario())
    else:

        def write() -> None:
            for i in range(count):
                time.sleep(0.001 if i % 10 else 0.05)
                state.incr("n")

        thread = threading.Thread(target=write)
        watcher = state.watch(since=1)
        thread.start()
        changes = [next(watcher) for _ in range(count)]
        thread.join()
    assert [c.rev for c in changes] == list(range(2, count + 2))
    assert [c.changes[0]["new"] for c in changes] == list(range(1, count + 1))


def test_a_watcher_too_far_behind_gets_an_error_not_a_gap(
    flavour: Flavour, registry: Any, make_state: Any
) -> None:
    if not _keeps_revisions(registry):
        pytest.skip("checked by test_every_change_gets_the_next_revision")
    state = make_state()
    writes = LOG_SIZE + 300
    for i in range(writes):
        flavour.run(state.set("i", i))
    with pytest.raises(ChangesLostError, match="no longer kept"):
        flavour.take(state.watch(since=0), 1)
    [latest] = flavour.take(state.watch(since=writes - 1), 1)
    assert latest.rev == writes
    # the past beyond the log is refused too, and nothing changes
    for past in (state.restore, state.as_of):
        with pytest.raises(ChangesLostError, match="no longer kept"):
            flavour.run(past(1))
    assert flavour.run(state.get_all()) == {"i": writes - 1}
    assert flavour.run(state.revision()) == writes
    assert flavour.run(state.restore(writes - 2)) == {"i": writes - 3}
    assert latest.changes == [{"key": "i", "old": writes - 2, "new": writes - 1}]


def test_history_is_the_kept_changes_after_the_fact(
    flavour: Flavour, registry: Any, make_state: Any
) -> None:
    run = flavour.run
    state = make_state()
    if not _keeps_revisions(registry):
        with pytest.raises(UsageError, match="keeps no revisions"):
            run(state.history())
        return
    assert run(state.history()) == [], "a state never written has no history"
    run(state.set("step", 1))
    run(state.update(step=2, prompt="x"))
    run(state.delete("prompt"))
    run(state.clear())
    run(state.set("step", 1))
    past = run(state.history())
    assert [c.rev for c in past] == [1, 2, 3, 4, 5]
    assert [c.changes for c in past] == [
        [{"key": "step", "new": 1}],
        [{"key": "step", "old": 1, "new": 2}, {"key": "prompt", "new": "x"}],
        [{"key": "prompt", "old": "x"}],
        [{"key": "step", "old": 2}],
        [{"key": "step", "new": 1}],
    ]
    assert past == flavour.take(state.watch(since=0), 5), "what a watcher saw, after the fact"
    assert [c.rev for c in run(state.history(since=3))] == [4, 5]
    assert [c.rev for c in run(state.history(limit=2))] == [4, 5]
    assert [c.rev for c in run(state.history(since=1, limit=10))] == [2, 3, 4, 5]
    assert run(state.history(limit=0)) == []
    assert run(state.history(since=5)) == []
    assert run(make_state(scope="other").history()) == [], "per state and scope"
    for bad in ({"since": -1}, {"limit": -1}, {"since": True}, {"limit": 1.5}):
        with pytest.raises(InvalidValueError):
            run(state.history(**bad))


def test_restore_undoes_later_changes_as_a_new_revision(
    flavour: Flavour, registry: Any, make_state: Any
) -> None:
    run = flavour.run
    state = make_state()
    if not _keeps_revisions(registry):
        run(state.set("a", 1))
        with pytest.raises(UsageError, match="keeps no revisions"):
            run(state.restore(0))
        assert run(state.get_all()) == {"a": 1}
        return
    run(state.set("step", 1))  # rev 1
    run(state.update(step=2, cart=["tea"], nested={"n": [1]}))  # rev 2
    at_2 = run(state.get_all())
    run(state.incr("step"))  # 3
    run(state.delete("cart"))  # 4
    run(state.update(extra=None))  # 5
    run(state.clear())  # 6
    run(state.set("late", True))  # 7
    assert run(state.as_of(2)) == at_2, "as_of reads the past without writing"
    assert run(state.as_of(0)) == {}
    assert run(state.as_of(6)) == {}
    assert run(state.as_of(7)) == run(state.get_all()) == {"late": True}
    assert run(state.revision()) == 7
    with pytest.raises(UsageError, match="ahead"):
        run(state.as_of(8))
    assert run(state.restore(2)) == at_2
    assert run(state.get_all()) == at_2
    assert run(state.revision()) == 8, "a restore is a new revision"
    [restore] = run(state.history(limit=1))
    assert {c["key"]: c for c in restore.changes} == {
        "late": {"key": "late", "old": True},
        "step": {"key": "step", "new": 2},
        "cart": {"key": "cart", "new": ["tea"]},
        "nested": {"key": "nested", "new": {"n": [1]}},
    }
    assert run(state.restore(8)) == at_2
    assert run(state.revision()) == 8, "restoring the present changes nothing"
    assert run(state.restore(3)) == {**at_2, "step": 3}
    assert run(state.restore(0)) == {}
    assert run(state.get_all()) == {}, "revision 0: before the first change"
    with pytest.raises(UsageError, match="ahead"):
        run(state.restore(99))
    for bad in (-1, True, "2"):
        with pytest.raises(InvalidValueError):
            run(state.restore(bad))


def test_each_change_says_which_process_and_task_made_it(
    flavour: Flavour, registry: Any, make_state: Any
) -> None:
    if not _keeps_revisions(registry):
        pytest.skip("checked by test_every_change_gets_the_next_revision")
    run = flavour.run
    state = make_state()
    here = {"host": socket.gethostname(), "pid": os.getpid()}

    def as_task(name: str, write: Callable[[], Any]) -> None:
        """``write()`` labelled ``name``, inside a coroutine on the async flavour."""
        if flavour.is_async:

            async def labelled() -> None:
                with acting_as(name):
                    await asyncio.sleep(0)  # another task may run meanwhile
                    await write()

            run(labelled())
        else:
            with acting_as(name):
                write()

    run(state.set("a", 1))
    as_task("checkout.step2", lambda: state.update(a=2, b=3))
    as_task("checkout.step2", lambda: state.modify(lambda d: {**d, "c": 4}))
    run(state.clear())
    if flavour.is_async:  # two tasks at once: each sees its own label

        async def both() -> None:
            async def one(name: str) -> None:
                with acting_as(name):
                    await asyncio.sleep(0)
                    await state.incr(name)

            await asyncio.gather(one("one"), one("two"))

        run(both())
    past = run(state.history())
    assert [c.origin for c in past[:4]] == [
        here,
        {**here, "task": "checkout.step2"},
        {**here, "task": "checkout.step2"},
        here,
    ]
    for change in past[4:]:
        assert change.origin == {**here, "task": change.changes[0]["key"]}
    assert past[0].as_dict()["origin"] == here
    with pytest.raises(TypeError), acting_as(42):  # type: ignore[arg-type]
        pass


def test_history_expires_with_its_state(flavour: Flavour, registry: Any, make_state: Any) -> None:
    if not _keeps_revisions(registry):
        pytest.skip("checked by test_history_is_the_kept_changes_after_the_fact")
    run = flavour.run
    lasting = make_state("Expiring", ttl=None)
    run(lasting.update(a=1, b=2))
    assert len(run(lasting.history())) == 1
    run(make_state("Expiring", ttl=1).set("a", 3))  # the state now expires in 1 s
    time.sleep(2)
    assert run(lasting.get_all()) == {}
    assert run(lasting.history()) == [], "the history went with the state"
    run(lasting.set("plain", 1))  # written again without a TTL
    [plain] = run(lasting.history())
    assert plain.changes == [{"key": "plain", "new": 1}], "the old life stays gone"
    if isinstance(registry.backend, (FileBackend, AsyncFileBackend)):
        # The file log keeps no count apart from its changes: forgetting them
        # begins a new life, as the purge does (watchers follow it from rev 1).
        assert plain.rev == 1
        assert run(lasting.as_of(0)) == {}
    else:  # the count outlives the log by LINGER seconds
        assert plain.rev == 3
        with pytest.raises(ChangesLostError):
            run(lasting.as_of(plain.rev - 1))
    assert run(lasting.as_of(plain.rev)) == {"plain": 1}
    again = make_state("Expiring", ttl=30)
    run(again.set("fresh", True))
    assert [c.changes for c in run(again.history())] == [
        [{"key": "plain", "new": 1}],
        [{"key": "fresh", "new": True}],
    ]


def test_a_state_written_again_after_it_expired_shows_no_old_history(
    flavour: Flavour, registry: Any, make_state: Any
) -> None:
    """Even when the new write overwrites every key the state had (on the file
    backend the expired rows were the line its history ended at)."""
    if not _keeps_revisions(registry):
        pytest.skip("checked by test_history_is_the_kept_changes_after_the_fact")
    run = flavour.run

    def drain(changes: Any) -> list[Any]:
        if not flavour.is_async:
            return list(changes)

        async def read() -> list[Any]:
            return [change async for change in changes]

        found: list[Any] = run(read())
        return found

    expiring = make_state("Again", ttl=1)
    run(expiring.set("a", 1))
    run(expiring.set("a", 2))
    time.sleep(2)
    plain = make_state("Again", ttl=None)
    assert drain(plain.watch(since=0, timeout=1)) == [], "an expired log is not replayed"
    run(plain.set("a", 3))
    assert [c.changes for c in run(plain.history())] == [[{"key": "a", "new": 3}]]
    latest = run(plain.revision())
    for rev in range(latest):
        with contextlib.suppress(ChangesLostError):  # or nothing at all
            assert run(plain.as_of(rev)) == {}, "nothing from before the expiry"
    assert [c.changes for c in drain(plain.watch(since=latest - 1, timeout=1))] == [
        [{"key": "a", "new": 3}]
    ]


@pytest.mark.parametrize("ttl", [30, None])
def test_a_transaction_that_changes_nothing_leaves_an_expired_state_expired(
    flavour: Flavour, registry: Any, make_state: Any, ttl: float | None
) -> None:
    run = flavour.run
    run(make_state("Brief", ttl=1.5).replace({"a": 1, "b": 2}))
    state = make_state("Brief", ttl=ttl)
    revision = run(state.revision()) if _keeps_revisions(registry) else None
    with flavour.transaction(state) as data:
        time.sleep(2)  # the state expires meanwhile (it was live when the block began)
        assert data["a"] == 1
    assert run(state.get_all()) == {}
    assert run(registry.list_states("Brief")) == []
    if revision is not None:
        assert run(state.history()) == []
        assert run(state.revision()) in (0, revision), "no new change"


@pytest.mark.parametrize("ttl", [30, None])
def test_a_transaction_outliving_its_states_expiry_writes_its_whole_document(
    flavour: Flavour, registry: Any, make_state: Any, ttl: float | None
) -> None:
    """The block held the lock, so its document is the state, whole: the keys it
    left alone too (they expired with the state while it ran). Without a TTL
    the commit is a write after the expiry: the state lives on, unexpiring,
    as after a plain ``set``."""
    run = flavour.run
    run(make_state("Brief", ttl=1.5).replace({"a": 1, "b": 2}))
    state = make_state("Brief", ttl=ttl)
    with flavour.transaction(state) as data:
        time.sleep(2)  # the state expires meanwhile (it was live when the block began)
        data["a"] = 5
    assert run(state.get_all()) == {"a": 5, "b": 2}
    [info] = run(registry.list_states("Brief"))
    if ttl is None:
        assert info.ttl is None
    else:
        assert info.ttl is not None
        assert 25 < info.ttl <= 30
    if _keeps_revisions(registry):
        [change] = run(state.history())
        assert change.changes == [{"key": "a", "new": 5}, {"key": "b", "new": 2}]


def test_a_state_class_sets_how_many_changes_its_log_keeps(
    flavour: Flavour, registry: Any, make_state: Any
) -> None:
    if not _keeps_revisions(registry):
        pytest.skip("checked by test_history_is_the_kept_changes_after_the_fact")
    run = flavour.run
    short = flavour.state_class("Short", history=50)(registry)
    default = make_state("Default")
    for i in range(300):
        run(short.set("i", i))
        run(default.set("i", i))
    kept = run(short.history())
    # Redis trims whole stream nodes and the file log every N writes: about N.
    assert 50 <= len(kept) < 100
    assert [c.rev for c in kept] == list(range(301 - len(kept), 301))
    assert len(run(default.history())) == 300, "the other states keep the default 1,000"
    with pytest.raises(ChangesLostError, match="no longer kept"):
        run(short.restore(1))
    assert run(short.restore(295)) == {"i": 294}
    for bad in (0, -1, 100_001, 2.5, "50"):
        with pytest.raises(ConfigError, match="history"):
            flavour.state_class("Bad", history=bad)
