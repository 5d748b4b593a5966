"""The change log stays readable JSON when another tool left text that is not JSON."""

from __future__ import annotations

import sqlite3

import redis

from qstate import StateRegistry


def _plant(url: str) -> None:
    """Put ``{bad`` (not JSON) under key ``x`` of state ``S``, as another tool would."""
    if url.startswith("file:"):
        conn = sqlite3.connect(url.removeprefix("file:"))
        with conn:
            conn.execute("UPDATE qstate_values SET value = '{bad' WHERE key = 'x'")
        conn.close()
    else:
        redis.Redis.from_url(url).hset("qstate:{S}", "x", "{bad")


def test_overwriting_foreign_text_works_and_is_logged_as_a_string(url: str) -> None:
    with StateRegistry(url) as registry:
        state = registry.state("S")
        state.update(x=1, y=2)
        start = state.revision()
        _plant(url)
        state.set("x", 5)  # overwriting what qstate could not read is how one repairs it
        state.update(y=3, x=6)
        assert state.delete("x")
        changes = [c.changes for c in state.watch(since=start, timeout=5)]
        assert changes[0] == [{"key": "x", "old": "{bad", "new": 5}]
        assert {"key": "x", "old": 5, "new": 6} in changes[1]
        assert changes[2] == [{"key": "x", "old": 6}]
        assert state.get_all() == {"y": 3}
