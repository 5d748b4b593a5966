"""Shared timing and reporting for the bench scripts (medians, ratio tables).

The machine is noisy, so qstate and its baseline are timed in alternation,
in short repeats (who goes first alternates too), and a ratio is computed per
repeat: both sides of one ratio see the same load, and the median of many
short repeats shrugs off the bursts of load a few long ones would absorb.
The table shows the medians.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table


@dataclass
class Row:
    """qstate and its baseline doing the same operation."""

    group: str
    operation: str
    ours: float
    baseline_name: str
    baseline: float
    ratio: float
    """Median over repeats of ours/baseline throughput."""
    target: float | None
    """Minimum acceptable ratio (``None``: shown for context only)."""


def _rate(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def compare(
    group: str,
    operation: str,
    ours: Callable[[], object],
    baseline_name: str,
    baseline: Callable[[], object],
    *,
    n: int,
    repeats: int,
    target: float | None,
) -> Row:
    """Time ``ours`` and ``baseline`` in alternation; medians of rates and ratios."""
    _rate(ours, n // 10 + 1)  # warm caches and connections
    _rate(baseline, n // 10 + 1)
    mine, theirs = [], []
    for i in range(repeats):
        if i % 2:  # alternate who goes first, so neither always runs on a warmer cache
            theirs.append(_rate(baseline, n))
            mine.append(_rate(ours, n))
        else:
            mine.append(_rate(ours, n))
            theirs.append(_rate(baseline, n))
    return _row(group, operation, mine, baseline_name, theirs, target)


def _row(
    group: str,
    operation: str,
    mine: list[float],
    baseline_name: str,
    theirs: list[float],
    target: float | None,
) -> Row:
    """Medians of the rates, and of the per-repeat ratios."""
    ratios = [m / t for m, t in zip(mine, theirs, strict=True)]
    return Row(
        group,
        operation,
        statistics.median(mine),
        baseline_name,
        statistics.median(theirs),
        statistics.median(ratios),
        target,
    )


async def acompare(
    group: str,
    operation: str,
    ours: Callable[[], Awaitable[object]],
    baseline_name: str,
    baseline: Callable[[], Awaitable[object]],
    *,
    n: int,
    repeats: int,
    target: float | None,
) -> Row:
    """:func:`compare` for coroutine functions, on the running loop: run every
    case of one client on one loop (``redis.asyncio`` binds its connections to
    the loop that opened them)."""

    async def rate(fn: Callable[[], Awaitable[object]], count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            await fn()
        return count / (time.perf_counter() - start)

    await rate(ours, n // 10 + 1)
    await rate(baseline, n // 10 + 1)
    mine, theirs = [], []
    for i in range(repeats):
        if i % 2:
            theirs.append(await rate(baseline, n))
            mine.append(await rate(ours, n))
        else:
            mine.append(await rate(ours, n))
            theirs.append(await rate(baseline, n))
    return _row(group, operation, mine, baseline_name, theirs, target)


def report(title: str, rows: list[Row], unit: str = "ops/s") -> bool:
    """Print the ratio table; return whether every target was met."""
    table = Table(title=title)
    table.add_column("backend")
    table.add_column("operation")
    table.add_column(f"qstate {unit}", justify="right")
    table.add_column("baseline")
    table.add_column(f"baseline {unit}", justify="right")
    table.add_column("ratio", justify="right")
    table.add_column("target", justify="right")
    ok = True
    for row in rows:
        met = row.target is None or row.ratio >= row.target
        ok &= met
        table.add_row(
            row.group,
            row.operation,
            f"{row.ours:,.0f}",
            row.baseline_name,
            f"{row.baseline:,.0f}",
            f"[{'green' if met else 'red'}]{row.ratio:.2f}×[/]",
            "-" if row.target is None else f"≥ {row.target:.2f}×",
        )
    Console(width=max(Console().width, 120)).print(table)
    print("ratio = median over repeats of qstate throughput / baseline throughput")
    return ok
