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
