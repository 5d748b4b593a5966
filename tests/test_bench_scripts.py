"""The bench scripts still run: a bench that crashes reports nothing (bench_redis.py
did, unnoticed, once the change log changed what its raw baseline had to send).

Only that they run to their table: their figures are measured by running them
on a quiet machine, never asserted by a test (a missed target exits 1).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.parametrize(
    ("script", "title", "redis"),
    [
        ("bench_backends.py", "QTasks", False),
        pytest.param("bench_redis.py", "raw redis-py", True, marks=pytest.mark.redis),
        pytest.param("bench_aiogram.py", "RedisStorage", True, marks=pytest.mark.redis),
    ],
)
def test_a_quick_run_prints_its_table(
    script: str, title: str, redis: bool, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # On the suite's private server (which skips, or fails in CI, without redis-server).
    url = ["--url", request.getfixturevalue("redis_url")] if redis else []
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", *url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, 1), result.stderr  # 1: a target missed on a busy machine
    assert title in result.stdout
    assert "ratio" in result.stdout
