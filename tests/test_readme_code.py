"""Every Python block of the READMEs runs as printed, as a script in a fresh directory.

A block that is deliberately a fragment says so on the line before its fence,
``<!-- not-runnable: why -->``; every other block must run and exit 0.

Each block runs twice: on the default store (no ``QSTATE_URL``, no config file:
``file:.qstate/state.db`` in its temporary directory), and with ``QSTATE_URL``
pointing at the tests' private Redis. That is how README code reaches Redis:
through the URL resolution a user's code gets too, never a Redis URL written in
the block (checked below), so the test never edits the text it runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
READMES = [ROOT / "README.md", ROOT / "examples" / "qtasks" / "README.md"]
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
MARKER = re.compile(r"<!-- not-runnable: (\S.*?) -->\n\Z")


def python_blocks() -> list[tuple[str, str, str | None]]:
    """(where, code, why it is not runnable or None) for each ```python block."""
    blocks = []
    for readme in READMES:
        text = readme.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            marker = MARKER.search(text, 0, match.start())
            where = f"{readme.relative_to(ROOT)}:{line}"
            blocks.append((where, match[1], marker[1] if marker else None))
    return blocks


BLOCKS = python_blocks()
RUNNABLE = [pytest.param(code, id=where) for where, code, why in BLOCKS if why is None]


def test_the_readmes_have_python_blocks_and_fragments_are_rare() -> None:
    assert len(RUNNABLE) >= 5
    fragments = [where for where, _, why in BLOCKS if why is not None]
    assert len(fragments) <= 2, f"too many blocks marked not-runnable: {fragments}"


@pytest.mark.parametrize("code", RUNNABLE)
def test_no_block_names_a_redis_server(code: str) -> None:
    """Only QTasks' broker URL may appear: constructing the app connects nowhere."""
    lines = [line for line in code.splitlines() if "redis://" in line]
    assert all("broker_url=" in line for line in lines), (
        f"use a registry without a URL (QSTATE_URL then reaches the test's Redis): {lines}"
    )


@pytest.mark.parametrize("store", ["file", pytest.param("redis", marks=pytest.mark.redis)])
@pytest.mark.parametrize("code", RUNNABLE)
def test_block_runs_as_printed(
    code: str, store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = {**os.environ}
    env.pop("QSTATE_URL", None)
    if store == "redis":
        env["QSTATE_URL"] = request.getfixturevalue("redis_url")
    script = tmp_path / "block.py"
    script.write_text(code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, f"the block fails:\n{code}\n{result.stderr}"
