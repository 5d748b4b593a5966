"""``doctor``: is the configured backend usable, and how does it look?"""

from __future__ import annotations

import statistics
import time
from typing import Any

import typer

from qstate import QStateError, locate_url, redact_url

from ..exit_codes import ExitCode
from ..render import Mode, json_text
from ._common import session_of

PROBES = 5


def doctor(ctx: typer.Context) -> None:
    """Check the backend: where the URL comes from, reachability, round-trip
    latency, version, SQLite integrity or Redis Cluster state. Exit 3 if unusable."""
    session = session_of(ctx)
    report: dict[str, Any] = {}
    code = ExitCode.OK
    try:
        located = locate_url(session.url)
        report.update({"url": redact_url(located.url), "from": located.source})
        registry = session.registry()
        probe = registry.state("_qstate_doctor")
        timings = []
        for _ in range(PROBES):
            start = time.perf_counter()
            probe.get("probe")  # a read of a missing key: one round trip, no write
            timings.append((time.perf_counter() - start) * 1000)
        report["reachable"] = True
        report["round_trip_ms"] = round(statistics.median(timings), 3)
        report.update(registry.backend.health())
        report["states"] = len(registry.list_states())
    except QStateError as error:
        report["reachable"] = report.get("reachable", False)
        report["problem"] = redact_url(" ".join(str(error).split()))
        # A configuration a doctor cannot use is a finding to report, not a usage error.
        code = ExitCode.UNAVAILABLE
    _show(session, report, healthy=code is ExitCode.OK)
    if code is not ExitCode.OK:
        raise typer.Exit(code)


def _show(session: Any, report: dict[str, Any], *, healthy: bool) -> None:
    out = session.output
    if out.mode() is Mode.json or out.json_requested:
        out.data(json_text({"healthy": healthy, **report}))
        return
    if out.mode() is Mode.plain:
        out.data("\n".join(f"{key}\t{value}" for key, value in report.items()))
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text("qstate doctor: " + ("healthy" if healthy else "UNUSABLE")))
    table.add_column("check", style="bold")
    table.add_column("result")
    for key, value in report.items():
        table.add_row(key, Text(str(value)))
    out.renderable(table)
