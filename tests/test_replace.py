"""``replace(mapping)``: one atomic write that makes a state exactly ``mapping``.

Part of the contract: every test runs on every (backend, flavour) pair.
"""

from __future__ import annotations

import threading
import time
from types import MappingProxyType
from typing import Any

import pytest

from qstate import InvalidValueError, UsageError
from tests.conftest import Flavour


def test_replace_makes_the_state_exactly_the_mapping(flavour: Flavour, make_state: Any) -> None:
    run = flavour.run
    state = make_state()
    run(state.update(a=1, b=2, c=3))
    assert run(state.replace({"c": "three", "z": [1, {"x": None}], "a": 1})) is None
    data = run(state.get_all())
    assert data == {"c": "three", "z": [1, {"x": None}], "a": 1}
    assert list(data) == ["c", "z", "a"], "keys read back in the new mapping's order"
    run(state.replace(MappingProxyType({"only": True})))
    assert run(state.get_all()) == {"only": True}


def test_replace_with_nothing_removes_the_state(
    flavour: Flavour, make_state: Any, registry: Any
) -> None:
    run = flavour.run
    state = make_state()
    run(state.replace({}))  # of a state that does not exist: nothing to do
    assert run(registry.list_states()) == []
    run(state.set("a", 1))
    run(state.replace({}))
    assert run(state.get_all()) == {}
    assert run(registry.list_states()) == []


def test_replace_copies_in(flavour: Flavour, make_state: Any) -> None:
    run = flavour.run
    state = make_state()
    mine: dict[str, Any] = {"items": [1]}
    run(state.replace(mine))
    mine["items"].append(2)
    mine["new"] = 1
    assert run(state.get_all()) == {"items": [1]}


@pytest.mark.parametrize(
    "mapping",
    [{"k": (1, 2)}, {"k": float("nan")}, {1: "int key"}, {"": 1}, {"k": 2**63}],
)
def test_replace_refuses_bad_input_and_changes_nothing(
    flavour: Flavour, make_state: Any, mapping: Any
) -> None:
    run = flavour.run
    state = make_state()
    run(state.set("keep", 1))
    with pytest.raises((InvalidValueError, ValueError)):
        run(state.replace(mapping))
    assert run(state.get_all()) == {"keep": 1}


def test_replace_refuses_what_is_not_a_mapping(flavour: Flavour, make_state: Any) -> None:
    state = make_state()
    with pytest.raises(InvalidValueError, match="mapping"):
        flavour.run(state.replace([("a", 1)]))


def test_replace_sets_the_ttl_or_keeps_the_expiry(flavour: Flavour, registry: Any) -> None:
    run = flavour.run
    expiring = flavour.state_class("R")(registry, ttl=30)
    run(expiring.replace({"a": 1}))
    [info] = run(registry.list_states("R"))
    assert info.ttl is not None
    assert 25 < info.ttl <= 30
    forever = flavour.state_class("R")(registry, ttl=None)
    run(forever.replace({"b": 2}))
    [info] = run(registry.list_states("R"))
    assert info.ttl is not None, "a write without a TTL keeps the state's expiry"
    assert 25 < info.ttl <= 30
    assert run(forever.get_all()) == {"b": 2}
    plain = flavour.state_class("P")(registry)
    run(plain.replace({"c": 3}))
    [info] = run(registry.list_states("P"))
    assert info.ttl is None


def test_replace_of_the_same_keys_writes_only_what_changed(
    flavour: Flavour, registry: Any
) -> None:
    """A dialog's next step: the same keys, one new value. Only that key is a
    change, the order and the expiry stay, and a new TTL still applies."""
    run = flavour.run
    expiring = flavour.state_class("R")(registry, ttl=30)
    run(expiring.replace({"name": "Ann", "step": 1, "tags": [1]}))
    forever = flavour.state_class("R")(registry, ttl=None)
    run(forever.replace({"name": "Ann", "step": 2, "tags": [1]}))
    data = run(forever.get_all())
    assert data == {"name": "Ann", "step": 2, "tags": [1]}
    assert list(data) == ["name", "step", "tags"]
    [info] = run(registry.list_states("R"))
    assert info.ttl is not None, "a write without a TTL keeps the state's expiry"
    assert 25 < info.ttl <= 30
    if registry.backend.keeps_revisions:  # the example backend keeps none
        [change] = run(forever.history(limit=1))
        assert change.changes == [{"key": "step", "old": 1, "new": 2}]
        revision = run(forever.revision())
        run(forever.replace({"name": "Ann", "step": 2, "tags": [1]}))
        assert run(forever.revision()) == revision, "no change, no revision"
    longer = flavour.state_class("R")(registry, ttl=120)
    run(longer.replace({"name": "Ann", "step": 3, "tags": [1]}))
    [info] = run(registry.list_states("R"))
    assert info.ttl is not None
    assert 110 < info.ttl <= 120
    run(longer.replace({"step": 4, "name": "Ann", "tags": [1]}))
    assert list(run(longer.get_all())) == ["step", "name", "tags"], "a new order is kept"


def test_replace_inside_its_own_transaction_is_refused(flavour: Flavour, make_state: Any) -> None:
    state = make_state()
    with pytest.raises(UsageError), flavour.transaction(state):
        flavour.run(state.replace({"a": 1}))


def test_replace_waits_for_a_transaction_to_commit(backend_url: str) -> None:
    """A replace never slips between a transaction's read and its commit.

    Had it slipped in, the commit would write ``x`` over it. If the replacing
    thread is slow to start, the test checks less but never fails wrongly.
    """
    from qstate import State, StateRegistry

    class Shared(State):
        pass

    registry = StateRegistry(backend_url)
    other = StateRegistry(backend_url) if not backend_url.startswith("memory") else registry
    try:
        state = Shared(registry)
        state.set("x", 0)
        started = threading.Event()

        def replace_during_the_transaction() -> None:
            started.wait(30)
            Shared(other).replace({"replaced": True})

        thread = threading.Thread(target=replace_during_the_transaction)
        thread.start()
        with state.transaction() as data:
            started.set()
            time.sleep(0.3)  # the replace is sent meanwhile, and must wait
            data["x"] = 1
        thread.join(60)
        assert Shared(registry).get_all() == {"replaced": True}
    finally:
        registry.close()
        if other is not registry:
            other.close()
