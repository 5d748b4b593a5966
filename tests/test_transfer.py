"""qstate.transfer, the library half of export/import, used from a program."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qstate import InvalidValueError, StateRegistry
from qstate.transfer import apply_import, export_states, plan_import, read_export


def test_export_plan_and_import_round_trip(tmp_path: Path) -> None:
    with (
        StateRegistry(f"file:{tmp_path}/a.db") as source,
        StateRegistry(f"file:{tmp_path}/b.db") as target,
    ):
        source.state("Checkout", scope="u42").update(cart=[1, 2], step=2)
        source.state("Other").set("k", "v")
        target.state("Checkout", scope="u42").update(step=1, stale=True)
        exported = export_states(source)
        assert exported.unreadable == []
        entries = read_export(json.loads(json.dumps(exported.document())))
        [checkout, other] = plan_import(target, entries, replace=True)
        assert (checkout.added, checkout.changed, checkout.removed) == (
            ["cart"],
            ["step"],
            ["stale"],
        )
        assert other.added == ["k"]
        apply_import(target, entries, replace=True)
        assert target.state("Checkout", scope="u42").get_all() == {"cart": [1, 2], "step": 2}
        only = export_states(source, ["Other"])
        assert [s.state for s in only.states] == ["Other"]


@pytest.mark.parametrize("replace", [False, True])
def test_importing_what_a_state_holds_changes_nothing(tmp_path: Path, replace: bool) -> None:
    """No revision, no change for watchers: an import is a change only where it
    differs (the keys that differ, a 1 and a 1.0 differing)."""
    with StateRegistry(f"file:{tmp_path}/s.db") as registry:
        state = registry.state("S")
        state.update(a=1, b=[1, 2], c=1.0)
        entries = read_export(json.loads(json.dumps(export_states(registry).document())))
        apply_import(registry, entries, replace=replace)
        assert state.revision() == 1
        [plan] = plan_import(registry, read_export(_export({"a": 1, "b": [1, 2], "c": 1})))
        assert (plan.added, plan.changed) == ([], ["c"])
        apply_import(
            registry, read_export(_export({"a": 2, "b": [1, 2], "c": 1.0})), replace=replace
        )
        [change] = state.history(since=1)
        assert change.changes == [{"key": "a", "old": 1, "new": 2}]


def _export(data: dict[str, object]) -> dict[str, object]:
    return {"qstate_export": 1, "states": [{"state": "S", "scope": "", "data": data}]}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"states": []}, "not a qstate export"),
        ({"qstate_export": 1, "states": {}}, "'states' must be a list"),
        ({"qstate_export": 1, "states": [{"state": "bad name", "data": {}}]}, "states\\[0\\]"),
        ({"qstate_export": 1, "states": [{"state": "S", "data": {"k": 2**64}}]}, "outside"),
    ],
)
def test_a_bad_export_is_refused_whole(document: object, message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        read_export(document, "dump.json")
